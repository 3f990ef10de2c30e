"""Helpers for the reference-client tests: a TLS server that records every byte it receives,
certificates forged by the org CA or the genuine ones, and a client run in-process with --json."""

import io
import socket
import ssl
import threading

from harness.pki.ca import CA


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


def forged_by_org_ca(pki, host):
    """A leaf for ``host`` forged by the lab's org CA, as the inspecting proxy would: (chain PEM, key PEM)."""
    org = CA.load(pki.org_ca, pki.org_ca_key)
    leaf = org.issue_cert(host)
    return leaf.chain_pem().bytes(), leaf.private_key_pem.bytes()


def genuine(pki):
    """The genuine (pinned) server chain and key: (chain PEM, key PEM)."""
    return pki.server_chain.read_bytes(), pki.server_key.read_bytes()


def run(client, pki, port, *extra):
    """Run ``client.main`` in-process against 127.0.0.1:``port``, trusting public + org CA; (exit code, output)."""
    out = io.StringIO()
    code = client.main(["--pins", str(pki.pins_file), "--trust", str(pki.trust_public_org), "--no-proxy",
                        "--connect-to", f"127.0.0.1:{port}", "--json", *extra], stdout=out, stderr=out,
                       stdin=io.StringIO())
    return code, out.getvalue()
