"""Bringing the lab up and down.

* :mod:`harness.lab.options`  – :class:`LabOptions`, what lab to start (built once by the CLI or the plugin)
* :mod:`harness.lab.open`     – :func:`open_lab`, the one way to get a lab for those options
* :mod:`harness.lab.info`     – :class:`LabInfo`, where everything is; ``<state>/lab.json``
* :mod:`harness.lab.local`    – the default backend: processes on 127.0.0.1
* :mod:`harness.lab.compose`  – the Docker Compose backend (images: :mod:`harness.lab.images`;
  its environment: :mod:`harness.lab.composeenv`)
* :mod:`harness.lab.engine`   – the Docker Engine API through the Docker SDK (containers, files, logs)
* :mod:`harness.lab.execstream` – long-lived programs in containers over one exec stream (client workers)
* :mod:`harness.lab.gateway`  – the transparent gateway (network namespace, iptables REDIRECT)
* :mod:`harness.lab.process`  – starting children that announce readiness, stopping them
* :mod:`harness.lab.statedir` – the state directory
* :mod:`harness.lab.lock`     – one lab per state directory (an flock held for the lab's life)
* :mod:`harness.lab.identity` – which processes are a lab's (a token in their environment, start times)
* :mod:`harness.lab.down`     – stopping a state directory's lab from outside (``harness down``)
"""
