"""Faults in the middle of a session, on a lab of its own per test (harness.lab.local faults).

Synchronisation is on events, never on sleeps: a client runs in a thread and
its live ``--json`` events (harness.clients.inprocess) say when to act; a
callback in the client's own thread makes "mid-session" exact.  Every wait has
a deadline, every client has a ``--timeout``, so nothing here can hang.
"""

from __future__ import annotations

import json
import secrets
import threading

import pytest

from harness.clients.inprocess import ClientThread
from harness.errors import BadFileError, UsageError
from harness.lab.local import RESTART_SEQ_STEP, LocalLab
from harness.lab.options import LabOptions
from harness.model.policy import PASS_THROUGH, Policy, load_policies
from harness.net.journal import JournalReader
from harness.pki.ca import CA, load_certificates

pytestmark = pytest.mark.slow

WAIT = 30  # seconds: generous upper bound for any one step; the steps take about one
NEW_CN = "Acme Corp TLS Inspection Root CA G2"


@pytest.fixture
def lab(tmp_path):
    lab = LocalLab(LabOptions(state_dir=tmp_path / "lab", lanes=1, show_secrets=True), policies=load_policies())
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


def client_args(lab, policy: str, *extra: str) -> list[str]:
    return ["--proxy", lab.info.proxy_url(policy), "--trust", lab.info.pki["trust_public_org"],
            "--pins", lab.info.pins_file, "--json", "--timeout", "5", *extra]


def waiting_beam(lab, policy: str, token: str, *extra: str, on_event=None) -> ClientThread:
    """Beam as a service waiting for IT: retries refusals and network errors, short backoff."""
    return ClientThread("beam", client_args(
        lab, policy, "--token", token, "--retry-refused", "--retries", "60",
        "--backoff-base", "0.05", "--backoff-cap", "0.4", *extra), on_event=on_event)


def exception_policy(name: str) -> Policy:
    return Policy.from_dict(name, {"mode": "inspect", "exceptions": ["*.screenmeet.com"],
                                   "description": "IT added the exception to this listener's policy"})


def assert_capped_exponential_backoff_with_jitter(retries: list[dict], base: float, cap: float) -> None:
    assert retries, "no retry happened"
    ratios = []
    for event in retries:
        ceiling = min(cap, base * 2 ** (event["attempt"] - 1))
        assert ceiling / 2 - 1e-3 <= event["delay"] <= ceiling + 1e-3, event
        ratios.append(event["delay"] / ceiling)
    assert max(e["delay"] for e in retries) <= cap + 1e-3
    if len(ratios) >= 3:
        assert len({round(r, 3) for r in ratios}) > 1, "no jitter: every delay sits at the same point of its range"


def test_beam_refuses_until_the_exception_is_in_place_then_connects(lab):
    token = f"tok-{secrets.token_hex(8)}"
    proxy_journal, server_journal = JournalReader(lab.info.proxy_admin), JournalReader(lab.info.server_admin)
    beam = waiting_beam(lab, "inspect", token)
    beam.start()
    beam.tap.wait_for(lambda e: e["event"] == "retry" and e["attempt"] >= 3, WAIT, what="Beam's third retry")

    # Before the fix: every connection was intercepted, nothing decrypted, the token unseen.
    before = proxy_journal.read()
    # Beam keeps retrying: the newest connection may not have reached its ClientHello yet.
    decided = [r for r in before if r["action"] is not None]
    assert len(decided) >= 3 and all(r["action"] == "intercepted" for r in decided)
    assert all(r["requests"] == [] for r in before)
    assert token not in json.dumps(before)
    assert token not in json.dumps(server_journal.read())

    lab.set_policy("inspect", exception_policy("inspect"))  # same listener, now with the exception
    assert beam.result(WAIT) == 0, beam.tap.text()

    events = beam.tap.events
    connected = beam.tap.named("connected")
    assert len(connected) == 1 and events[-1]["event"] == "connected"
    # Never connected through inspection: every TLS session before the exception was refused,
    # every one after it carried the pinned key.
    switch = max(i for i, e in enumerate(events) if e["event"] == "refused")
    assert all(e["pin_match"] is False and e["issuer"] == lab.info.org_issuer_cn
               for e in events[:switch] if e["event"] == "tls" and e.get("chain_trusted"))
    assert all(e["pin_match"] is True for e in events[switch:] if e["event"] == "tls" and e.get("chain_trusted"))
    assert_capped_exponential_backoff_with_jitter(beam.tap.named("retry"), base=0.05, cap=0.4)

    after = proxy_journal.read(after=before[-1]["seq"], settle=5)
    assert after and all(r["seq"] > RESTART_SEQ_STEP for r in after)  # the restarted proxy's journal
    ok = [r for r in after if r["action"] == PASS_THROUGH]
    assert len(ok) == 2 and all(r["exception"] == "*.screenmeet.com" and r["policy"] == "inspect" for r in ok)
    assert token not in json.dumps(after)
    registrations = [r for r in server_journal.read() if r.get("authorization") == f"Bearer {token}"]
    assert len(registrations) == 1


