"""The lab's data model and pure decisions: no sockets, no subprocesses.

* :mod:`harness.model.vocab`      – the fixed vocabularies (outcomes, networks, actions, exit codes)
* :mod:`harness.model.values`     – numbers and HOST:PORT as people type them
* :mod:`harness.model.datafile`   – where the fixture files are, reading them
* :mod:`harness.model.pins`       – SPKI pins: parsing and matching
* :mod:`harness.model.policy`     – inspection policy: what the proxy decrypts
* :mod:`harness.model.scenarios`  – scenario rows (network condition + expected outcome per client)
* :mod:`harness.model.vendors`    – vendor profiles of real inspection products
* :mod:`harness.model.clientdefs` – any client under test, as a command template and a claimed policy
* :mod:`harness.model.verdict`    – judging one client run from its journals and exit
* :mod:`harness.model.secrets`    – which names and values are credentials, and how they are masked
"""
