"""Through the real proxy (the session lab): WebSocket sessions, TLS versions and forged key
types, hostile certificates, untrusted upstreams and exception mistakes, each with what the
journals show, next to its negative.  (tests/matrix/test_matrix.py judges every row's outcome; this
file checks the facts behind them.)"""

from __future__ import annotations

import io

import pytest

from harness.clients import attended
from harness.lab.local import LocalLab
from harness.lab.options import LabOptions
from harness.matrix.execute import parse_events
from harness.model.policy import Policy
from harness.net.journal import JournalReader
from harness.pki.hostile import CASES, VALID_SHAPES
from harness.pki.hostile import VERIFY_ERRORS as REASONS


def events(cell, name):
    return [e for e in parse_events(cell.output) if e["event"] == name]


def connections(cell):
    return [r for r in cell.proxy_records if r["kind"] == "connection"]


# -- WebSocket ------------------------------------------------------------------------

def test_an_attended_session_past_the_warning_carries_its_websocket_through_inspection(run_scenario):
    cell = run_scenario("websocket-inspected", "attended")
    assert cell.passed, cell.verdict.reasons
    assert len(events(cell, "ws")) == 20
    ws = [m for r in connections(cell) for m in r["websocket"]]
    sent = [m for m in ws if m["direction"] == "client->server"]
    assert len(sent) == 20 and len([m for m in ws if m["direction"] == "server->client"]) == 20
    # The lab's tests journal secrets (conftest): the inspector read every frame.
    assert [m["text"] for m in sent] == [f"screen-frame {n}" for n in range(1, 21)]
    assert sum(1 for r in cell.server_records if r["kind"] == "ws-message") == 20


@pytest.fixture(scope="module")
def redacting_lab(tmp_path_factory):
    lab = LocalLab(LabOptions(state_dir=tmp_path_factory.mktemp("redacting"), lanes=1, show_secrets=False),
                   policies={"inspect": Policy("inspect")})
    info = lab.start()
    try:
        yield info
    finally:
        lab.stop()


def test_websocket_text_is_journaled_only_with_show_secrets(redacting_lab):
    info = redacting_lab
    journal = JournalReader(info.proxy_admin)
    after = journal.last_seq()
    out = io.StringIO()
    code = attended.main(["--proxy", info.proxies["inspect"][0], "--trust", info.pki["trust_public_org"],
                          "--pins", info.pins_file, "--on-warning", "continue", "--messages", "3", "--json"],
                         stdout=out, stderr=out, stdin=io.StringIO())
    assert code == 0
    ws = [m for r in journal.read(lane=0, after=after, settle=5) for m in r["websocket"]]
    assert len(ws) == 6 and all(m["length"] > 0 for m in ws)
    assert not any("text" in m for m in ws), "frame text journaled without show_secrets"


def test_beams_heartbeat_runs_under_the_exception_without_a_drop(run_scenario):
    cell = run_scenario("websocket-exception-long", "beam")
    assert cell.passed, cell.verdict.reasons
    assert [e["n"] for e in events(cell, "heartbeat")] == list(range(1, 21))
    assert cell.verdict.observation.exit_code == 0 and cell.seconds >= 0.9  # 19 intervals of 0.05 s
    beats = [r for r in cell.server_records if r["kind"] == "ws-message" and r["path"].endswith("/heartbeat")]
    assert len(beats) == 20
    # The proxy passed it through: it saw the connection, not one frame.
    conns = connections(cell)
    assert conns and all(r["action"] == "passed-through" and r["websocket"] == [] for r in conns)


def test_beams_heartbeat_never_starts_under_inspection(run_scenario):
    cell = run_scenario("websocket-inspected", "beam")
    assert cell.passed and not events(cell, "heartbeat")
    assert not [r for r in cell.server_records if r["kind"] == "ws-message"]


# -- TLS versions and key types ------------------------------------------------------------

@pytest.mark.parametrize("scenario,version", [("inspected-tls12", "TLSv1.2"), ("inspected-tls13", "TLSv1.3")])
def test_the_proxy_speaks_the_policys_tls_version(run_scenario, scenario, version):
    for client in ("attended", "beam"):
        cell = run_scenario(scenario, client)
        assert cell.passed, cell.verdict.reasons
        assert {e["tls_version"] for e in events(cell, "tls")} == {version}
        assert {r["tls_version"] for r in connections(cell)} == {version}


def test_a_client_below_the_proxys_minimum_gets_a_tls_error(run_scenario):
    cell = run_scenario("tls12-client-vs-tls13-proxy", "attended")
    assert cell.passed and not events(cell, "warning")
    assert {r["client_tls"] for r in connections(cell)} == {"failed"}
    # Negative: the same client under the exception meets the server, which speaks TLS 1.2.
    cell = run_scenario("tls12-client-exception", "attended")
    assert cell.passed and {e["tls_version"] for e in events(cell, "tls")} == {"TLSv1.2"}


