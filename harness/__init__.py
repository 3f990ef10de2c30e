"""A lab that reproduces enterprise TLS inspection against pinned ScreenMeet clients.

The pieces, one module per role:

* :mod:`harness.pki`      – lab certificate authorities, leaf certificates, pins, trust bundles
* :mod:`harness.pins`     – pure SPKI pin parsing and matching
* :mod:`harness.policy`   – pure inspection policy (exception patterns, listener policies)
* :mod:`harness.journal`  – the journals (ground truth) and their admin endpoint
* :mod:`harness.server`   – the mock ScreenMeet server
* :mod:`harness.proxy`    – the inspection proxy: a mitmproxy addon
* :mod:`harness.clients`  – the reference attended and Beam clients
* :mod:`harness.lab`      – bringing the lab up and down (local processes, compose)
* :mod:`harness.scenarios`, :mod:`harness.verdict`, :mod:`harness.runner` – the matrix
"""

__version__ = "0.1.0"
