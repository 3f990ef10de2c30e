"""Every scenario row through the real lab (real mitmproxy, real TLS), judged from the journals.

Each cell is checked three ways: the verdict passes; the raw journals show what its outcome
means on the wire (tests/matrix/journal_facts.py, read without the verdict); and the same
evidence with one journal fact changed, the exit code kept, is rejected for that fact, so a
verdict that looked only at exit codes would turn this file red.  Separate real runs show the
pins and the trust store matter, and the roaming rows that both clients check the pins again
on their second connection.
"""

import json
from dataclasses import replace

import pytest

from harness.matrix.execute import parse_events
from harness.matrix.runner import MatrixRunner, unavailable
from harness.model.scenarios import load_scenarios
from harness.model.verdict import judge
from harness.model.vocab import INTERCEPT, PASS_THROUGH
from harness.plugin import assert_outcome
from tests.matrix.journal_facts import (
    assert_counterfactuals_fail,
    assert_journal_facts,
    connections,
    evidence_of,
    requests_at_server,
)

SCENARIOS = load_scenarios()
CELLS = [(s.name, c) for s in SCENARIOS for c in s.expect]


@pytest.mark.parametrize("scenario,client", CELLS, ids=[f"{s}-{c}" for s, c in CELLS])
def test_scenario_cell(run_scenario, tls_lab, scenario, client):
    if why := unavailable(next(s for s in SCENARIOS if s.name == scenario), tls_lab):
        pytest.skip(why)  # transparent rows without root
    cell = run_scenario(scenario, client)
    assert_outcome(cell)
    assert_journal_facts(cell, tls_lab.org_issuer_cn)
    # Negative: the same run with one journal fact changed (same exit code) fails for that fact.
    assert_counterfactuals_fail(cell.verdict.expected, evidence_of(cell, parse_events(cell.output)),
                                where=f"{scenario}/{client}")


def test_core_rows_are_all_present():
    names = {s.name for s in SCENARIOS if "core" in s.tags}
    assert names == {"direct", "tunnel-only", "inspected-continue", "inspected-decline",
                     "inspected-untrusted-ca", "exception-wildcard", "exception-partial"}


def test_attended_warning_names_the_org_ca(run_scenario, tls_lab):
    cell = run_scenario("inspected-continue", "attended")
    expected = (
        "WARNING: The connection to the support server may not be secure because of an SSL certificate mismatch. "
        "If you are connected via a VPN, your traffic might be monitored. "
        f"Certificate Issuer: CN={tls_lab.org_issuer_cn}. Are you sure you wish to continue?"
    )
    warnings = [e for e in parse_events(cell.output) if e["event"] == "warning"]
    assert warnings and warnings[0]["text"] == expected
    # The proxy journal agrees: it forged with the org CA.
    assert {r["forged_issuer"] for r in cell.proxy_records if r["action"] == "intercepted"} == {tls_lab.org_issuer_cn}


def test_beam_refusal_names_host_issuer_and_fix(run_scenario, tls_lab):
    cell = run_scenario("inspected-decline", "beam")
    refused = [e for e in parse_events(cell.output) if e["event"] == "refused"]
    assert refused and refused[0]["host"] == "beam.screenmeet.com"
    assert refused[0]["issuer"] == tls_lab.org_issuer_cn and refused[0]["fix"] == "*.screenmeet.com"


