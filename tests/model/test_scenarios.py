"""Tests for harness.model.scenarios: the shipped fixtures, and bad files reported as one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BadFileError, UnknownNameError
from harness.model.policy import Policy
from harness.model.scenarios import OUTCOMES, Scenario, fixtures_dir, load_scenarios, select

CORE = {
    # name: (network, policy, trust, attended, beam)
    "direct": ("direct", None, "public", "connected", "connected"),
    "tunnel-only": ("proxy", "tunnel", "public", "connected", "connected"),
    "inspected-continue": ("proxy", "inspect", "public+org", "warned-continued", "refused"),
    "inspected-decline": ("proxy", "inspect", "public+org", "declined", "refused"),
    "inspected-untrusted-ca": ("proxy", "inspect", "public", "tls-error", "tls-error"),
    "exception-wildcard": ("proxy", "exception-wildcard", "public+org", "connected", "connected"),
    "exception-partial": ("proxy", "exception-api", "public+org", "connected", "refused"),
}

POLICIES = """
[policy.inspect]
mode = "inspect"

[policy.tunnel]
mode = "tunnel"
"""

GOOD_SCENARIO = """
[[scenario]]
name = "one"
network = "proxy"
policy = "inspect"
trust = "public+org"
expect = { attended = "declined", beam = "refused" }
"""


@pytest.fixture(autouse=True)
def _no_fixture_override(monkeypatch):
    monkeypatch.delenv("HARNESS_FIXTURES", raising=False)


def write(tmp_path: Path, scenarios: str, policies: str = POLICIES) -> Path:
    (tmp_path / "policies.toml").write_text(policies)
    path = tmp_path / "scenarios.toml"
    path.write_text(scenarios)
    return path


def assert_sentence(message: str, *must_contain: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith(".")
    for part in must_contain:
        assert part in message, f"{part!r} not in {message!r}"


# -- the shipped fixtures -------------------------------------------------------------

def test_fixtures_dir_is_the_project_fixtures():
    assert fixtures_dir() == Path(__file__).resolve().parents[2] / "fixtures"


def test_fixtures_dir_honours_the_environment(tmp_path, monkeypatch):
    write(tmp_path, GOOD_SCENARIO)
    monkeypatch.setenv("HARNESS_FIXTURES", str(tmp_path))
    assert fixtures_dir() == tmp_path
    assert [s.name for s in load_scenarios()] == ["one"]


def test_fixtures_dir_ignores_an_environment_path_without_scenarios(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_FIXTURES", str(tmp_path))
    assert fixtures_dir() == Path(__file__).resolve().parents[2] / "fixtures"


@pytest.mark.parametrize("name", list(CORE))
def test_shipped_scenarios_contain_the_core_rows(name):
    by_name = {s.name: s for s in load_scenarios()}
    s = by_name[name]
    network, policy, trust, attended, beam = CORE[name]
    assert (s.network, s.policy, s.trust) == (network, policy, trust)
    assert s.expect == {"attended": attended, "beam": beam}
    assert "core" in s.tags
    assert s.via_proxy == (network == "proxy")
    assert s.description


def test_shipped_scenarios_have_valid_outcomes_and_unique_names():
    scenarios = load_scenarios()
    names = [s.name for s in scenarios]
    assert len(names) == len(set(names))
    assert all(o in OUTCOMES for s in scenarios for o in s.expect.values())
    assert {s.name for s in scenarios if "core" in s.tags} == set(CORE)


def test_attended_on_warning_of_the_inspected_rows():
    by_name = {s.name: s for s in load_scenarios()}
    assert by_name["inspected-continue"].attended_on_warning == "continue"
    assert by_name["inspected-decline"].attended_on_warning == "abort"
    assert by_name["direct"].attended_on_warning == "abort"  # the default


# -- a good file of our own ---------------------------------------------------------------

def test_load_a_minimal_file(tmp_path):
    path = write(tmp_path, GOOD_SCENARIO + """
