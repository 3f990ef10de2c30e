"""Tests for harness.model.policy: host patterns, inspection decisions and policies.toml, without mitmproxy.

Matching is anchored on label boundaries, unlike mitmproxy's ``ignore_hosts``
(an unanchored ``re.search``); the contrast is shown next to each lookalike.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from harness.errors import BadFileError
from harness.model.policy import (
    INTERCEPT,
    PASS_THROUGH,
    HostPattern,
    Policy,
    Roam,
    is_lab_host,
    load_policies,
    normalize_host,
)

LOOKALIKES = [
    "notscreenmeet.com",
    "screenmeet.com.evil.example",
    "api.screenmeet.com.evil.example",
    "screenmeet.co",
    "screenmeet.com-evil.example",
    "evilscreenmeet.com",
    "screenmeet.comm",
]


# -- normalize_host ------------------------------------------------------------

@pytest.mark.parametrize("raw, normal", [
    ("API.ScreenMeet.COM", "api.screenmeet.com"),
    ("api.screenmeet.com.", "api.screenmeet.com"),
    ("  api.screenmeet.com  ", "api.screenmeet.com"),
    ("[::1]", "::1"),
    ("[2001:DB8::1]", "2001:db8::1"),
])
def test_normalize_host(raw, normal):
    assert normalize_host(raw) == normal


def test_normalize_host_strips_only_one_trailing_dot():
    assert normalize_host("api.screenmeet.com..") == "api.screenmeet.com."


# -- exact patterns ---------------------------------------------------------------

def test_exact_pattern_matches_only_that_name():
    p = HostPattern.parse("api.screenmeet.com")
    assert not p.wildcard and p.suffix == "api.screenmeet.com"
    assert p.matches("api.screenmeet.com")
    assert not p.matches("beam.screenmeet.com")
    assert not p.matches("screenmeet.com")
    assert not p.matches("x.api.screenmeet.com")


@pytest.mark.parametrize("host", ["API.SCREENMEET.COM", "Api.ScreenMeet.Com", "api.screenmeet.com.",
                                  "API.screenmeet.com.", " api.screenmeet.com "])
def test_exact_pattern_is_case_insensitive_and_ignores_trailing_dot(host):
    assert HostPattern.parse("api.screenmeet.com").matches(host)
    assert HostPattern.parse("API.ScreenMeet.com.").matches(host)


def test_apex_pattern_does_not_cover_subdomains():
    p = HostPattern.parse("screenmeet.com")
    assert p.matches("screenmeet.com")
    assert not p.matches("api.screenmeet.com")
    assert not p.matches("beam.screenmeet.com")


@pytest.mark.parametrize("host", LOOKALIKES)
def test_exact_pattern_never_matches_lookalikes(host):
    assert not HostPattern.parse("screenmeet.com").matches(host)


def test_mitmproxy_ignore_hosts_regex_would_match_lookalikes():
    # The contrast: mitmproxy's ignore_hosts does re.search, unanchored.
    assert re.search("screenmeet.com", "notscreenmeet.com")
    assert re.search("screenmeet.com", "screenmeet.com.evil.example")
    assert not HostPattern.parse("screenmeet.com").matches("notscreenmeet.com")
    assert not HostPattern.parse("*.screenmeet.com").matches("screenmeet.com.evil.example")


def test_str_is_the_original_text():
    assert str(HostPattern.parse("*.ScreenMeet.com.")) == "*.ScreenMeet.com."


# -- wildcard patterns -------------------------------------------------------------

@pytest.mark.parametrize("host", ["api.screenmeet.com", "beam.screenmeet.com", "a.b.c.screenmeet.com",
                                  "BEAM.SCREENMEET.COM", "beam.screenmeet.com."])
def test_wildcard_matches_subdomains_at_any_depth(host):
    p = HostPattern.parse("*.screenmeet.com")
    assert p.wildcard and p.suffix == "screenmeet.com"
    assert p.matches(host)


@pytest.mark.parametrize("host", ["screenmeet.com", "SCREENMEET.COM", "screenmeet.com.", ".screenmeet.com",
                                  "scrn.mt", "api.scrn.mt", "", "com"] + LOOKALIKES)
def test_wildcard_does_not_match_apex_or_lookalikes(host):
    assert not HostPattern.parse("*.screenmeet.com").matches(host)


def test_wildcard_pattern_is_case_insensitive():
    p = HostPattern.parse("*.SCREENMEET.Com")
    assert p.suffix == "screenmeet.com"
    assert p.matches("api.screenmeet.com")
    assert not p.matches("screenmeet.com")


# -- IP patterns ---------------------------------------------------------------------

def test_ip_pattern_matches_only_that_literal():
    p = HostPattern.parse("192.0.2.10")
    assert not p.wildcard
    assert p.matches("192.0.2.10")
    assert not p.matches("192.0.2.100")
    assert not p.matches("api.screenmeet.com")  # a name never matches an IP exception


def test_ipv6_pattern_matches_any_spelling_of_the_address():
    p = HostPattern.parse("[2001:db8::1]")
    assert p.suffix == "2001:db8::1"
    assert p.matches("2001:DB8:0:0:0:0:0:1")
    assert p.matches("[2001:db8::1]")
    assert not p.matches("2001:db8::2")


def test_name_patterns_never_match_an_ip_literal():
    # '*.0.2.10' parses as a name pattern; it must not cover the address 192.0.2.10.
    assert not HostPattern.parse("*.0.2.10").matches("192.0.2.10")
    assert not HostPattern.parse("2.10").matches("0.0.2.10")
    assert HostPattern.parse("*.0.2.10").matches("x.0.2.10")


# -- invalid patterns ------------------------------------------------------------------

@pytest.mark.parametrize("text, reason", [
    ("", "is empty"),
    ("   ", "is empty"),
    (".", "is empty"),
    ("*", "'*' is only allowed as the whole leftmost label"),
    ("api.*.screenmeet.com", "'*' is only allowed as the whole leftmost label"),
    ("*.*.screenmeet.com", "'*' is only allowed as the whole leftmost label"),
    ("*screenmeet.com", "'*' is only allowed as the whole leftmost label"),
    ("**.screenmeet.com", "'*' is only allowed as the whole leftmost label"),
    ("*.com", "too broad"),
    ("api..screenmeet.com", "labels are letters, digits and inner hyphens"),
    ("-api.screenmeet.com", "labels are letters, digits and inner hyphens"),
    ("api-.screenmeet.com", "labels are letters, digits and inner hyphens"),
    ("api_x.screenmeet.com", "labels are letters, digits and inner hyphens"),
    ("a" * 64 + ".screenmeet.com", "labels are letters, digits and inner hyphens"),
    ("https://screenmeet.com", "labels are letters, digits and inner hyphens"),
    ("screenmeet.com:443", "labels are letters, digits and inner hyphens"),
    ("screenmeet.com/path", "labels are letters, digits and inner hyphens"),
    ("api screenmeet.com", "labels are letters, digits and inner hyphens"),
])
def test_invalid_patterns_raise_value_error_with_a_sentence(text, reason):
    with pytest.raises(ValueError) as info:
        HostPattern.parse(text)
    message = str(info.value)
    assert reason in message
    assert "\n" not in message
    if text.strip(" ."):
        assert repr(text) in message  # names the bad pattern


def test_longest_valid_label_is_accepted():
    assert HostPattern.parse("a" * 63 + ".screenmeet.com").matches("A" * 63 + ".screenmeet.com")


@pytest.mark.parametrize("text", ["api\n.screenmeet.com", "*.screenmeet\n.com", "api.screenmeet.com\n.x"])
def test_newline_inside_a_pattern_is_rejected(text):
    # A regex '$' would also match before a trailing newline: labels must match in full.
    with pytest.raises(ValueError, match="labels are letters, digits and inner hyphens"):
        HostPattern.parse(text)


# -- Policy ------------------------------------------------------------------------------

def test_tunnel_policy_never_intercepts():
    p = Policy("tunnel", mode="tunnel")
    for host in ("api.screenmeet.com", "example.org", None, ""):
        assert p.decide(host) == PASS_THROUGH


def test_inspect_policy_without_exceptions_intercepts_everything():
    p = Policy("inspect")
    assert p.mode == "inspect"
    for host in ("api.screenmeet.com", "screenmeet.com", "example.org", None, ""):
        assert p.decide(host) == INTERCEPT
        assert p.exception_for(host) is None


def test_inspect_policy_passes_through_exceptions_only():
    p = Policy("exception-wildcard", exceptions=(HostPattern.parse("*.screenmeet.com"),))
    assert p.decide("beam.screenmeet.com") == PASS_THROUGH
    assert p.decide("API.screenmeet.com.") == PASS_THROUGH
    assert p.exception_for("beam.screenmeet.com").text == "*.screenmeet.com"
    assert p.decide("screenmeet.com") == INTERCEPT
    assert p.decide("notscreenmeet.com") == INTERCEPT
    assert p.decide("screenmeet.com.evil.example") == INTERCEPT
    assert p.decide(None) == INTERCEPT  # no SNI and no CONNECT host: nothing to except


def test_exception_for_returns_the_first_matching_pattern():
    p = Policy.from_dict("both", {"exceptions": ["api.screenmeet.com", "*.screenmeet.com", "screenmeet.com"]})
    assert p.exception_for("api.screenmeet.com").text == "api.screenmeet.com"
    assert p.exception_for("beam.screenmeet.com").text == "*.screenmeet.com"
    assert p.exception_for("screenmeet.com").text == "screenmeet.com"
    assert p.exception_for("scrn.mt") is None


def test_partial_exception_is_decided_by_host():
    p = Policy.from_dict("exception-api", {"mode": "inspect", "exceptions": ["api.screenmeet.com"]})
    assert p.decide("api.screenmeet.com") == PASS_THROUGH
    assert p.decide("beam.screenmeet.com") == INTERCEPT


def test_from_dict_and_to_dict_round_trip():
    data = {"mode": "inspect", "exceptions": ["*.screenmeet.com", "192.0.2.10"], "description": "fix"}
    p = Policy.from_dict("x", data)
    assert p.name == "x" and p.description == "fix"
    assert [e.text for e in p.exceptions] == ["*.screenmeet.com", "192.0.2.10"]
    assert p.to_dict() == data
    assert Policy.from_dict("x", p.to_dict()) == p


def test_from_dict_defaults_to_inspect():
    p = Policy.from_dict("x", {})
    assert p.mode == "inspect" and p.exceptions == () and p.description == ""


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"policy 'x' has unknown keys \['exception'\]; known: mode, exceptions"):
        Policy.from_dict("x", {"exception": ["*.screenmeet.com"]})


@pytest.mark.parametrize("mode", ["decrypt", "Inspect", "", None])
def test_invalid_mode_names_the_valid_modes(mode):
    with pytest.raises(ValueError, match=r"policy 'x' has mode .*; valid modes: tunnel, inspect"):
        Policy.from_dict("x", {"mode": mode})
    with pytest.raises(ValueError, match="valid modes"):
        Policy("x", mode=mode)


def test_from_dict_rejects_exceptions_that_are_not_a_list():
    with pytest.raises(ValueError, match="'exceptions' must be a list"):
        Policy.from_dict("x", {"exceptions": "*.screenmeet.com"})


def test_from_dict_rejects_a_bad_pattern():
    with pytest.raises(ValueError, match="too broad"):
        Policy.from_dict("x", {"exceptions": ["*.com"]})
    # The sentence names the policy (the pattern alone does not say where it is written).
    with pytest.raises(ValueError, match=r"^policy 'x': an exception pattern is empty"):
        Policy.from_dict("x", {"exceptions": [""]})


@pytest.mark.parametrize("data,sentence", [
    ({"exceptions": ["ok.example", 3]}, "policy 'x': 'exceptions' must be a list of strings"),
    ({"description": None}, "policy 'x': description = None is not a string."),
    ({"upstream": True}, "policy 'x': upstream = True is not a string such as \"expired\"."),
])
def test_from_dict_wants_strings(data, sentence):
    with pytest.raises(ValueError) as info:
        Policy.from_dict("x", data)
    assert str(info.value).startswith(sentence)


# -- is_lab_host ---------------------------------------------------------------------------

DOMAINS = ("screenmeet.com", "scrn.mt")


@pytest.mark.parametrize("host", ["screenmeet.com", "api.screenmeet.com", "A.B.SCREENMEET.COM.", "scrn.mt",
                                  "x.scrn.mt"])
def test_is_lab_host_accepts_lab_domains_and_below(host):
    assert is_lab_host(host, DOMAINS)


@pytest.mark.parametrize("host", LOOKALIKES + ["example.org", "mt", "", None, "notscrn.mt"])
def test_is_lab_host_rejects_everything_else(host):
    assert not is_lab_host(host, DOMAINS)


def test_is_lab_host_with_no_domains():
    assert not is_lab_host("screenmeet.com", ())


# -- properties --------------------------------------------------------------------------------

LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
DOMAIN = st.lists(LABEL, min_size=2, max_size=4).map(".".join)


@given(st.text())
@example("*.")
@example("[")
@example("[]")
@example("*.\u0130.com")
@example("fe80::1%eth0")
@example("\x00")
def test_parse_raises_only_value_error(text):
    try:
        p = HostPattern.parse(text)
    except ValueError:
        return
    assert isinstance(p.matches(text), bool)


@given(sub=LABEL, domain=DOMAIN)
def test_wildcard_matches_below_the_domain_but_not_the_domain(sub, domain):
    assume(not all(label.isdigit() for label in domain.split(".")))  # not an IP literal
    p = HostPattern.parse("*." + domain)
    assert p.matches(sub + "." + domain)
    assert p.matches(sub.upper() + "." + domain.upper() + ".")
    assert not p.matches(domain)
    assert not p.matches(sub + domain)  # a lookalike prefix, no label boundary


@given(name=DOMAIN, other=LABEL)
def test_exact_pattern_matches_only_itself(name, other):
    p = HostPattern.parse(name)
    assert p.matches(name)
    assert not p.matches(other + "." + name)
    assert not p.matches(other + name)


# -- tuning keys (issue 5): upstream site, forged case, untrusted action, leaf key, TLS versions ----

def test_tuning_keys_round_trip():
    data = {"mode": "inspect", "upstream": "untrusted-root", "untrusted_upstream": "pass-through",
            "leaf_key": "ec-256", "tls_min": "1.2", "tls_max": "1.3", "forge": "sha1", "exceptions": [],
            "description": ""}
    p = Policy.from_dict("p", data)
    assert Policy.from_dict("p", p.to_dict()) == p and p.to_dict() == data
    # Untuned policies keep their short form.
    assert Policy("q").to_dict() == {"mode": "inspect", "exceptions": [], "description": ""}


@pytest.mark.parametrize("data,must_contain", [
    ({"upstream": "revoked"}, "upstream = 'revoked' is not one of expired"),
    ({"forge": "nice"}, "forge = 'nice' is not one of"),
    ({"mode": "tunnel", "forge": "expired"}, "forge applies to mode = \"inspect\" only"),
    ({"mode": "tunnel", "tls_max": "1.2"}, "tls_max applies to mode = \"inspect\" only"),
    ({"untrusted_upstream": "pray"}, "untrusted_upstream = 'pray' is not one of block-page"),
    ({"leaf_key": "dsa"}, "leaf_key = 'dsa' is not one of ca-key"),
    ({"tls_min": "1.3", "tls_max": "1.2"}, "tls_min 1.3 is above tls_max 1.2"),
    ({"tls_max": "1.1"}, "tls_max = '1.1' is not one of 1.2, 1.3"),
])
def test_bad_tuning_is_one_sentence(data, must_contain):
    with pytest.raises(ValueError) as info:
        Policy.from_dict("p", data)
    assert must_contain in str(info.value) and "'p'" in str(info.value)


def test_a_tunnel_may_lead_to_a_hostile_site():
    assert Policy.from_dict("t", {"mode": "tunnel", "upstream": "expired"}).decide("api.screenmeet.com") == PASS_THROUGH


# -- policies.toml: the shipped file, and bad files reported as one sentence ----------------------

def assert_sentence(message: str, *must_contain: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith(".") and not message.endswith("..")
    for part in must_contain:
        assert part in message, f"{part!r} not in {message!r}"


def test_shipped_policies_load():
    policies = load_policies()
    assert {"tunnel", "inspect", "exception-wildcard", "exception-api", "exception-apex"} <= set(policies)
    assert policies["tunnel"].mode == "tunnel"
    assert policies["inspect"].decide("beam.screenmeet.com") == INTERCEPT
    assert policies["exception-wildcard"].decide("beam.screenmeet.com") == PASS_THROUGH
    assert policies["exception-wildcard"].decide("screenmeet.com") == INTERCEPT
    assert policies["exception-api"].decide("api.screenmeet.com") == PASS_THROUGH
    assert policies["exception-api"].decide("beam.screenmeet.com") == INTERCEPT
    assert policies["exception-apex"].decide("api.screenmeet.com") == INTERCEPT


@pytest.mark.parametrize("policies, must_contain", [
    ('[policy.x]\nmode = "decrypt"\n', ["policy 'x'", "valid modes: tunnel, inspect"]),
    ('[policy.x]\nexceptions = ["*.com"]\n', ["exception pattern '*.com' is too broad"]),
    ('[policy.x]\nexception = ["*.screenmeet.com"]\n', ["policy 'x'", "unknown keys ['exception']"]),
    ('[policy.x]\nexceptions = "*.screenmeet.com"\n', ["policy 'x'", "'exceptions' must be a list"]),
    ('[policy.x]\nexceptions = ["*.com"]\n', ["policy 'x': exception pattern '*.com'"]),
    ('[policy.x]\nexceptions = [3]\n', ["policy 'x': 'exceptions' must be a list of strings", "not [3]"]),
    ('[policy.x]\ntls_max = 1.2\n', ["policy 'x': tls_max = 1.2 is not a string such as \"1.2\""]),
    ('[policy.x]\ndescription = 3\n', ["policy 'x': description = 3 is not a string"]),
    ('policy = 3\n', ["defines no policy; write them as [policy.NAME] tables"]),
    # roaming: the target must exist and must not roam itself
    ('[policy.r]\nroam = { after = 1, to = "nope" }\n[policy.a]\n', ["policy 'r': roam.to = 'nope' names no policy"]),
    ('[policy.r]\nroam = { after = 1, to = "s" }\n[policy.s]\nroam = { after = 1, to = "a" }\n[policy.a]\n',
     ["policy 'r': roam.to = 's' roams itself; a policy switches once"]),
    ('[policy.r]\nroam = { after = 0, to = "a" }\n[policy.a]\n', ["policy 'r': roam.after = 0"]),
    ('[policy.r]\nroam = 3\n[policy.a]\n', ["policy 'r': 'roam' must map after and to"]),
    ('[policy.r]\nroam = { after = 1, to = "a" }\n', ["policy 'r': roam.to = 'a' names no policy; known: none"]),
])
def test_bad_policies_file(tmp_path, policies, must_contain):
    path = tmp_path / "policies.toml"
    path.write_text(policies)
    with pytest.raises(BadFileError) as info:
        load_policies(path)
    assert_sentence(str(info.value), str(path), *must_contain)


def test_an_empty_policies_file_has_no_policies(tmp_path):
    path = tmp_path / "policies.toml"
    path.write_text("# none yet\n")
    assert load_policies(path) == {}


def test_missing_policies_file(tmp_path):
    with pytest.raises(BadFileError) as info:
        load_policies(tmp_path / "policies.toml")
    assert_sentence(str(info.value), str(tmp_path / "policies.toml"), "does not exist; pass an existing policies file")


def test_invalid_policies_toml(tmp_path):
    path = tmp_path / "policies.toml"
    path.write_text("[policy.x\n")
    with pytest.raises(BadFileError, match="is not valid TOML"):
        load_policies(path)


def test_policy_entry_that_is_not_a_table(tmp_path):
    path = tmp_path / "policies.toml"
    path.write_text("[policy]\nx = 3\n")
    with pytest.raises(BadFileError):
        load_policies(path)


# -- roaming: which policy the n-th connection of a cell gets -----------------------------------

INSPECT = Policy("inspect")
EXCEPTION = Policy("exception-wildcard", exceptions=(HostPattern.parse("*.screenmeet.com"),))


def roaming(after: int = 1, to: Policy = INSPECT, **kw) -> Policy:
    return Policy("roam", exceptions=(HostPattern.parse("*.screenmeet.com"),), roam=Roam(after, to), **kw)


@pytest.mark.parametrize("after, connection, applies", [
    (1, 1, "roam"), (1, 2, "inspect"), (1, 3, "inspect"), (1, 100, "inspect"),
    (2, 1, "roam"), (2, 2, "roam"), (2, 3, "inspect"),
    (5, 5, "roam"), (5, 6, "inspect"),
])
def test_the_first_after_connections_get_the_policy_itself_later_ones_the_target(after, connection, applies):
    assert roaming(after).policy_for(connection).name == applies


def test_the_switch_changes_the_decision_between_connections():
    p = roaming()
    assert [p.policy_for(n).decide("beam.screenmeet.com") for n in (1, 2)] == [PASS_THROUGH, INTERCEPT]
    lifted = Policy("lifted", roam=Roam(1, EXCEPTION))
    assert [lifted.policy_for(n).decide("api.screenmeet.com") for n in (1, 2)] == [INTERCEPT, PASS_THROUGH]


def test_a_policy_that_does_not_roam_applies_to_every_connection():
    assert all(INSPECT.policy_for(n) is INSPECT for n in (1, 2, 1000))


@pytest.mark.parametrize("connection", [0, -1])
def test_connections_are_counted_from_one(connection):
    with pytest.raises(ValueError, match=f"counted from 1, not {connection}"):
        roaming().policy_for(connection)


def test_roam_round_trips_with_its_target_embedded():
    p = Policy.from_dict("roam", {"exceptions": ["*.screenmeet.com"], "roam": {"after": 2, "to": "inspect"}},
                         policies={"inspect": INSPECT})
    assert p.roam == Roam(2, INSPECT)
    data = p.to_dict()
    assert data["roam"] == {"after": 2, "to": "inspect", "policy": INSPECT.to_dict()}
    assert Policy.from_dict("roam", data) == p  # the proxy's JSON needs no other policy


@pytest.mark.parametrize("roam, must_contain", [
    ({"after": 0, "to": "inspect"}, "roam.after = 0 is not a whole number of 1 or more"),
    ({"after": True, "to": "inspect"}, "roam.after = True is not a whole number of 1 or more"),
    ({"after": 1.5, "to": "inspect"}, "roam.after = 1.5 is not a whole number of 1 or more"),
    ({"to": "inspect"}, "'roam' lacks 'after'"),
    ({"after": 1}, "'roam' lacks 'to'"),
    ({"after": 1, "to": "nowhere"}, "roam.to = 'nowhere' names no policy; known: inspect."),
    ({"after": 1, "to": ""}, "roam.to = '' is not a non-empty string."),
    ({"after": 1, "to": "inspect", "when": "later"}, "'roam' names key 'when'; known keys: after, to, policy"),
    ("inspect", "'roam' must map after and to, e.g. roam = { after = 1, to = \"inspect\" }"),
])
def test_bad_roam_is_one_sentence(roam, must_contain):
    with pytest.raises(ValueError) as info:
        Policy.from_dict("p", {"roam": roam}, policies={"inspect": INSPECT})
    assert must_contain in str(info.value) and "policy 'p'" in str(info.value)


def test_a_roam_switches_once_and_keeps_the_upstream():
    with pytest.raises(ValueError, match="roam.to = 'roam' roams itself; a policy switches once"):
        Policy("twice", roam=Roam(1, roaming()))
    with pytest.raises(ValueError, match="^policy 'hostile': roam.to = 'inspect' has another upstream; a roam "
                                         "changes what the proxy does, not the server behind it$"):
        Policy("hostile", upstream="expired", roam=Roam(1, INSPECT))
    for after in (0, True, 1.5, "1"):  # a Roam built in Python is checked as the file's is
        with pytest.raises(ValueError, match=f"roam.after = {after!r} is not a whole number of 1 or more"):
            Policy("never", roam=Roam(after, INSPECT))


def test_shipped_roaming_policies():
    policies = load_policies()
    withdrawn, lifted = policies["roam-exception-then-inspect"], policies["roam-inspect-then-exception"]
    assert [withdrawn.policy_for(n).decide("api.screenmeet.com") for n in (1, 2)] == [PASS_THROUGH, INTERCEPT]
    assert [lifted.policy_for(n).decide("beam.screenmeet.com") for n in (1, 2)] == [INTERCEPT, PASS_THROUGH]
    assert policies["roam-inspect-then-rekeyed"].policy_for(2) == policies["inspect-rsa"]


def test_a_roaming_policy_may_name_a_target_defined_later(tmp_path):
    path = tmp_path / "policies.toml"
    path.write_text('[policy.r]\nroam = { after = 1, to = "a" }\n[policy.a]\nmode = "tunnel"\n')
    policies = load_policies(path)
    assert list(policies) == ["r", "a"] and policies["r"].policy_for(2) is policies["a"]



# -- what the mutation check (./lab mutate policy) found untested ------------------------------

@pytest.mark.parametrize("key, value", [("untrusted_upstream", "allow"), ("leaf_key", "ec-256"), ("tls_min", "1.3")])
def test_tuning_for_forging_is_refused_on_a_tunnel(key, value):
    with pytest.raises(ValueError, match=f"^policy 't': {key} applies to mode = \"inspect\" only$"):
        Policy.from_dict("t", {"mode": "tunnel", key: value})
    assert getattr(Policy.from_dict("i", {key: value}), key) == value


def test_one_tls_version_only_is_a_valid_range():
    assert Policy.from_dict("p", {"tls_min": "1.3", "tls_max": "1.3"}).tls_max == "1.3"


@pytest.mark.parametrize("host", ["[::1", "::1]", "api.screenmeet.com]", "[api.screenmeet.com"])
def test_normalize_host_strips_only_a_pair_of_brackets(host):
    assert normalize_host(host) == host


def test_an_ip_pattern_is_no_wildcard():
    assert HostPattern.parse("192.0.2.10") == HostPattern("192.0.2.10", "192.0.2.10", False)


@pytest.mark.parametrize("text, where", [
    ("api.*.screenmeet.com", "'*' is only allowed as the whole leftmost label"),
    ("api_x.screenmeet.com", "labels are letters, digits and inner hyphens"),
])
def test_a_bad_label_is_said_in_full(text, where):
    with pytest.raises(ValueError) as info:
        HostPattern.parse(text)
    assert str(info.value) == f"exception pattern {text!r} is not a host pattern ({where})"


def test_an_unknown_roam_target_lists_the_known_policies():
    with pytest.raises(ValueError, match="names no policy; known: inspect, exception-wildcard.$"):
        Policy.from_dict("r", {"roam": {"after": 1, "to": "nowhere"}},
                         policies={"inspect": INSPECT, "exception-wildcard": EXCEPTION})


def test_exceptions_that_are_not_a_list_get_an_example():
    with pytest.raises(ValueError) as info:
        Policy.from_dict("x", {"exceptions": "*.screenmeet.com"})
    assert "e.g. exceptions = [\"*.screenmeet.com\"], not '*.screenmeet.com'" in str(info.value)


# -- proxy login (issue 14) ----------------------------------------------------------------------

def test_auth_is_parsed_checked_and_round_trips():
    p = Policy.from_dict("x", {"mode": "tunnel", "auth": "basic"})
    assert p.auth == "basic" and Policy.from_dict("x", p.to_dict()) == p
    assert "auth" not in Policy.from_dict("y", {}).to_dict()
    with pytest.raises(ValueError, match="auth = 'ntlm' is not one of basic"):
        Policy.from_dict("x", {"auth": "ntlm"})


def test_a_roam_keeps_the_login():
    with pytest.raises(ValueError, match="has another auth"):
        Policy.from_dict("r", {"auth": "basic", "roam": {"after": 1, "to": "inspect"}},
                         policies={"inspect": Policy("inspect")})


def test_shipped_login_policies():
    policies = load_policies()
    assert policies["inspect-login"].auth == "basic" and policies["inspect-login"].decide("api.screenmeet.com") == "intercepted"
    assert policies["exception-wildcard-login"].decide("api.screenmeet.com") == "passed-through"
    assert not policies["inspect"].auth
# -- exception matching by name or destination (issue 13) ---------------------------------------------

def test_an_ip_exception_matches_the_destination_only_when_given():
    from harness.model.policy import match_subjects

    p = Policy("ip", exceptions=(HostPattern.parse("127.0.0.1"), HostPattern.parse("*.scrn.mt")))
    # sni: the name the client asks for decides; the address it goes to is not consulted.
    host, destination = match_subjects("sni", "api.screenmeet.com", "127.0.0.1")
    assert destination is None and p.decide(host, destination) == INTERCEPT
    # destination: the address matches the IP exception whatever the name.
    host, destination = match_subjects("destination", "api.screenmeet.com", "127.0.0.1")
    assert destination == "127.0.0.1" and p.decide(host, destination) == PASS_THROUGH
    assert p.exception_for(host, destination).text == "127.0.0.1"
    # Another address does not; a name pattern never matches an address; names still match.
    assert p.decide("api.screenmeet.com", "127.0.0.2") == INTERCEPT
    assert p.decide("api.scrn.mt", "10.0.0.1") == PASS_THROUGH
    assert Policy("w", exceptions=(HostPattern.parse("*.screenmeet.com"),)).decide("x.example", "127.0.0.1") == INTERCEPT
    # An IP literal asked for by name is matched in both modes.
    assert p.decide(*match_subjects("sni", "127.0.0.1", None)) == PASS_THROUGH
    # A tunnel never decrypts.
    assert Policy("t", "tunnel").decide("api.screenmeet.com", "127.0.0.1") == PASS_THROUGH


def test_match_subjects_keeps_only_address_destinations_and_knows_its_modes():
    from harness.model.policy import match_subjects

    assert match_subjects("destination", "a.example", "a.example") == ("a.example", None)
    assert match_subjects("destination", "a.example", "[::1]") == ("a.example", "::1")
    assert match_subjects("destination", None, None) == (None, None)
    with pytest.raises(ValueError, match="exception matching 'address' is not one of sni, destination"):
        match_subjects("address", "a.example", "127.0.0.1")
