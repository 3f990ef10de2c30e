"""harness.proxy.upstream: the upstream certificate check before the ClientHello is answered (real TLS on loopback)."""

import asyncio
import socket
import ssl
import threading

import pytest

from harness.pki.lab import LabPKI
from harness.proxy.upstream import UpstreamChecker


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return LabPKI.generate(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(pki):
    """The genuine ScreenMeet chain on 127.0.0.1: accepts connections and completes handshakes until closed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_chain, pki.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve():
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            conn.settimeout(5)
            try:
                ctx.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield ("127.0.0.1", listener.getsockname()[1])
    done.set()
    thread.join(5)
    listener.close()


def check(checker, address, sni):
    return asyncio.run(checker.check(address, sni))


def test_a_trusted_upstream_has_no_verdict(pki, server):
    assert check(UpstreamChecker(str(pki.trust_public)), server, "api.screenmeet.com") is None


def test_an_untrusted_upstream_says_why(pki, server):
    why = check(UpstreamChecker(str(pki.org_ca)), server, "api.screenmeet.com")
    assert why is not None and why.startswith("certificate verify failed: ")


def test_a_name_the_certificate_does_not_cover(pki, server):
    why = check(UpstreamChecker(str(pki.trust_public)), server, "www.example.com")
    assert why is not None and why.startswith("certificate verify failed: ") and "mismatch" in why.lower()


def test_an_unreachable_upstream_is_no_certificate_verdict(pki):
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    assert check(UpstreamChecker(str(pki.trust_public), timeout=2), ("127.0.0.1", port), "api.screenmeet.com") is None


def test_verdicts_are_cached_per_address_and_sni(pki, server):
    checker = UpstreamChecker(str(pki.org_ca))

    async def twice():
        first = await checker.check(server, "api.screenmeet.com")
        checker.cafile = str(pki.trust_public)  # a fresh check would now pass: the cache must answer
        return first, await checker.check(server, "api.screenmeet.com"), await checker.check(server, "screenmeet.com")

    first, again, other = asyncio.run(twice())
    assert first is not None and again == first and other is None


def test_live_upstreams_are_verified_against_the_system_store_not_certifi():
    import certifi

    from harness.proxy.upstream import system_trust_bundle

    bundle = system_trust_bundle()
    assert bundle is not None and bundle != certifi.where()
    assert bundle == ssl.get_default_verify_paths().cafile


def test_no_system_store_is_none(monkeypatch):
    from harness.proxy import upstream

    paths = ssl.DefaultVerifyPaths("/nonexistent/a.pem", None, "SSL_CERT_FILE", "/nonexistent/b.pem", "SSL_CERT_DIR", None)
    monkeypatch.setattr(upstream.ssl, "get_default_verify_paths", lambda: paths)
    assert upstream.system_trust_bundle() is None
