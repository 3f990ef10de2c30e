"""mitmproxy's own forging (the ``generic`` profile), corrected for the lab's address rewrite.

A client that sends no SNI gets, from plain mitmproxy, a leaf naming the CONNECT
host (mitmproxy adds the server address, which is that host).  The lab sends lab
hosts to the mock server's address, so mitmproxy would name ``127.0.0.1``
instead; :func:`engine_for_host` forges the leaf again through mitmproxy's own
certificate store with the CONNECT host first, keeping every other name.
"""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.x509.oid import NameOID
from mitmproxy import ctx
from mitmproxy.tls import TlsData
from OpenSSL import crypto


def general_name(host: str) -> x509.GeneralName:
    """A host as a SAN entry: an IP address or a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return x509.DNSName(host)


def names_with_host(host: str, current: list[x509.GeneralName]) -> list[x509.GeneralName]:
    """``host`` first, then the names mitmproxy chose, each once."""
    return list(dict.fromkeys([general_name(host), *current]))


def engine_for_host(data: TlsData, host: str) -> None:
    """Replace the leaf mitmproxy's tlsconfig put on ``data.ssl_conn`` by one from the same
    certificate store whose first name (and CN) is ``host``."""
    cert = data.ssl_conn.get_certificate() if data.ssl_conn is not None else None
    tlsconfig = ctx.master.addons.get("tlsconfig")
    if cert is None or tlsconfig is None:
        return
    current = cert.to_cryptography()
    try:
        sans = list(current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        sans = []
    orgs = current.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    entry = tlsconfig.certstore.get_cert(host, names_with_host(host, sans), str(orgs[0].value) if orgs else None)
    data.ssl_conn.use_certificate(entry.cert.to_pyopenssl())
    data.ssl_conn.use_privatekey(crypto.PKey.from_cryptography_key(entry.privatekey))
