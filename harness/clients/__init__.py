"""The reference clients: ``attended`` (warns) and ``beam`` (refuses).

* :mod:`harness.clients.transport` – TCP, HTTP CONNECT, the TLS handshake, the presented chain
* :mod:`harness.clients.decision`  – pure: what a client does with a handshake's outcome
* :mod:`harness.clients.wire`      – HTTP/1.1 (h11) and WebSocket (wsproto) over the TLS socket
* :mod:`harness.clients.common`    – exit codes, event output, shared command-line options
* :mod:`harness.clients.attended`, :mod:`harness.clients.beam` – the two programs
* :mod:`harness.clients.inprocess` – a client in a thread, its ``--json`` events watched live (tests)
* :mod:`harness.clients.swarm`     – many Beam agents at once and the journal-completeness check (load)
"""