def test_wrong_pins_refuse_even_without_a_proxy(tls_lab, lab_journal, tmp_path):
    """Negative for 'direct': the pin check is real — other pins make Beam refuse a genuine server,
    and it refuses before sending anything: its token never reaches the server."""
    if tls_lab.backend != "local":
        pytest.skip("runs Beam in-process against host paths; the compose run covers the same cells via docker exec")
    import io

    from harness.clients import beam
    from harness.pki.ca import CA

    other = CA(common_name="unrelated").issue_cert("beam.screenmeet.com")
    pins = tmp_path / "pins.txt"
    pins.write_text(other.spki_pin + "\n")
    token = "wrong-pins-token-4711"
    out = io.StringIO()
    code = beam.main(["--pins", str(pins), "--trust", tls_lab.pki["trust_public"], "--no-proxy",
                      "--connect-to", tls_lab.server_connect[0], "--once", "--json", "--token", token],
                     stdout=out, stderr=out)
    assert code == 5, out.getvalue()
    # Ground truth: the server (lane 0's port) received no request, and nothing anywhere holds the token.
    server = lab_journal.server_records()
    assert requests_at_server([r for r in server if r["lane"] == 0]) == []
    assert token not in json.dumps(server)
    # The same Beam with the lab's pins registers there: the check above can see a request.
    lab_journal.reset()
    assert beam.main(["--pins", tls_lab.pins_file, "--trust", tls_lab.pki["trust_public"], "--no-proxy",
                      "--connect-to", tls_lab.server_connect[0], "--once", "--json", "--token", token],
                     stdout=io.StringIO(), stderr=io.StringIO()) == 0
    assert token in json.dumps(requests_at_server(lab_journal.server_records(lane=0)))


def test_untrusted_org_ca_is_never_the_bypassable_warning(run_scenario):
    cell = run_scenario("inspected-untrusted-ca", "attended")
    events = parse_events(cell.output)
    assert not [e for e in events if e["event"] == "warning"]
    assert any(e["event"] == "tls" and e["chain_trusted"] is False for e in events)


# -- real runs whose journals differ, judged against each other's expectation ------------------

@pytest.mark.parametrize("run, judged_as, reason", [
    # The same attended client with the same exit code (0): passed through, or read by the proxy after the switch.
    (("roaming-exception-withdrawn", "attended"), ("exception-wildcard", "attended"), "the proxy decrypted"),
    (("exception-wildcard", "attended"), ("roaming-exception-withdrawn", "attended"), "the proxy decrypted no request"),
    (("roaming-inspection-lifted", "attended"), ("exception-wildcard", "attended"), "the proxy intercepted 1"),
])
def test_runs_on_a_changed_network_are_told_apart(run_scenario, lab_scenarios, run, judged_as, reason):
    cell, other = run_scenario(*run), lab_scenarios[judged_as[0]]
    assert_outcome(cell)
    expected = other.expect[judged_as[1]]
    verdict = judge(expected, evidence_of(cell, parse_events(cell.output)))
    assert not verdict.passed and any(reason in r for r in verdict.reasons), verdict.reasons


# -- roaming: the network changes between a client's connections -------------------------------
# Each cell's proxy connections as the journal must show them, (action, policy applied), and how
# many times the client warned: written out here, not derived from Policy.policy_for.

WITHDRAWN, LIFTED, REKEYED = "roam-exception-then-inspect", "roam-inspect-then-exception", "roam-inspect-then-rekeyed"
ROAMING = {
    ("roaming-exception-withdrawn", "attended"): ([(PASS_THROUGH, WITHDRAWN), (INTERCEPT, "inspect")], 1),
    ("roaming-exception-withdrawn", "beam"): ([(PASS_THROUGH, WITHDRAWN), (INTERCEPT, "inspect")], 0),
    ("roaming-exception-withdrawn-decline", "attended"): ([(PASS_THROUGH, WITHDRAWN), (INTERCEPT, "inspect")], 1),
    ("roaming-inspection-lifted", "attended"): ([(INTERCEPT, LIFTED), (PASS_THROUGH, "exception-wildcard")], 1),
    ("roaming-inspection-lifted", "beam"): ([(INTERCEPT, LIFTED)], 0),  # refuses the first; never comes back
    # A new chain on the second connection: the person accepted the first one only, so it warns again ...
    ("roaming-inspection-rekeyed", "attended"): ([(INTERCEPT, REKEYED), (INTERCEPT, "inspect-rsa")], 2),
    ("roaming-inspection-rekeyed", "beam"): ([(INTERCEPT, REKEYED)], 0),
    # ... while under unchanged inspection the WebSocket shows the chain already accepted: one warning.
    ("inspected-continue", "attended"): ([(INTERCEPT, None), (INTERCEPT, None)], 1),
}


