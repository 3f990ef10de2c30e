"""``harness audit`` end to end against two real proxies the tests start, and its bad input.

* the lab's own inspection proxy (``python -m harness.proxy``, policies ``inspect`` and
  ``exception-wildcard``, upstream verified against the lab's public root): every bad
  upstream is blocked (the sites' journal never sees the request), valid ones are forged;
* plain ``mitmdump`` with ``ssl_insecure=true`` and the org CA as its CA: it re-signs bad
  certificates as trusted, grade F.  It resolves ``*.sites.lab.test`` itself, through an
  ``/etc/hosts`` of its own (a private mount namespace), as an appliance uses its DNS.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from harness.audit.drive import run_audit
from harness.audit.sites import CASES, CONTROL, CRL_HOST, SCREENMEET_HOSTS, is_bad, site_host
from harness.lab.process import spawn, stop, wait_ready
from harness.model.policy import Policy, load_policies
from harness.net.addresses import reserve_ports
from harness.net.journal import JournalReader
from harness.pki.hostile import REVOKED
from harness.pki.lab import LabPKI
from harness.proxy.config import ProxyConfig
from tests.clihelpers import assert_one_sentence_error, harness

BAD = [c for c in CASES if is_bad(c)]


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    d = tmp_path_factory.mktemp("audit")
    LabPKI.generate(d)
    return d


@pytest.fixture(scope="module")
def lab_proxy(state):
    """The lab's proxy: {policy: its listener's URL}; lab names go to 127.0.0.1 on the port asked for."""
    pki = LabPKI.load(state)
    policies = load_policies()
    names = ("inspect", "exception-wildcard", "inspect-login")
    config = ProxyConfig(policies={n: policies[n] for n in names}, ports={n: [0] for n in names},
                         upstream_host="127.0.0.1", upstream_ports=[], confdir=str(pki.mitmproxy_confdir),
                         upstream_trust=str(pki.public_root), pki_dir=str(pki.public_root.parent))
    path = state / "proxy.json"
    path.write_text(json.dumps(config.to_dict()))
    child = spawn("proxy", [sys.executable, "-m", "harness.proxy", "--config", str(path)], state / "proxy.log")
    try:
        ready = wait_ready([child], 120)["proxy"]
        urls = {l["policy"]: f"http://127.0.0.1:{l['port']}" for l in ready["listeners"]}
        yield urls | {"journal": JournalReader(ready["admin"]), "login": ready["proxy_login"]}
    finally:
        stop([child])


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, "mitmdump exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("mitmdump did not listen")


@pytest.fixture(scope="module")
def insecure_mitmdump(state):
    """Plain mitmdump, ssl_insecure=true, forging with the org CA; resolving the sites' names itself."""
    mitmdump = shutil.which("mitmdump", path=os.path.dirname(sys.executable)) or shutil.which("mitmdump")
    if os.geteuid() != 0 or not shutil.which("unshare") or not mitmdump:
        pytest.skip("needs root, unshare and mitmdump (a private /etc/hosts for the stand-in proxy)")
    hosts = state / "hosts"
    hosts.write_text("127.0.0.1 localhost\n" + "".join(
        f"127.0.0.1 {n}\n" for n in [*map(site_host, CASES), CRL_HOST, *SCREENMEET_HOSTS]))
    (port,) = reserve_ports("127.0.0.1", 1)
    pki = LabPKI.load(state)
    command = (f"mount --bind {hosts} /etc/hosts && exec {mitmdump} -q --listen-host 127.0.0.1 -p {port} "
               f"--set confdir={pki.mitmproxy_confdir} --set ssl_insecure=true")
    with open(state / "mitmdump.log", "wb") as log:
        proc = subprocess.Popen(["unshare", "-m", "sh", "-c", command], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        _wait_listening(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_lab_inspection_proxy_blocks_every_bad_upstream(state, lab_proxy):
    pki = LabPKI.load(state)
    after = lab_proxy["journal"].last_seq()
    result = run_audit(lab_proxy["inspect"], trust=str(pki.org_ca), state_dir=state, timeout=30)
    by = {c.case: c for c in result.cases}
    assert list(by) == list(CASES)
    # The control and the valid shapes are inspected: forged with the org CA, trusted, delivered.
    for case in [CONTROL, "no-common-name", "no-subject", "1000-sans"]:
        assert by[case].outcome == "re-signed-trusted", (case, by[case].seen)
        assert by[case].seen.reached and "Acme Corp TLS Inspection Root CA" in by[case].seen.issuer
    # Every certificate defect mitmproxy's verifier knows: the request never reached the site.
    for case in [c for c in BAD if c != REVOKED]:
        assert by[case].outcome == "blocked" and by[case].verdict == "safe", (case, by[case].seen)
        assert not by[case].seen.reached
    # It checks no CRL: the revoked site is forged as trusted, and the lab's CRL server saw no fetch.
    assert by[REVOKED].verdict == "dangerous" and result.crl_fetches == 0
    assert result.grade == "C" and result.reasons[0].startswith("re-signs a revoked certificate")
    assert result.versions == {"TLS 1.0": False, "TLS 1.1": False, "TLS 1.2": True, "TLS 1.3": True}
    assert result.reused_key and result.forged_keys == 1  # mitmproxy's forged leaves share one key
    assert result.exception == "missing"
    assert result.screenmeet == {h: "inspected" for h in SCREENMEET_HOSTS}
    # The proxy's own journal agrees: it intercepted each bad site, met its certificate upstream and
    # failed there, and decrypted our request without sending it on (the sites' journal never saw it).
    records = lab_proxy["journal"].read(after=after, settle=5)
    for case in [c for c in BAD if c != REVOKED]:
        mine = [r for r in records if (r.get("connect_host") or "").startswith(site_host(case) + ":")]
        assert mine and all(r["action"] == "intercepted" for r in mine), case
        assert any(r.get("upstream_error") for r in mine), (case, mine)


def test_a_proxy_login_goes_in_the_url(state, lab_proxy):
    """Issue 14's proxy login: without it one sentence, exit 2; with it the audit runs."""
    url = lab_proxy["inspect-login"]
    proc = harness("audit", "--proxy", url, "--state-dir", str(state))
    assert_one_sentence_error(proc, 2)
    assert "requires a login" in proc.stderr and "http://USER:PASSWORD@HOST:PORT" in proc.stderr
    user, password = lab_proxy["login"].split(":", 1)
    result = run_audit(url.replace("http://", f"http://{user}:{password}@"), trust=None, state_dir=state, timeout=30)
    assert result.grade == "C" and result.proxy == url  # the login is never shown


def test_the_exception_for_screenmeet_is_seen_in_place(state, lab_proxy):
    result = run_audit(lab_proxy["exception-wildcard"], trust=None, state_dir=state, timeout=30)
    assert result.exception == "in place"
    assert result.screenmeet == {h: "passed-through" for h in SCREENMEET_HOSTS}
    # Without --trust, the control's forger stands for the org CA: the verdicts do not change.
    assert {c.case: c.outcome for c in result.cases if c.bad and c.case != REVOKED} == \
        {c: "blocked" for c in BAD if c != REVOKED}


def test_an_insecure_mitmdump_re_signs_bad_certificates_as_trusted(state, insecure_mitmdump, tmp_path):
    """Through the command line, as a reviewer runs it: exit 1 for grade F, the reports written."""
    pki = LabPKI.load(state)
    started = time.monotonic()
    proc = harness("audit", "--proxy", insecure_mitmdump, "--trust", str(pki.org_ca), "--state-dir", str(state),
                   "--report", str(tmp_path / "report"), "--json", "--timeout", "30", timeout=300)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    by = {c["case"]: c for c in doc["cases"]}
    assert doc["grade"] == "F"
    for case in ["expired", "not-yet-valid", "wrong-host", "self-signed", "untrusted-root", "incomplete-chain",
                 "sha1", "rsa-1024", REVOKED, "replaced-key", "other-domain", "leaf-as-ca", "root-agency"]:
        assert by[case]["outcome"] == "re-signed-trusted", (case, by[case]["seen"])
        assert by[case]["seen"]["reached"] and by[case]["verdict"] == "dangerous"
    assert doc["reasons"][0].startswith("re-signs bad certificates as trusted: expired, not-yet-valid")
    assert doc["exception"] == "missing"
    assert (tmp_path / "report" / "audit.html").read_text().count("<tr class='dangerous'>") >= 13
    assert json.loads((tmp_path / "report" / "audit.json").read_text())["grade"] == "F"
    print(f"audit of {len(doc['cases'])} sites through mitmdump: {doc['seconds']} s in the audit, "
          f"{elapsed:.1f} s for the whole command")


# What a product does with an upstream it does not trust (the lab proxy's vendor actions, harness.proxy.forge),
# as the audit sees it: every bad site but the revoked one (no CRL is checked) and rsa-512 (the proxy's own
# upstream handshake fails on it, whatever the action).
ACTIONS = {"pass-through": ("passed-through", "C"), "re-sign-untrusted": ("re-signed-untrusted", "C"),
           "self-signed": ("re-signed-untrusted", "C"), "block-reset": ("blocked", "C"),
           "allow": ("re-signed-trusted", "F")}


@pytest.fixture(scope="module")
def action_proxy(state):
    """The lab's proxy with one listener per untrusted-upstream action, and a plain tunnel."""
    pki = LabPKI.load(state)
    policies = {"tunnel": Policy.from_dict("tunnel", {"mode": "tunnel"})}
    policies |= {a: Policy.from_dict(a, {"mode": "inspect", "untrusted_upstream": a}) for a in ACTIONS}
    config = ProxyConfig(policies=policies, ports={n: [0] for n in policies}, upstream_host="127.0.0.1",
                         upstream_ports=[], confdir=str(pki.mitmproxy_confdir),
                         upstream_trust=str(pki.public_root), pki_dir=str(pki.public_root.parent))
    path = state / "actions.json"
    path.write_text(json.dumps(config.to_dict()))
    child = spawn("proxy", [sys.executable, "-m", "harness.proxy", "--config", str(path)], state / "actions.log")
    try:
        ready = wait_ready([child], 120)["proxy"]
        yield {l["policy"]: f"http://127.0.0.1:{l['port']}" for l in ready["listeners"]}
    finally:
        stop([child])


@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_untrusted_upstream_action_is_told_apart(state, action_proxy, action):
    outcome, letter = ACTIONS[action]
    result = run_audit(action_proxy[action], trust=str(LabPKI.load(state).org_ca), state_dir=state, timeout=30)
    by = {c.case: c.outcome for c in result.cases}
    assert {c: by[c] for c in BAD if c not in (REVOKED, "rsa-512")} == \
        {c: outcome for c in BAD if c not in (REVOKED, "rsa-512")}
    assert by[CONTROL] == "re-signed-trusted" and result.grade == letter


def test_a_tunnel_passes_every_certificate_through(state, action_proxy):
    result = run_audit(action_proxy["tunnel"], trust=None, state_dir=state, timeout=30)
    assert {c.case: c.outcome for c in result.cases} == {c: "passed-through" for c in CASES}
    assert (result.grade, result.forged_keys, result.exception) == ("A", 0, "in place")
