"""The proxy's upstream ClientHello per product: a vendor profile's TLS keys as mitmproxy options.

An inspection product opens its own TLS connection to the server, with its own
TLS stack: the server sees the product's ClientHello, not the client's (which is
how servers detect interception, and why the NDSS 2017 study could grade the
products: :mod:`harness.model.tlsgrade`).  The lab's proxy is mitmproxy on
OpenSSL, so a profile sets what mitmproxy lets one set of that ClientHello:

* ``upstream_tls_min`` / ``upstream_tls_max`` -> ``tls_version_server_min`` / ``_max``;
* ``upstream_ciphers`` (OpenSSL names, preference order) -> ``ciphers_server``, which
  orders the TLS 1.2 suites (OpenSSL keeps its TLS 1.3 suites first whenever 1.3 is offered).

Not settable through mitmproxy's options or pyOpenSSL 24's bindings: the groups,
signature algorithms and extension order, which stay OpenSSL's defaults.
:func:`upstream_options` is pure; :func:`harness.proxy.run.build_options` applies it.
"""

from __future__ import annotations

# A profile's version -> mitmproxy's option value (mitmproxy.net.tls.Version names).
MITMPROXY_VERSIONS = {"1.2": "TLS1_2", "1.3": "TLS1_3"}


def upstream_options(vendor) -> dict:
    """The mitmproxy option values for ``vendor``'s upstream TLS (a :class:`VendorProfile`, or None:
    none, mitmproxy's defaults)."""
    if vendor is None:
        return {}
    options: dict = {}
    if vendor.upstream_tls_min:
        options["tls_version_server_min"] = MITMPROXY_VERSIONS[vendor.upstream_tls_min]
    if vendor.upstream_tls_max:
        options["tls_version_server_max"] = MITMPROXY_VERSIONS[vendor.upstream_tls_max]
    if vendor.upstream_ciphers:
        options["ciphers_server"] = ":".join(vendor.upstream_ciphers)
    return options
