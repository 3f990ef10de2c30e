"""harness.matrix.session: the one run path, with or without vendors, and what each lab serves."""

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.lab.options import LabOptions
from harness.lab.statedir import run_state_dir
from harness.matrix.session import options_for, run_matrix
from harness.model.policy import load_policies
from harness.model.scenarios import Scenario, load_scenarios
from harness.model.vendors import get_vendor

ROWS = [Scenario(name="t", network="transparent", policy="inspect", expect={"beam": "refused"}),
        Scenario(name="p", network="proxy", policy="exception-api", expect={"beam": "connected"})]


def test_options_for_builds_the_gateway_the_rows_need():
    o = options_for(LabOptions(), ROWS, state_dir=Path("/s/run"))
    assert (o.transparent, o.transparent_policies, o.state_dir) == (None, ("inspect",), Path("/s/run"))
    # Rows without a transparent one leave the gateway off; --transparent keeps it required for all.
    assert options_for(LabOptions(), ROWS[1:]).transparent is False
    required = options_for(LabOptions(transparent=True), ROWS)
    assert (required.transparent, required.transparent_policies) == (True, None)


def test_options_for_a_vendor_and_its_state_dir():
    z = get_vendor("zscaler")
    o = options_for(LabOptions(state_dir="/s"), ROWS[1:], vendor=z, state_dir=run_state_dir("/s", z.name))
    assert o.vendor is z and o.state_dir == Path("/s/run-zscaler")
    assert run_state_dir("/s") == Path("/s/run")


def _own_policy_files(tmp_path):
    """A scenario file with a policies.toml of its own beside it (one row, one policy)."""
    (tmp_path / "policies.toml").write_text('[policy.corp-inspect]\nmode = "inspect"\n')
    (tmp_path / "scenarios.toml").write_text(
        '[[scenario]]\nname = "mine"\nnetwork = "proxy"\npolicy = "corp-inspect"\ntrust = "public+org"\n'
        'expect = { beam = "refused" }\n')
    policies = load_policies(tmp_path / "policies.toml")
    scenarios = load_scenarios(tmp_path / "scenarios.toml", policies=policies)
    return policies, scenarios


def test_a_vendor_run_uses_the_scenario_files_own_policies(tmp_path):
    """The drift this path removed: vendor runs ignored a policies.toml beside --scenarios-file."""
    policies, scenarios = _own_policy_files(tmp_path)
    run = run_matrix(LabOptions(state_dir=tmp_path / "state", lanes=1), scenarios, policies=policies,
                     vendors=[get_vendor("zscaler")])
    assert [(c.scenario.name, c.client, c.passed) for c in run.results] == [("zscaler/mine", "beam", True)]
    lab = run.labs["vendors"]["zscaler"]
    assert list(lab["proxies"]) == ["corp-inspect"] and lab["vendor"] == "zscaler"
    [record] = [r for r in run.results[0].proxy_records if r.get("kind", "connection") == "connection"]
    assert record["action"] == "intercepted" and record["forged_issuer"] == get_vendor("zscaler").issuing_cn


def test_compose_refuses_a_scenario_files_own_policies_in_one_sentence(tmp_path):
    """The compose image carries fixtures/policies.toml: other policies are refused before any container starts."""
    policies, scenarios = _own_policy_files(tmp_path)
    with pytest.raises(UsageError, match="a scenario file with its own policies.toml runs on the local lab"):
        run_matrix(LabOptions(backend="compose", state_dir=tmp_path / "s"), scenarios, policies=policies)