@pytest.mark.parametrize("scenario,key", [("inspected-ecdsa", "ec-256"), ("inspected-rsa", "rsa-2048")])
def test_forged_leaf_key_types(run_scenario, scenario, key):
    cell = run_scenario(scenario, "attended")
    assert cell.passed, cell.verdict.reasons
    assert {r["forged_key"] for r in connections(cell)} == {key}
    # Negative: plain inspection leaves forging to mitmproxy (the CA's own key, not journaled).
    plain = run_scenario("inspected-continue", "attended")
    assert {r["forged_key"] for r in connections(plain)} == {None}


# -- hostile certificates --------------------------------------------------------------------

# Not here: the valid shapes (they connect: tests/pki/test_hostile.py) and rsa-512, whose server cannot
# even sign a TLS 1.3 handshake (its TLS 1.2 row and reason are in tests/pki/test_hostile.py).
@pytest.mark.parametrize("case", [c for c in CASES if c not in (*VALID_SHAPES, "rsa-512")])
def test_hostile_certificates_fail_hard_with_their_reason(run_scenario, case):
    for how in ("tunnel", "forged"):
        for client in ("attended", "beam"):
            cell = run_scenario(f"hostile-{case}-{how}", client)
            assert cell.passed, cell.verdict.reasons
            assert not events(cell, "warning") and cell.verdict.observation.exit_code == 4
            assert REASONS[case] in events(cell, "error")[0]["reason"]
            conns = connections(cell)
            if how == "forged":
                assert {(r["action"], r["forged_case"], r["client_tls"]) for r in conns} == {
                    ("intercepted", case, "failed")}
            else:
                assert {r["action"] for r in conns} == {"passed-through"}


# -- untrusted upstream ------------------------------------------------------------------------

def test_block_page_answers_with_mitmproxys_502_without_a_vendor_page(run_scenario):
    cell = run_scenario("untrusted-upstream-block-page", "attended")
    assert cell.passed, cell.verdict.reasons
    assert events(cell, "warning")  # served under the org CA: the pinned client noticed first
    assert "HTTP 502" in events(cell, "error")[0]["reason"]
    conns = connections(cell)
    assert all(r["blocked"] and r["untrusted_upstream"] == "block-page" for r in conns)
    assert cell.server_records == []


def test_pass_through_relays_the_untrusted_certificate(run_scenario):
    cell = run_scenario("untrusted-upstream-pass-through", "beam")
    assert cell.passed
    conns = connections(cell)
    assert {(r["action"], r["untrusted_upstream"]) for r in conns} == {("passed-through", "pass-through")}
    assert "unable to get local issuer certificate" in conns[0]["upstream_error"]


def test_allow_reaches_the_untrusted_server_only_past_the_warning(run_scenario):
    cell = run_scenario("untrusted-upstream-allow", "attended")
    assert cell.passed and events(cell, "warning")
    assert {r["untrusted_upstream"] for r in connections(cell)} == {"allow"}
    assert cell.server_records  # the danger of 'allow': the session went to an unvouched server
    assert run_scenario("untrusted-upstream-allow", "beam").passed  # Beam refused


def test_block_reset_refuses_the_handshake(run_scenario):
    cell = run_scenario("untrusted-upstream-block-reset", "attended")
    assert cell.passed and {r["client_tls"] for r in connections(cell)} == {"failed"}
    assert "TLS handshake failed" in events(cell, "error")[0]["reason"]


# -- exception mistakes ------------------------------------------------------------------------

def test_an_ip_exception_never_matches_a_named_client(run_scenario):
    cell = run_scenario("exception-ip", "beam")
    assert cell.passed
    assert {(r["sni"], r["exception"], r["action"]) for r in connections(cell)} == {
        ("beam.screenmeet.com", None, "intercepted")}


def test_scrn_mt_is_inspected_unless_the_exception_covers_it(run_scenario):
    missed = run_scenario("exception-misses-scrn-mt", "attended")
    assert missed.passed and {r["sni"] for r in connections(missed)} == {"api.scrn.mt"}
    covered = run_scenario("exception-covers-scrn-mt", "attended")
    assert covered.passed and {r["exception"] for r in connections(covered)} == {"*.scrn.mt"}
    assert {r["host"] for r in covered.server_records if r["kind"] == "http"} == {"api.scrn.mt"}


def test_rows_needing_a_hostile_site_are_skipped_where_the_lab_has_none(tls_lab, lab_scenarios):
    from dataclasses import replace

    from harness.matrix.runner import unavailable

    row = lab_scenarios["hostile-expired-tunnel"]
    assert unavailable(row, tls_lab) is None and "expired" in tls_lab.sites
    compose_like = replace(tls_lab, backend="compose", sites={})
    assert unavailable(row, compose_like) == (
        f"the compose lab serves no hostile site 'expired' (start it with the policy {row.policy!r}).")
    # Negative: rows without a hostile upstream run anywhere.
    assert unavailable(lab_scenarios["hostile-expired-forged"], compose_like) is None
