"""harness.clients.transport: proxy URLs and $HTTPS_PROXY, and what the clients make of silent,
garbage-speaking, refusing or unreachable peers (timeouts and one-sentence errors, no traceback)."""

import io
import socket
import threading

import pytest

from harness.clients import attended, beam
from harness.clients.transport import ProxyURL, parse_proxy_url, proxy_from_environment
from harness.errors import UsageError
from tests.clients.clienthelpers import run


def test_silent_server_times_out_cleanly(pki):
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        got, output = run(beam, pki, listener.getsockname()[1], "--once", "--timeout", "0.3")
    finally:
        listener.close()
    assert got == 6 and "timed out" in output


def test_garbage_instead_of_tls_is_a_tls_error(pki):
    listener = socket.create_server(("127.0.0.1", 0))

    def garbage():
        conn, _ = listener.accept()
        conn.sendall(b"SSH-2.0-not-tls\r\n" * 10)
        conn.close()

    threading.Thread(target=garbage, daemon=True).start()
    try:
        got, output = run(beam, pki, listener.getsockname()[1], "--once", "--timeout", "2")
    finally:
        listener.close()
    assert got in (4, 6) and "Traceback" not in output


def test_parse_proxy_url():
    assert parse_proxy_url("http://127.0.0.1:8080") == ProxyURL("127.0.0.1", 8080)
    assert parse_proxy_url("127.0.0.1:3128") == ProxyURL("127.0.0.1", 3128)
    for bad in ("https://x:1", "http://nohostport", "http://h:notaport", "socks5://h:1"):
        with pytest.raises(UsageError, match="http://HOST:PORT"):
            parse_proxy_url(bad)


def test_https_proxy_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert proxy_from_environment("beam.screenmeet.com") == ProxyURL("127.0.0.1", 3128)
    monkeypatch.setenv("NO_PROXY", ".screenmeet.com")
    assert proxy_from_environment("beam.screenmeet.com") is None
    monkeypatch.delenv("HTTPS_PROXY")
    assert proxy_from_environment("beam.screenmeet.com") is None


def test_proxy_refusing_connect_is_a_network_error(tls_lab):
    out = io.StringIO()
    code = beam.main(["--pins", tls_lab.pins_file, "--url", "https://example.org", "--proxy",
                      tls_lab.proxy_url("inspect"), "--once"], stdout=out, stderr=out)
    assert code == 6 and "403" in out.getvalue()


def test_unreachable_proxy(pki):
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    out = io.StringIO()
    code = attended.main(["--pins", str(pki.pins_file), "--proxy", f"http://127.0.0.1:{port}"], stdout=out, stderr=out)
    assert code == 6 and "cannot connect" in out.getvalue()


# -- proxy login (issue 14) -----------------------------------------------------------------------

def test_proxy_url_with_a_login():
    from harness.model.proxylogin import ProxyLogin

    p = parse_proxy_url("http://al%40ice:p%3Aw@127.0.0.1:3128")
    assert p == ProxyURL("127.0.0.1", 3128, ProxyLogin("al@ice", "p:w"))
    assert str(p) == "http://127.0.0.1:3128"  # shown, logged and put in events without the login
    assert "p:w" not in repr(p)


@pytest.mark.parametrize("bad", ["http://alice@127.0.0.1:3128", "http://:hunter2@127.0.0.1:3128",
                                 "http://a%3Ab:hunter2@127.0.0.1:3128", "http://alice:hun%0Ater2@127.0.0.1:3128"])
def test_a_bad_proxy_login_is_one_sentence_without_the_password(bad):
    with pytest.raises(UsageError, match="has a bad login") as e:
        parse_proxy_url(bad)
    assert "hunter2" not in str(e.value) and "hun%0Ater2" not in str(e.value)
    assert "http://USER:PASSWORD@HOST:PORT" in str(e.value)


def test_https_proxy_environment_with_a_login(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://lab:pw@127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert proxy_from_environment("beam.screenmeet.com").login.password == "pw"


def _one_answer_proxy(answer: bytes):
    """A listening socket that reads one request, keeps it, and answers ``answer``: the proxy's side
    of CONNECT, to see exactly what the client sent (the real proxy: tests/proxy/test_login.py)."""
    server = socket.create_server(("127.0.0.1", 0))
    seen = {}

    def serve():
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            seen["request"] = data
            conn.sendall(answer)
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], seen


@pytest.mark.parametrize("url,says", [
    ("http://127.0.0.1:{port}", r"requires a login \(407"),
    ("http://lab:wrong@127.0.0.1:{port}", "refused the one given for user 'lab'"),
])
def test_407_is_proxy_login_required(url, says):
    from harness.clients.transport import connect_tunnel
    from harness.errors import NetworkError, ProxyLoginRequired

    port, seen = _one_answer_proxy(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                   b"Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n")
    proxy = parse_proxy_url(url.format(port=port))
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    with sock, pytest.raises(ProxyLoginRequired, match=says) as e:
        connect_tunnel(sock, "api.screenmeet.com", 443, proxy)
    assert isinstance(e.value, NetworkError)  # exit 6
    assert f"the proxy at http://127.0.0.1:{port} requires a login" in str(e.value) and "wrong" not in str(e.value)
    sent = b"proxy-authorization: basic " in seen["request"].lower()
    assert sent == (proxy.login is not None)


def test_the_login_goes_on_connect_only():
    import base64

    from harness.clients.transport import connect_tunnel

    port, seen = _one_answer_proxy(b"HTTP/1.1 200 Connection established\r\n\r\n")
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    with sock:
        connect_tunnel(sock, "api.screenmeet.com", 443, parse_proxy_url(f"http://lab:pw@127.0.0.1:{port}"))
    assert seen["request"].startswith(b"CONNECT api.screenmeet.com:443 HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"lab:pw") + b"\r\n" in seen["request"]
