"""``harness audit``'s bad input: one sentence, exit 2, nothing left running."""

from __future__ import annotations

import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from harness.net.addresses import reserve_ports
from harness.pki.lab import LabPKI
from tests.clihelpers import assert_one_sentence_error, harness


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    d = tmp_path_factory.mktemp("audit-cli")
    LabPKI.generate(d)
    return d


def test_an_unreachable_proxy(state):
    (port,) = reserve_ports("127.0.0.1", 1)
    proc = harness("audit", "--proxy", f"http://127.0.0.1:{port}", "--state-dir", str(state))
    assert_one_sentence_error(proc, 2)
    assert "nothing answers at the proxy" in proc.stderr


def test_a_proxy_that_is_not_a_proxy(state):
    class Plain(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = harness("audit", "--proxy", f"http://127.0.0.1:{server.server_address[1]}", "--state-dir", str(state))
    finally:
        server.shutdown()
        server.server_close()
    assert_one_sentence_error(proc, 2)
    assert "did not deliver the lab's valid control site" in proc.stderr and "not an HTTP proxy" in proc.stderr
    assert "501" in proc.stderr
    # The sites server it started for the audit is gone.
    out = subprocess.run(["pgrep", "-f", f"{state}/audit/"], capture_output=True, text=True)
    assert out.stdout.strip() == ""
    assert list((state / "audit").iterdir()) == []  # its certificates and keys too


def test_a_trust_file_that_is_not_a_ca(state):
    """Said before anything starts: the proxy need not even run."""
    pki = LabPKI.load(state)
    (port,) = reserve_ports("127.0.0.1", 1)
    proxy = f"http://127.0.0.1:{port}"
    proc = harness("audit", "--proxy", proxy, "--trust", str(pki.server_chain), "--state-dir", str(state))
    assert_one_sentence_error(proc, 2)
    assert "holds a certificate that is no CA" in proc.stderr
    proc = harness("audit", "--proxy", proxy, "--trust", str(state / "missing.pem"), "--state-dir", str(state))
    assert_one_sentence_error(proc, 2)


@pytest.mark.parametrize("args, words", [
    (["--proxy", "ftp://127.0.0.1:21"], "malformed"),
    (["--proxy", "http://127.0.0.1:8080", "--listen", "0.0.0.0"], "every interface"),
    (["--proxy", "http://127.0.0.1:8080", "--listen", "192.0.2.1"], "not an address of this machine"),
    (["--proxy", "http://127.0.0.1:8080", "--timeout", "0"], "seconds"),
])
def test_malformed_arguments(state, args, words):
    """Said before anything starts, whatever the proxy."""
    proc = harness("audit", *args, "--state-dir", str(state))
    assert_one_sentence_error(proc, 2)
    assert words in proc.stderr


def test_a_report_directory_that_is_a_file(state, tmp_path):
    """Said before the audit starts, in the words (and exit 1) of 'harness run --report'."""
    (tmp_path / "file").write_text("x")
    proc = harness("audit", "--proxy", "http://127.0.0.1:8080", "--report", str(tmp_path / "file"),
                   "--state-dir", str(state))
    assert_one_sentence_error(proc, 1)
    assert f"the report directory {tmp_path / 'file'} is not writable" in proc.stderr
