"""The reference clients' transport and their most important promise: no application byte
is written before the pin check passes (observed by a recording TLS server)."""

import io
import socket
import ssl
import threading

import pytest

from harness.clients import attended, beam
from harness.clients.transport import ProxyURL, parse_proxy_url, proxy_from_environment
from harness.errors import UsageError
from harness.pki.ca import CA
from harness.pki.lab import LabPKI


class RecordingTLSServer:
    """Accepts one TLS connection with the given cert and records every byte it receives."""

    def __init__(self, cert_pem: bytes, key_pem: bytes, tmp_path):
        (tmp_path / "c.pem").write_bytes(cert_pem)
        (tmp_path / "k.pem").write_bytes(key_pem)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.handshake_done = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        conn.settimeout(5)
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
            self.handshake_done = True
            while chunk := tls.recv(65536):
                self.received += chunk
                if b"\r\n\r\n" in self.received:
                    tls.sendall(b"HTTP/1.1 500 Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    break
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def wait(self):
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return LabPKI.generate(tmp_path_factory.mktemp("pki"))


def forged_by_org_ca(pki, host):
    org = CA.load(pki.org_ca, pki.org_ca_key)
    leaf = org.issue_cert(host)
    return leaf.chain_pem().bytes(), leaf.private_key_pem.bytes()


def genuine(pki):
    return pki.server_chain.read_bytes(), pki.server_key.read_bytes()


def run(client, pki, port, *extra):
    out = io.StringIO()
    code = client.main(["--pins", str(pki.pins_file), "--trust", str(pki.trust_public_org), "--no-proxy",
                        "--connect-to", f"127.0.0.1:{port}", "--json", *extra], stdout=out, stderr=out,
                       stdin=io.StringIO())
    return code, out.getvalue()


@pytest.mark.parametrize("client,host,extra,code", [
    (beam, "beam.screenmeet.com", ["--once", "--token", "tok-SECRET"], 5),
    (attended, "api.screenmeet.com", ["--on-warning", "abort", "--code", "code-SECRET"], 3),
])
def test_no_application_byte_before_the_pin_check(pki, tmp_path, client, host, extra, code):
    server = RecordingTLSServer(*forged_by_org_ca(pki, host), tmp_path)
    got, output = run(client, pki, server.port, *extra)
    server.wait()
    assert got == code, output
    assert server.handshake_done
    assert server.received == b"", f"the client wrote {server.received[:80]!r} before/despite the pin check"


def test_negative_with_a_pinned_server_the_request_is_written(pki, tmp_path):
    server = RecordingTLSServer(*genuine(pki), tmp_path)
    got, output = run(beam, pki, server.port, "--once", "--token", "tok-SECRET")
    server.wait()
    assert got == 6  # our recording server answers 500
    assert b"POST /beam/v1/agents/register" in server.received and b"tok-SECRET" in server.received


def test_attended_continue_writes_after_the_warning(pki, tmp_path):
    server = RecordingTLSServer(*forged_by_org_ca(pki, "api.screenmeet.com"), tmp_path)
    got, output = run(attended, pki, server.port, "--on-warning", "continue", "--code", "c0de")
    server.wait()
    assert '"event": "warning"' in output
    assert b"POST /api/v1/sessions/join" in server.received


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


def test_beam_retries_with_backoff_then_gives_up(pki):
    port = socket.create_server(("127.0.0.1", 0))
    free = port.getsockname()[1]
    port.close()
    got, output = run(beam, pki, free, "--retries", "2", "--backoff-base", "0.01", "--backoff-cap", "0.02")
    assert got == 6
    assert output.count('"event": "retry"') == 2


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


