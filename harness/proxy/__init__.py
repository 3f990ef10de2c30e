"""The inspection proxy: real mitmproxy plus the lab's addon.

* :mod:`harness.proxy.config` – the proxy's configuration (plain data, no mitmproxy)
* :mod:`harness.proxy.addon`  – :class:`InspectionAddon`, wiring the policy to mitmproxy hooks
* :mod:`harness.proxy.run`    – the process entry point (``python -m harness.proxy``)
"""
