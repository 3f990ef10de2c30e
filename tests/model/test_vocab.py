"""harness.model.vocab: the fixed vocabularies agree with each other and with the shipped fixtures."""

from harness.model.policy import load_policies
from harness.model.scenarios import load_scenarios
from harness.model.vocab import (
    ACTIONS,
    CLIENTS,
    EXIT_OUTCOMES,
    HOSTILE_CASES,
    NETWORKS,
    OUTCOMES,
    REFERENCE_URLS,
    TRUSTS,
    ExitCode,
)


def test_every_exit_code_has_an_outcome():
    assert set(EXIT_OUTCOMES) == set(ExitCode)


def test_exit_outcomes_are_outcomes_except_usage():
    """Every reference exit but a usage error is a judged outcome (a usage error is the test's bug)."""
    assert {o for c, o in EXIT_OUTCOMES.items() if c != ExitCode.USAGE} <= set(OUTCOMES)
    assert EXIT_OUTCOMES[ExitCode.USAGE] not in OUTCOMES


def test_exit_code_values_are_the_designed_ones():
    assert [int(c) for c in ExitCode] == [0, 2, 3, 4, 5, 6]


def test_the_scenario_fixtures_speak_the_vocabulary():
    scenarios = load_scenarios()
    assert scenarios
    for s in scenarios:
        assert s.network in NETWORKS and s.trust in TRUSTS, s.name
        assert set(s.expect.values()) <= set(OUTCOMES), s.name


def test_the_policy_fixtures_use_known_hostile_cases():
    used = {p.upstream for p in load_policies().values() if p.upstream}
    assert used and used <= set(HOSTILE_CASES)


def test_clients_and_actions():
    assert CLIENTS == ("attended", "beam") and set(REFERENCE_URLS) == set(CLIENTS)
    assert all(url.startswith("https://") for url in REFERENCE_URLS.values())
    assert len(set(ACTIONS)) == len(ACTIONS)
