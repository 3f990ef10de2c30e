"""Helpers shared by the tests: TLS handshakes in memory (ssl.MemoryBIO), no sockets;
and the client and server contexts the PKI tests hand to them."""

from __future__ import annotations

import ssl

from harness.pki.ca import CA


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, hostname: str) -> ssl.SSLObject:
    """Run a TLS handshake between two contexts in memory; return the client side.

    Raises what the client (or server) raises, e.g. ssl.SSLCertVerificationError.
    """
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, conn in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    conn.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return client
    raise AssertionError("handshake did not finish")


def client_ctx(cafile=None, ca: CA | None = None, seclevel: int | None = None) -> ssl.SSLContext:
    """A client context trusting ``cafile`` and/or ``ca``, with strict X.509 checks."""
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if ca is not None:
        ca.configure_trust(ctx)
    if seclevel is not None:
        ctx.set_ciphers(f"DEFAULT:@SECLEVEL={seclevel}")
    # Python 3.13 turns strict checking on by default: the lab's certs must pass it.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def server_ctx(chain, key) -> ssl.SSLContext:
    """A server context serving the chain and key files."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(chain), str(key))
    return ctx


def leaf_server_ctx(leaf, seclevel: int | None = None) -> ssl.SSLContext:
    """A server context serving an in-memory LeafCert (optionally at a lower OpenSSL security level)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if seclevel is not None:  # a hostile server loads weak certs; OpenSSL's default refuses
        ctx.set_ciphers(f"DEFAULT:@SECLEVEL={seclevel}")
    leaf.configure_cert(ctx)
    return ctx