[[scenario]]
name = "two"
network = "direct"
policy = "inspect"
expect = { beam = "connected" }
""")
    one, two = load_scenarios(path)
    assert one == Scenario(name="one", network="proxy", expect={"attended": "declined", "beam": "refused"},
                           policy="inspect", trust="public+org")
    assert two.policy is None  # a direct scenario has no proxy policy
    assert two.trust == "public" and two.tags == ()


def test_policies_can_be_passed_in(tmp_path):
    path = tmp_path / "scenarios.toml"  # no policies.toml next to it
    path.write_text(GOOD_SCENARIO)
    (s,) = load_scenarios(path, policies={"inspect": Policy("inspect")})
    assert s.policy == "inspect"


def test_an_empty_file_has_no_scenarios(tmp_path):
    assert load_scenarios(write(tmp_path, "")) == []


# -- bad files: one sentence naming the file and the scenario ---------------------------------

@pytest.mark.parametrize("change, must_contain", [
    (('network = "proxy"', 'network = "vpn"'), ["network 'vpn' is not one of direct, proxy"]),
    (('policy = "inspect"', 'policy = "inspekt"'), ["policy 'inspekt' is not defined; known: inspect, tunnel"]),
    (('beam = "refused"', 'beam = "rejected"'), ["outcome 'rejected' for beam is not one of"]),
    (('trust = "public+org"', 'trust = "org"'), ["trust 'org' is not one of public, public+org"]),
    (('trust = "public+org"', 'trust = "public"\nflavour = "x"'), ["has unknown keys ['flavour']"]),
    (('expect = { attended = "declined", beam = "refused" }', 'expect = {}'), ["'expect' must map clients"]),
    (('expect = { attended = "declined", beam = "refused" }', 'expect = "refused"'), ["'expect' must map clients"]),
    (('trust = "public+org"', 'trust = "public+org"\nattended_on_warning = "ask"'),
     ["attended_on_warning must be 'continue' or 'abort'"]),
])
def test_bad_scenario_names_file_scenario_and_value(tmp_path, change, must_contain):
    old, new = change
    assert old in GOOD_SCENARIO
    path = write(tmp_path, GOOD_SCENARIO.replace(old, new))
    with pytest.raises(BadFileError) as info:
        load_scenarios(path)
    assert_sentence(str(info.value), str(path), "scenario 'one'", *must_contain)
    assert info.value.__cause__ is None


def test_proxy_scenario_without_policy(tmp_path):
    path = write(tmp_path, GOOD_SCENARIO.replace('policy = "inspect"\n', ""))
    with pytest.raises(BadFileError) as info:
        load_scenarios(path)
    assert_sentence(str(info.value), str(path), "scenario 'one'", "policy None is not defined")


def test_scenario_without_name(tmp_path):
    path = write(tmp_path, GOOD_SCENARIO.replace('name = "one"\n', ""))
    with pytest.raises(BadFileError) as info:
        load_scenarios(path)
    assert_sentence(str(info.value), str(path), "every [[scenario]] needs a name")


def test_duplicate_names(tmp_path):
    path = write(tmp_path, GOOD_SCENARIO + GOOD_SCENARIO + GOOD_SCENARIO.replace('"one"', '"two"'))
    with pytest.raises(BadFileError) as info:
        load_scenarios(path)
    assert_sentence(str(info.value), str(path), "scenario names must be unique; repeated: one")
    assert "two" not in str(info.value).split("repeated:")[1]


def test_invalid_toml(tmp_path):
    path = write(tmp_path, "[[scenario]\nname = one\n")
    with pytest.raises(BadFileError) as info:
        load_scenarios(path)
    assert_sentence(str(info.value), str(path), "is not valid TOML", "fix the file")
    assert info.value.__suppress_context__


def test_missing_scenario_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(BadFileError) as info:
        load_scenarios(path, policies={})
    assert_sentence(str(info.value), str(path), "does not exist", "pass an existing scenario file")
    assert info.value.__suppress_context__


def test_missing_policies_file_next_to_scenarios(tmp_path):
    path = tmp_path / "scenarios.toml"
    path.write_text(GOOD_SCENARIO)
    with pytest.raises(BadFileError) as info:
        load_scenarios(path)
    assert_sentence(str(info.value), str(tmp_path / "policies.toml"), "does not exist")


def test_unknown_client_in_expect_is_reported(tmp_path):
    path = write(tmp_path, GOOD_SCENARIO.replace("attended =", "atended ="))
    with pytest.raises(BadFileError, match="atended"):
        load_scenarios(path)


def test_scenario_entry_that_is_not_a_table(tmp_path):
    path = write(tmp_path, "scenario = [1]\n")
    with pytest.raises(BadFileError):
        load_scenarios(path)


def test_tags_as_a_string_is_reported(tmp_path):
    path = write(tmp_path, GOOD_SCENARIO.replace('name = "one"', 'name = "one"\ntags = "core"'))
    with pytest.raises(BadFileError, match="tags must be a list"):
        load_scenarios(path)


# -- select ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped() -> list[Scenario]:
    return load_scenarios()


def test_select_everything_but_extended_rows_by_default(shipped):
    everyday = [s for s in shipped if "extended" not in s.tags]
    assert select(shipped) == everyday
    assert select(shipped, [], []) == everyday
    assert {s.name for s in select(shipped, tags=["extended"])} == {s.name for s in shipped} - {s.name for s in everyday}
    # An extended row is still reachable by name.
    assert [s.name for s in select(shipped, ["hostile-expired-forged"])] == ["hostile-expired-forged"]


def test_select_by_name_keeps_the_requested_order(shipped):
    chosen = select(shipped, ["exception-wildcard", "direct"])
    assert [s.name for s in chosen] == ["exception-wildcard", "direct"]


def test_select_by_tag(shipped):
    assert {s.name for s in select(shipped, tags=["core"])} == set(CORE)
    mistakes = ["exception-apex-only", "exception-ip", "exception-misses-scrn-mt", "exception-covers-scrn-mt"]
    assert [s.name for s in select(shipped, tags=["mistakes"])] == mistakes
    assert {s.name for s in select(shipped, tags=["core", "mistakes"])} == set(CORE) | set(mistakes)
    assert select(shipped, tags=["no-such-tag"]) == []


def test_select_by_name_and_tag(shipped):
    assert [s.name for s in select(shipped, ["direct", "exception-apex-only"], ["core"])] == ["direct"]


def test_select_unknown_name(shipped):
    with pytest.raises(UnknownNameError) as info:
        select(shipped, ["direct", "inspected"])
    e = info.value
    assert (e.kind, e.name) == ("scenario", "inspected")
    assert str(e).startswith("unknown scenario 'inspected' (did you mean 'inspected-")
    assert "?); choose one of: " in str(e)
    assert "inspected-continue" in str(e) and str(e).endswith(".")
    assert e.exit_code == 2


# -- urls, client_args, expect_by_action (issue 5) -------------------------------------------

def test_urls_client_args_and_expect_by_action_load(tmp_path):
    path = write(tmp_path, GOOD_SCENARIO + 'urls = { attended = "https://api.scrn.mt" }\n'
                 'client_args = { beam = ["--tls-max", "1.2"] }\n'
                 'expect_by_action.re-sign-untrusted = { attended = "tls-error", beam = "tls-error" }\n')
    (s,) = load_scenarios(path)
    assert s.urls == {"attended": "https://api.scrn.mt"} and s.client_args == {"beam": ("--tls-max", "1.2")}
    assert s.expect_by_action == {"re-sign-untrusted": {"attended": "tls-error", "beam": "tls-error"}}


def test_for_vendor_picks_the_expectation_of_the_vendors_action(tmp_path):
    from harness.model.vendors import get_vendor

    path = write(tmp_path, GOOD_SCENARIO +
                 'expect_by_action.re-sign-untrusted = { attended = "tls-error", beam = "tls-error" }\n')
    (s,) = load_scenarios(path)
    assert s.for_vendor(get_vendor("fortinet")).expect == {"attended": "tls-error", "beam": "tls-error"}
    # Negative: a vendor with another action (and no vendor at all) keeps the row's own expectation.
    assert s.for_vendor(get_vendor("zscaler")) is s and s.for_vendor(None) is s


@pytest.mark.parametrize("extra,must_contain", [
    ('urls = { attended = "http://api.scrn.mt" }', "urls.attended = 'http://api.scrn.mt' is not an https:// URL"),
    ('urls = { browser = "https://x.scrn.mt" }', "'urls' names client 'browser'"),
    ('urls = "https://api.scrn.mt"', "'urls' must map clients to values"),
    ('client_args = { beam = "--once" }', "client_args.beam = '--once' is not a list of strings"),
    ('expect_by_action.shrug = { beam = "refused" }', "expect_by_action names 'shrug'"),
    ('expect_by_action.allow = { beam = "fine" }', "outcome 'fine' for beam"),
    ('expect_by_action = 3', "'expect_by_action' must map untrusted-upstream actions"),
])
def test_bad_new_keys_are_one_sentence(tmp_path, extra, must_contain):
    with pytest.raises(BadFileError) as info:
        load_scenarios(write(tmp_path, GOOD_SCENARIO + extra + "\n"))
    assert_sentence(str(info.value), must_contain, "'one'")


@pytest.mark.parametrize("text,must_contain", [
    (GOOD_SCENARIO.replace('expect = { attended = "declined", beam = "refused" }\n', ""),
     "scenario 'one' lacks 'expect'; set it to a table mapping clients to outcomes, e.g. expect = { beam = \"refused\" }"),
    (GOOD_SCENARIO.replace('beam = "refused"', 'beam = { outcome = "refused" }'),
     "outcome {'outcome': 'refused'} for beam is not one of"),
    (GOOD_SCENARIO + 'expect_by_action.allow = { beam = "fine" }\n', "(in expect_by_action.allow)"),
    (GOOD_SCENARIO + 'expect_by_action.allow = { browser = "connected" }\n',
     "'expect_by_action.allow' names client 'browser'; known clients: attended, beam"),
    (GOOD_SCENARIO + 'description = 3\n', "scenario 'one': description = 3 is not a string"),
    (GOOD_SCENARIO + 'client_args = { beam = [["--once"]] }\n', "client_args.beam = [['--once']] is not a list of strings"),
])
def test_more_bad_scenarios_are_one_sentence(tmp_path, text, must_contain):
    with pytest.raises(BadFileError) as info:
        load_scenarios(write(tmp_path, text))
    assert_sentence(str(info.value), str(tmp_path), must_contain)


def test_scenario_key_that_is_not_an_array_of_tables(tmp_path):
    with pytest.raises(BadFileError) as info:
        load_scenarios(write(tmp_path, "scenario = 3\n"))
    assert_sentence(str(info.value), "write scenarios as [[scenario]] tables")


def test_blocked_is_an_outcome(tmp_path):
    (s,) = load_scenarios(write(tmp_path, GOOD_SCENARIO.replace('"declined"', '"blocked"')))
    assert s.expect["attended"] == "blocked"


# -- proxy login (issue 14) ----------------------------------------------------------------------

LOGIN_POLICIES = POLICIES + """
[policy.inspect-login]
mode = "inspect"
auth = "basic"
"""


def test_proxy_login_defaults_to_true_and_reads_false(tmp_path):
    (row,) = load_scenarios(write(tmp_path, GOOD_SCENARIO))
    assert row.proxy_login is True
    text = GOOD_SCENARIO.replace('policy = "inspect"', 'policy = "inspect-login"\nproxy_login = false')
    (row,) = load_scenarios(write(tmp_path, text, LOGIN_POLICIES))
    assert row.proxy_login is False


@pytest.mark.parametrize("change,says", [
    ('proxy_login = "no"', "proxy_login must be true or false"),
    ("proxy_login = false", "needs network = \"proxy\" and a policy with auth"),
])
def test_bad_proxy_login(tmp_path, change, says):
    with pytest.raises(BadFileError) as e:
        load_scenarios(write(tmp_path, GOOD_SCENARIO.replace('trust = "public+org"', f'trust = "public+org"\n{change}'),
                             LOGIN_POLICIES))
    assert_sentence(str(e.value), says)


def test_shipped_login_rows():
    rows = {s.name: s for s in load_scenarios() if "login" in s.tags}
    assert set(rows) == {"login-inspected", "login-inspected-no-login", "login-exception", "login-exception-no-login"}
    assert [n for n, s in rows.items() if not s.proxy_login] == ["login-inspected-no-login", "login-exception-no-login"]
    assert all(s.expect == {"attended": "network-error", "beam": "network-error"} for s in rows.values() if not s.proxy_login)


# -- expect_by_matching (issue 13) ----------------------------------------------------------------------

def test_expect_by_matching_follows_the_vendors_exception_matching(tmp_path):
    from harness.model.vendors import load_vendors

    path = write(tmp_path, GOOD_SCENARIO + 'expect_by_matching.destination = { attended = "connected" }\n')
    (s,) = load_scenarios(path)
    vendors = load_vendors()
    assert s.for_vendor(vendors["palo-alto"]).expect == {"attended": "connected", "beam": "refused"}
    assert s.for_vendor(vendors["zscaler"]).expect == {"attended": "declined", "beam": "refused"}
    assert s.for_vendor(None).expect == s.expect


def test_the_shipped_ip_exception_row_follows_the_vendor():
    from harness.model.vendors import load_vendors

    row = {s.name: s for s in load_scenarios()}["exception-ip"]
    vendors = load_vendors()
    assert row.for_vendor(vendors["fortinet"]).expect == {"attended": "connected", "beam": "connected"}
    assert row.for_vendor(vendors["netskope"]).expect == {"attended": "declined", "beam": "refused"}


@pytest.mark.parametrize("extra, sentence", [
    ('expect_by_matching.address = { beam = "refused" }', "'expect_by_matching' names mode 'address'; known modes: sni, destination"),
    ('expect_by_matching.destination = { beam = "fine" }', "(in expect_by_matching.destination)"),
])
def test_bad_expect_by_matching_is_one_sentence(tmp_path, extra, sentence):
    with pytest.raises(BadFileError) as info:
        load_scenarios(write(tmp_path, GOOD_SCENARIO + extra + "\n"))
    assert sentence in str(info.value)
