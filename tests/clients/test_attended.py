"""harness.clients.attended: the attended client warns about inspection and goes on if the person continues."""

from __future__ import annotations

import subprocess
import sys

from harness.clients import attended
from harness.clients.decision import NO_TTY_SENTENCE
from harness.model.vocab import ExitCode
from tests.clients.clienthelpers import RecordingTLSServer, forged_by_org_ca, run


def test_attended_continue_writes_after_the_warning(pki, tmp_path):
    server = RecordingTLSServer(*forged_by_org_ca(pki, "api.screenmeet.com"), tmp_path)
    got, output = run(attended, pki, server.port, "--on-warning", "continue", "--code", "c0de")
    server.wait()
    assert '"event": "warning"' in output
    assert b"POST /api/v1/sessions/join" in server.received


def test_ask_without_a_terminal_declines_and_says_nobody_can_answer(tls_lab, lab_journal):
    """--on-warning ask (the default) with no terminal: the warning, then why it declined; exit 3,
    and the journals show the forged handshake and nothing else (no request decrypted, none at the server)."""
    lane = 0
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "attended", "--proxy", tls_lab.proxies["inspect"][lane],
         "--trust", tls_lab.pki["trust_public_org"], "--pins", tls_lab.pki["pins_file"], "--code", "123456"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode == ExitCode.DECLINED, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("WARNING: The connection to the support server may not be secure")
    assert f"Certificate Issuer: CN={tls_lab.org_issuer_cn}." in lines[0]
    assert lines[1] == NO_TTY_SENTENCE and "Continue? [y/N]" not in proc.stdout  # no prompt nobody can see
    connections = [r for r in lab_journal.proxy_records(lane=lane) if r["kind"] == "connection"]
    assert connections and all(r["action"] == "intercepted" and r["requests"] == [] for r in connections)
    assert lab_journal.server_records(lane=lane) == []


def test_an_explicit_abort_says_only_not_continuing(tls_lab):
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "attended", "--proxy", tls_lab.proxies["inspect"][0], "--on-warning",
         "abort", "--trust", tls_lab.pki["trust_public_org"], "--pins", tls_lab.pki["pins_file"]],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode == ExitCode.DECLINED and proc.stdout.splitlines()[1] == "Not continuing."


def test_a_block_page_is_named_as_the_proxys_answer(tls_lab, lab_journal):
    """Behind an untrusted upstream the proxy answers the join itself (mitmproxy's 502 page): the client
    says the proxy answered, not the server; the journals show the blocked request and nothing at the server."""
    lane = 1
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "attended", "--proxy", tls_lab.proxies["untrusted-block-page"][lane],
         "--on-warning", "continue", "--trust", tls_lab.pki["trust_public_org"], "--pins", tls_lab.pki["pins_file"]],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode == ExitCode.NETWORK, proc.stdout + proc.stderr
    assert "the proxy answered with a block page: HTTP 502" in proc.stdout + proc.stderr
    assert "the server refused" not in proc.stdout + proc.stderr
    blocked = [r for r in lab_journal.proxy_records(lane=lane) if r["kind"] == "connection" and r["blocked"]]
    assert blocked and blocked[-1]["requests"]
    assert [r for r in lab_journal.server_records(lane=lane) if r["kind"] == "http"] == []