def test_org_ca_rotation_while_beam_waits(lab):
    old_cn = lab.info.org_issuer_cn
    old_key = CA.load(lab.pki.mitmproxy_confdir / "mitmproxy-ca.pem").cert.public_key()
    beam = waiting_beam(lab, "inspect", "tok-rotation")
    beam.start()
    beam.tap.wait_for(lambda e: e["event"] == "refused" and e["issuer"] == old_cn, WAIT, what="a refusal (old CA)")

    lab.rotate_org_ca(common_name=NEW_CN)
    beam.tap.wait_for(lambda e: e["event"] == "refused" and e["issuer"] == NEW_CN, WAIT, what="a refusal (new CA)")
    lab.set_policy("inspect", exception_policy("inspect"))
    assert beam.result(WAIT) == 0, beam.tap.text()

    # The rotation deployed the new root before switching: Beam, re-reading its trust bundle,
    # never met an untrusted chain (which would be a hard TLS error, not a refusal).
    assert not [e for e in beam.tap.events if e["event"] == "error"]
    untrusted = [e["reason"] for e in beam.tap.named("tls") if not e["chain_trusted"]]
    assert all(r.startswith("TLS handshake failed") for r in untrusted), untrusted  # only cut off by the restart
    assert {e["issuer"] for e in beam.tap.named("refused")} == {old_cn, NEW_CN}
    new = CA.load(lab.pki.mitmproxy_confdir / "mitmproxy-ca.pem")
    assert new.common_name == NEW_CN and new.cert.public_key() != old_key
    bundle = load_certificates(lab.info.pki["trust_public_org"])
    assert [c.subject.rfc4514_string() for c in bundle][1:] == [new.cert.subject.rfc4514_string()]  # old root retired
    for path in (lab.pki.org_ca_key, lab.pki.mitmproxy_confdir / "mitmproxy-ca.pem"):
        assert path.stat().st_mode & 0o777 == 0o600


def test_beam_backs_off_while_the_proxy_is_down_and_connects_after_restart(lab):
    lab.kill_proxy()
    beam = waiting_beam(lab, "exception-wildcard", "tok-down")
    beam.start()
    beam.tap.wait_for(lambda e: e["event"] == "retry" and e["attempt"] >= 4, WAIT, what="Beam's fourth retry")
    lab.restart_proxy()
    assert beam.result(WAIT) == 0, beam.tap.text()
    retries = beam.tap.named("retry")
    assert all("cannot connect" in e["reason"] for e in retries)
    assert_capped_exponential_backoff_with_jitter(retries, base=0.05, cap=0.4)


@pytest.mark.parametrize("policy,extra", [
    ("exception-wildcard", []),  # passed through: the proxy relays the TLS bytes
    ("inspect", ["--on-warning", "continue"]),  # decrypted: the person accepted the warning
])
def test_attended_reports_a_clear_error_when_the_proxy_dies_mid_session(lab, policy, extra):
    killed = threading.Event()

    def kill_after_first_message(event):
        if event["event"] == "ws" and event["sent"] == 1 and not killed.is_set():
            lab.kill_proxy()  # in the client's thread: before it sends message 2
            killed.set()

    attended = ClientThread("attended", client_args(lab, policy, "--messages", "5", *extra),
                            on_event=kill_after_first_message)
    attended.start()
    assert attended.result(WAIT) == 6, attended.tap.text()
    assert killed.is_set()
    error = attended.tap.events[-1]
    assert error["event"] == "error" and error["kind"] == "network"
    session = attended.tap.named("joined")[0]["session"]
    assert error["reason"].startswith(
        f"lost the connection to api.screenmeet.com through the proxy {lab.info.proxy_url(policy)} "
        f"during support session {session} (")
    assert not attended.tap.named("connected")

    lab.restart_proxy()  # same port, same CA: the same client now gets through
    again = ClientThread("attended", client_args(lab, policy, "--messages", "5", *extra))
    again.start()
    assert again.result(WAIT) == 0, again.tap.text()


def test_beam_reconnects_after_the_server_dies_mid_heartbeat(lab):
    killed = threading.Event()

    def kill_server_after_first_heartbeat(event):
        if event["event"] == "heartbeat" and not killed.is_set():
            lab.kill_server()
            killed.set()

    server_journal = JournalReader(lab.info.server_admin)
    beam = waiting_beam(lab, "exception-wildcard", "tok-hb", "--heartbeats", "3",
                        on_event=kill_server_after_first_heartbeat)
    beam.start()
    retry = beam.tap.wait_for(lambda e: e["event"] == "retry", WAIT, what="Beam's retry after the crash")
    assert retry["reason"].startswith(
        f"lost the connection to beam.screenmeet.com through the proxy {lab.info.proxy_url('exception-wildcard')} "
        "during the heartbeat")
    lab.restart_server()
    assert beam.result(WAIT) == 0, beam.tap.text()
    records = server_journal.read()
    assert records and all(r["seq"] > RESTART_SEQ_STEP for r in records)  # the restarted server's journal
    assert [r["kind"] for r in records] == ["http", "http", "ws-message", "ws-message", "ws-message"]


def test_restart_checks_its_arguments_and_the_ca_file(lab):
    with pytest.raises(UsageError, match="same policy names"):
        lab.restart_proxy(policies={"inspect": exception_policy("inspect")})
    ca_file = lab.pki.mitmproxy_confdir / "mitmproxy-ca.pem"
    ca_file.write_bytes(lab.pki.org_ca.read_bytes())  # the certificate without its key
    with pytest.raises(BadFileError, match="without its key"):
        lab.restart_proxy()
