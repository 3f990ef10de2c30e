"""A lab that reproduces enterprise TLS inspection against pinned ScreenMeet clients.

The pieces, one module per role:

* :mod:`harness.pki.ca`      – lab certificate authorities, leaf certificates, pins, trust bundles
* :mod:`harness.model.pins`     – pure SPKI pin parsing and matching
* :mod:`harness.model.policy`   – pure inspection policy (exception patterns, listener policies)
* :mod:`harness.net.journal`  – the journals (ground truth) and their admin endpoint
* :mod:`harness.server.mock`   – the mock ScreenMeet server
* :mod:`harness.proxy`    – the inspection proxy: a mitmproxy addon
* :mod:`harness.clients`  – the reference attended and Beam clients
* :mod:`harness.lab`      – bringing the lab up and down (local processes, compose)
* :mod:`harness.model.scenarios`, :mod:`harness.model.verdict`, :mod:`harness.matrix.runner` – the matrix
"""

__version__ = "0.1.0"
