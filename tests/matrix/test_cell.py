"""harness.matrix.cell: a judged cell and the dictionary the reports and --json are made from."""

import json

from harness.matrix.cell import CellResult
from harness.model.scenarios import Scenario
from harness.model.verdict import Observation, Verdict

KEYS = {"scenario", "scenario_detail", "client", "client_policy", "command", "env", "stdin", "exec_prefix", "expected", "observed", "verdict",
        "reasons", "issuer_seen", "pin_match", "observation", "lane", "seconds", "output", "proxy_records",
        "server_records", "server_saw_interception", "server_grade"}


def cell(outcome="refused", expected="refused", reasons=()):
    o = Observation(outcome=outcome, exit_code=5, issuer_seen="Acme CA", pin_match=False, warned=False, secure=None,
                    intercepted=1, passed_through=0, client_handshakes_failed=0, decrypted_requests=0,
                    credentials_at_proxy=("tok-1",), server_requests=0, websocket_messages_at_proxy=0)
    scenario = Scenario(name="inspected", network="proxy", expect={"beam": expected}, policy="inspect",
                        trust="public+org", description="the org CA is trusted")
    return CellResult(scenario, "beam", Verdict(expected, o, tuple(reasons)), 2, 0.12345, "out",
                      [{"kind": "connection"}], [], command=("harness", "beam"))


def test_to_dict_has_the_documented_keys_and_is_json():
    d = cell().to_dict()
    assert set(d) == KEYS
    assert json.loads(json.dumps(d)) == d


def test_to_dict_values():
    d = cell().to_dict()
    assert (d["scenario"], d["client"], d["expected"], d["observed"], d["verdict"]) == (
        "inspected", "beam", "refused", "refused", "PASS")
    assert d["scenario_detail"] == {"network": "proxy", "policy": "inspect", "trust": "public+org",
                                    "description": "the org CA is trusted"}
    assert d["command"] == ["harness", "beam"] and d["seconds"] == 0.123 and d["lane"] == 2
    assert d["observation"]["credentials_at_proxy"] == ["tok-1"] and d["client_policy"] == "reference"
    assert (d["server_saw_interception"], d["server_grade"]) == ("-", "-")  # nothing reached the server


def test_a_mismatch_fails_with_its_reasons():
    c = cell(outcome="connected", reasons=["expected refused, observed connected"])
    assert not c.passed and c.to_dict()["verdict"] == "FAIL"
    assert c.to_dict()["reasons"] == ["expected refused, observed connected"]
