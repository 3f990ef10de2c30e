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
