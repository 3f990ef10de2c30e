"""ProductAddon: what an inspection product does besides forging, from its vendor profile.

* a CONNECT to a port the product does not relay is answered ``403`` (a vendor
  profile's ``connect_ports``; :meth:`VendorProfile.allows_port`), and
* the headers the product adds are added to every decrypted request on its way to
  the server (:mod:`harness.proxy.headers`); the proxy journal keeps the request
  as the client sent it, the server journal records what arrived.

It runs after :class:`harness.proxy.addon.InspectionAddon`, whose configuration,
vendor and journal it reads; the decisions are the profile's pure methods.
"""

from __future__ import annotations

from mitmproxy import http

from harness.proxy.headers import added_headers, apply


class ProductAddon:
    """mitmproxy addon: the vendor profile's port rule and added headers."""

    def __init__(self, inspection) -> None:
        self.inspection = inspection  # the InspectionAddon: config, vendor, journal

    def http_connect(self, flow: http.HTTPFlow) -> None:
        vendor = self.inspection.vendor
        if flow.response is not None or vendor is None or vendor.allows_port(flow.request.port):
            return
        if (record := self.inspection.journal.get_open(flow.client_conn.id)) is not None:
            record["action"] = "blocked"
            record["connect_denied"] = f"port {flow.request.port} is not one of {vendor.product}'s CONNECT ports"
        ports = ", ".join(map(str, vendor.connect_ports))
        flow.response = http.Response.make(
            403, f"{vendor.product} relays CONNECT to port(s) {ports} only, not {flow.request.port}.\n".encode(),
            {"Content-Type": "text/plain"})

    def request(self, flow: http.HTTPFlow) -> None:
        vendor = self.inspection.vendor
        if vendor is None or not vendor.request_headers or flow.request.method == "CONNECT" or flow.response:
            return
        peer = flow.client_conn.peername
        apply(flow.request.headers, added_headers(vendor.request_headers, peer[0] if peer else None))