@pytest.mark.parametrize("scenario,client", ROAMING, ids=[f"{s}-{c}" for s, c in ROAMING])
def test_roaming_connections_and_warnings(run_scenario, scenario, client):
    cell = run_scenario(scenario, client)
    assert_outcome(cell)
    wanted, warnings = ROAMING[scenario, client]
    conns = connections(cell.proxy_records)
    assert [(r["action"], r.get("applied_policy")) for r in conns] == wanted
    assert [r.get("connection") for r in conns] == [n + 1 if wanted[0][1] else None for n in range(len(wanted))]
    events = parse_events(cell.output)
    assert len([e for e in events if e["event"] == "warning"]) == warnings
    # Every connection's pins were checked: one tls event per connection, matching where passed through.
    assert [e["pin_match"] for e in events if e["event"] == "tls"] == [a == PASS_THROUGH for a, _ in wanted]


def test_beam_sends_nothing_after_the_switch(run_scenario):
    """The token reached the server once, over the connection passed through; the heartbeat
    connection the proxy intercepted carried nothing, to the proxy or to the server."""
    cell = run_scenario("roaming-exception-withdrawn", "beam")
    assert_outcome(cell)
    passed, inspected = connections(cell.proxy_records)
    http = requests_at_server(cell.server_records)
    assert [(r["path"], r["client"]) for r in http] == [("/beam/v1/agents/register", passed["upstream_local"][0])]
    assert cell.secret in json.dumps(http) and cell.secret not in json.dumps(cell.proxy_records)
    assert inspected["requests"] == [] and inspected["websocket"] == [] and inspected["client_tls"] == "established"
    assert not [r for r in cell.server_records if r["client"] in inspected["upstream_local"]]


def test_the_runner_restarts_the_count_for_every_cell(tls_lab, lab_policies, lab_scenarios, monkeypatch):
    """Two cells on one lane both start from connection 1; without the reset the count runs on."""
    import harness.matrix.runner as runner_module

    runner = MatrixRunner(replace(tls_lab, lanes=1), policies=lab_policies)
    row = lab_scenarios["roaming-exception-withdrawn"]
    for _ in range(2):
        cell = runner.run_cell(row, "attended")
        assert_outcome(cell)
        assert [r["connection"] for r in connections(cell.proxy_records)] == [1, 2]
    # Negative: the same cell again, the reset left out: connections 3 and 4, both inspected.
    monkeypatch.setattr(runner_module, "reset_lane", lambda *a, **kw: None)
    cell = runner.run_cell(row, "attended")
    assert [(r["connection"], r["action"]) for r in connections(cell.proxy_records)] == [(3, INTERCEPT), (4, INTERCEPT)]


# -- proxy login (issue 14) ----------------------------------------------------------------------

LOGIN = [(s.name, c) for s in SCENARIOS if "login" in s.tags for c in s.expect]


@pytest.mark.parametrize("scenario,client", LOGIN, ids=[f"{s}-{c}" for s, c in LOGIN])
def test_login_rows_from_the_journals(run_scenario, tls_lab, scenario, client):
    """With the login every connection was accepted and then inspected or passed through as the policy
    says; without it every CONNECT met 407 and nothing else happened.  The login never reached the
    server, and no report shows it unless asked to."""
    from harness.reports.cells import cell_document
    from harness.reports.rerun import rerun_command

    row = next(s for s in SCENARIOS if s.name == scenario)
    cell = run_scenario(scenario, client)
    assert_outcome(cell)
    conns = connections(cell.proxy_records)
    assert conns and {c["proxy_login"] for c in conns} == {"accepted" if row.proxy_login else "missing"}
    if not row.proxy_login:
        assert all(c["action"] is None and c["client_tls"] == "none" for c in conns)
        assert "requires a login" in cell.output and cell.verdict.observation.exit_code == 6
    assert not [r for r in cell.server_records if "proxy_authorization" in r]
    password = tls_lab.proxy_logins[row.policy].split(":", 1)[1]
    shown = json.dumps(cell_document(cell))
    assert password not in shown and password not in rerun_command(cell_document(cell))
    if row.proxy_login:  # the run did carry it, so the redaction had something to hide
        assert password in json.dumps(cell_document(cell, show_secrets=True))
