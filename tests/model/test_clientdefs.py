"""Tests for harness.model.clientdefs: definitions, templates and the outcome each policy implies (no lab needed)."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

from harness.errors import BadFileError, PatternTimeout
from harness.model.clientdefs import (
    builtin_clients,
    define_client,
    load_clients,
    parse_client,
    placeholder_values,
)
from harness.model.policy import load_policies
from harness.model.scenarios import load_scenarios

POLICIES = load_policies()
SCENARIOS = load_scenarios()

CURL = dict(
    policy="pinned-strict",
    command=["curl", "--cacert", "{trust}", "--pinnedpubkey", "{pins_curl}", "{network}", "{url}"],
    proxy=["--proxy", "{proxy_url}"],
    direct=["--connect-to", "{host}:{port}:{connect_to}"],
    exit_codes={0: "connected", 90: "refused"},
)


def values(**over):
    pin = "sha256/" + base64.b64encode(hashlib.sha256(b"k").digest()).decode()
    v = placeholder_values(proxy_url="http://127.0.0.1:9", trust="/t.pem", pins="/p.txt", pins_text=pin + "\n",
                           url="https://beam.screenmeet.com/", scenario="s", connect_to="", secret="S3", lane=1)
    return {**v, **over}


def test_render_behind_a_proxy_and_direct():
    c = define_client("c", **CURL)
    run = c.render(values(), via_proxy=True)
    assert run.argv[:3] == ("curl", "--cacert", "/t.pem")
    assert run.argv[-3:] == ("--proxy", "http://127.0.0.1:9", "https://beam.screenmeet.com/")
    assert run.argv[4].startswith("sha256//") and run.stdin is None
    direct = c.render(values(proxy_url="", connect_to="127.0.0.1:8443"), via_proxy=False)
    assert direct.argv[-3:] == ("--connect-to", "beam.screenmeet.com:443:127.0.0.1:8443", "https://beam.screenmeet.com/")
    assert "--proxy" not in direct.argv


def test_literal_braces_and_empty_env_values():
    c = define_client("c", **{**CURL, "command": ["curl", "-w", "%{{http_code}}", "{network}", "{url}"],
                              "env": {"HTTPS_PROXY": "{proxy_url}", "LANE": "{lane}"}})
    assert c.render(values(), via_proxy=True).argv[2] == "%{http_code}"
    assert c.render(values(), via_proxy=True).env == {"HTTPS_PROXY": "http://127.0.0.1:9", "LANE": "1"}
    # Negative: in the direct scenario the empty proxy variable is dropped, not set to "".
    assert c.render(values(proxy_url=""), via_proxy=False).env == {"LANE": "1"}


def test_warn_client_answers_by_stdin_or_args():
    warn = define_client("w", policy="pinned-warn", command=["w", "{network}", "{answer}"], proxy=["{proxy_url}"],
                         warning="mismatch", answer={"continue": {"stdin": "y\n"}, "abort": {"args": ["--no"]}})
    go = warn.render(values(), via_proxy=True, on_warning="continue")
    stop = warn.render(values(), via_proxy=True, on_warning="abort")
    assert (go.argv, go.stdin) == (("w", "http://127.0.0.1:9"), "y\n")
    assert (stop.argv, stop.stdin) == (("w", "http://127.0.0.1:9", "--no"), None)
    assert warn.warned("WARNING: certificate mismatch\n") is True
    assert warn.warned("all fine") is False
    assert define_client("c", **CURL).warned("mismatch") is None  # no regex: unknown, not "no warning"


def _scenario(name):
    return next(s for s in SCENARIOS if s.name == name)


def _expected(client, scenario):
    return client.expected(_scenario(scenario), POLICIES)


def test_policies_reproduce_the_reference_columns():
    """pinned-strict on beam.screenmeet.com is Beam's column, pinned-warn on api.screenmeet.com the attended one,
    wherever the scenario sends the reference client to that host without extra flags."""
    strict = define_client("s", **CURL)
    warn = define_client("w", **{**CURL, "policy": "pinned-warn", "url": "https://api.screenmeet.com",
                                 "warning": "x", "answer": {"continue": {"stdin": "y"}, "abort": {"stdin": "n"}}})
    compared = 0
    for s in SCENARIOS:
        if s.urls or s.client_args or (s.policy and POLICIES[s.policy].roam):
            continue
        compared += 1
        assert strict.expected(s, POLICIES) == s.expect["beam"], s.name
        assert warn.expected(s, POLICIES) == s.expect["attended"], s.name
    assert compared >= 7


def test_columns_do_not_transfer_to_another_host_or_other_flags():
    strict = define_client("s", **CURL)
    # Beam goes to beam.scrn.mt, which *.screenmeet.com does not cover; this client's host it does.
    assert _scenario("exception-misses-scrn-mt").expect["beam"] == "refused"
    assert _expected(strict, "exception-misses-scrn-mt") == "connected"
    # Beam is forced to TLS 1.2 against a TLS 1.3-only proxy; this client is not, so it meets the pin check.
    assert _scenario("tls12-client-vs-tls13-proxy").expect["beam"] == "tls-error"
    assert _expected(strict, "tls12-client-vs-tls13-proxy") == "refused"


def test_unpinned_behind_hostile_upstreams():
    u = define_client("u", **{**CURL, "policy": "unpinned"})
    assert _expected(u, "hostile-expired-tunnel") == "tls-error"  # the certificate itself fails, pinned or not
    assert _expected(u, "untrusted-upstream-block-page") == "blocked"  # past the pin: the proxy's block page
    assert _expected(u, "untrusted-upstream-allow") == "accepted-inspection"
    # The default vendor's row has the attended client decline: nothing tells what an unpinned client meets.
    assert _expected(u, "untrusted-upstream") is None
    over = define_client("u", **{**CURL, "policy": "unpinned", "expect": {"untrusted-upstream": "blocked"}})
    assert _expected(over, "untrusted-upstream") == "blocked"


def test_roaming_rows_are_undetermined_unless_set():
    """Which connection meets the switch depends on the client (curl makes one, the reference clients two)."""
    for policy in ("pinned-strict", "unpinned"):
        assert _expected(define_client("c", **{**CURL, "policy": policy}), "roaming-exception-withdrawn") is None
    over = define_client("c", **{**CURL, "expect": {"roaming-exception-withdrawn": "connected"}})
    assert _expected(over, "roaming-exception-withdrawn") == "connected"


def test_unpinned_expectations_and_overrides():
    c = define_client("u", **{**CURL, "policy": "unpinned"})
    assert [_expected(c, n) for n in ("direct", "tunnel-only", "inspected-continue", "inspected-untrusted-ca",
                                      "exception-wildcard", "exception-partial")] == [
        "connected", "connected", "accepted-inspection", "tls-error", "connected", "accepted-inspection"]
    api = define_client("u", **{**CURL, "policy": "unpinned", "url": "https://api.screenmeet.com/"})
    assert _expected(api, "exception-partial") == "connected"  # the host decides, not the scenario name
    over = define_client("u", **{**CURL, "policy": "unpinned", "expect": {"direct": "network-error"}})
    assert _expected(over, "direct") == "network-error"


@pytest.mark.parametrize("change,needle", [
    ({"policy": "pinned"}, "policy 'pinned' is not one of"),
    ({"command": []}, "'command' must be a non-empty list"),
    ({"command": "curl {url}"}, "'command' must be a non-empty list"),
    ({"command": ["curl", "{proxy}", "{network}"]}, "unknown placeholder {proxy}"),
    ({"command": ["curl", "{url!r}", "{network}"]}, "unknown placeholder {url!r}"),
    ({"command": ["curl", "{url", "{network}"]}, "is malformed"),
    ({"command": ["curl", "{url}"]}, "need a \"{network}\" argument"),
    ({"proxy": [], "direct": []}, "never uses {proxy_url}"),
    ({"url": "http://beam.screenmeet.com"}, "is not an https:// URL"),
    ({"exit_codes": {"x": "refused"}}, "exit code 'x' is not a number"),
    ({"exit_codes": {90: "blocked"}}, "maps to 'blocked'"),
    ({"exit_codes": {}}, "'exit_codes' must map"),
    ({"warning": "("}, "is not a valid regular expression"),
    ({"answer": {"continue": {"stdin": "y"}}}, "only applies to pinned-warn"),
    ({"policy": "pinned-warn"}, "needs 'warning'"),
    ({"policy": "pinned-warn", "warning": "w"}, "needs 'answer' with 'continue' and 'abort'"),
    ({"policy": "pinned-warn", "warning": "w", "answer": {"continue": {"args": ["-y"]}, "abort": {"stdin": ""}}},
     "need an \"{answer}\" argument"),
    ({"policy": "pinned-warn", "warning": "w", "answer": {"continue": {"say": "y"}, "abort": {"stdin": "n"}}},
     "answer.continue must be"),
    ({"timeout": -1}, "timeout = -1 is not a number of seconds above 0"),
    ({"expect": {"direct": "fine"}}, "'expect' must map scenario names to outcomes"),
    ({"colour": "red"}, "unknown keys ['colour']"),
    ({"env": {"A": 1}}, "'env' must map variable names to strings"),
])
def test_bad_definitions_are_one_sentence(change, needle):
    with pytest.raises(BadFileError) as e:
        parse_client("bad", {**CURL, **change}, "clients.toml")
    msg = str(e.value)
    assert needle in msg and msg.startswith("clients.toml: client 'bad'") and "\n" not in msg


WARN = {"policy": "pinned-warn", "warning": "w", "command": ["w", "{network}", "{answer}"]}


@pytest.mark.parametrize("change,needle", [
    ({"timeout": float("nan")}, "timeout = nan is not a number of seconds above 0, at most 3600"),
    ({"timeout": float("inf")}, "timeout = inf is not a number of seconds above 0, at most 3600"),
    ({"timeout": True}, "timeout = True is not a number of seconds above 0, at most 3600"),
    ({"timeout": 1e300}, "timeout = 1e+300 is not a number of seconds above 0, at most 3600"),
    ({"timeout": 0}, "timeout = 0 is not a number of seconds above 0"),
    ({"timeout": 10**400}, "0000000... is not a number of seconds above 0"),
    ({"timeout": "30"}, "timeout = '30' is not a number of seconds"),
    ({"exit_codes": {"\u00b2": "refused"}}, "exit code '\u00b2' is not a number from 0 to 255"),
    ({"exit_codes": {256: "refused"}}, "exit code 256 is not a number from 0 to 255"),
    ({"exit_codes": {True: "refused"}}, "exit code True is not a number"),
    ({"url": 443}, "url = 443 is not an https:// URL"),
    ({"warning": 3}, "warning = 3 is not a string"),
    ({"description": 3}, "description = 3 is not a string"),
    ({"proxy": "--proxy {proxy_url}"}, "'proxy' must be a list of strings, e.g. proxy = [\"--proxy\", \"{proxy_url}\"]"),
    ({"env": {1: "{proxy_url}"}}, "'env' must map variable names to strings"),
    ({"expect": {"direct": {"outcome": "connected"}}}, "expect.direct = {'outcome': 'connected'} is not one of"),
    ({**WARN, "answer": {"continue": {"stdin": 1}, "abort": {"stdin": "n"}}},
     "answer.continue.stdin = 1 is not a string such as"),
    ({**WARN, "answer": {"continue": {"args": "-y"}, "abort": {"stdin": "n"}}},
     "'answer.continue.args' must be a list of strings, e.g. answer.continue.args = [\"--flag\"], not '-y'"),
])
def test_more_bad_definitions_are_one_sentence(change, needle):
    with pytest.raises(BadFileError) as e:
        parse_client("bad", {**CURL, **change}, "clients.toml")
    msg = str(e.value)
    assert needle in msg and msg.startswith("clients.toml: client 'bad'") and msg.endswith(".") and "\n" not in msg


def test_define_client_leaves_the_callers_answer_alone():
    answer = {"continue": {"stdin": "y"}, "abort": {"args": ["--no"]}}
    c = define_client("w", **{**CURL, **WARN, "answer": answer})
    assert answer == {"continue": {"stdin": "y"}, "abort": {"args": ["--no"]}}
    assert c.answer == {"continue": {"stdin": "y", "args": []}, "abort": {"args": ["--no"]}}


def test_reference_names_are_reserved():
    with pytest.raises(BadFileError, match="reuses a reference client's name"):
        parse_client("beam", CURL)


def test_load_clients_file_errors(tmp_path):
    with pytest.raises(BadFileError, match="does not exist"):
        load_clients(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[client.x\n")
    with pytest.raises(BadFileError, match="is not valid TOML"):
        load_clients(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text("title = 'no clients'\n")
    with pytest.raises(BadFileError, match="defines no client"):
        load_clients(empty)
    notable = tmp_path / "notable.toml"
    notable.write_text("client = { x = 1 }\n")
    with pytest.raises(BadFileError, match="must be a \\[client.x\\] table"):
        load_clients(notable)


def test_builtin_definitions_load_and_cover_every_policy():
    clients = builtin_clients()
    assert {"curl-pinned", "curl-unpinned", "attended-cli"} <= set(clients)
    assert {c.policy for c in clients.values()} == {"pinned-strict", "unpinned", "pinned-warn"}
    assert clients["curl-pinned"].exit_codes[90] == "refused"
    assert repr(clients["curl-pinned"]).startswith("ClientDef(name='curl-pinned', policy='pinned-strict'")


def test_readme_shows_the_client_repo_example_verbatim():
    """The README's example for client developers is a real test file that CI runs: the two cannot drift."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    marker = "<!-- example: tests/test_plugin_example.py -->\n```python\n"
    assert marker in readme
    shown = readme.split(marker, 1)[1].split("```\n", 1)[0]
    assert shown == (root / "tests" / "test_plugin_example.py").read_text()


def test_readme_client_definitions_are_valid(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```toml\n")[1:] if b.startswith("[client.")]
    assert blocks
    for n, block in enumerate(blocks):
        f = tmp_path / f"c{n}.toml"
        f.write_text(block)
        assert load_clients(f)


def test_public_names_stay_importable_from_clientdefs():
    """The README and pytest plugin users import these from harness.model.clientdefs."""
    import harness.model.clientdefs as clientdefs
    import harness.model.placeholders as placeholders

    for name in clientdefs.__all__:
        assert hasattr(clientdefs, name), name
    assert clientdefs.placeholder_values is placeholders.placeholder_values
    assert clientdefs.PLACEHOLDERS is placeholders.PLACEHOLDERS


# -- a warning pattern cannot hang the run ---------------------------------------------------------------

def _warn_client(pattern: str):
    return define_client("w", policy="pinned-warn", warning=pattern, command=["w", "{proxy_url}"],
                         answer={"continue": {"stdin": "y\n"}, "abort": {"stdin": "n\n"}})


def test_warned_matches_lines():
    client = _warn_client(r"^WARNING: .*mismatch")
    assert client.warned("hello\nWARNING: certificate mismatch\n") is True
    assert client.warned("no warning here") is False
    assert define_client("c", **CURL).warned("anything") is None


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(a|aa)+$", r"(a|a)+b"])
def test_a_catastrophic_warning_pattern_stops_with_a_sentence(pattern):
    """The pattern is the user's; before, re.search on this output ran for longer than anyone waits."""
    start = time.monotonic()
    with pytest.raises(PatternTimeout) as info:
        _warn_client(pattern).warned("a" * 100_000 + "!", timeout=0.5)
    assert time.monotonic() - start < 10  # the timeout, give or take a loaded machine
    message = str(info.value)
    assert message.startswith("client 'w': its warning pattern") and "took more than 0.5s on 100001 characters" in message
    assert "simplify it" in message and "\n" not in message and message.endswith(".")


@pytest.mark.parametrize("code", ["1" * 5000, 10**5000, "²", -1, 256, True],
                         ids=["5000-digit-text", "5000-digit-int", "superscript", "negative", "256", "bool"])
def test_exit_codes_beyond_what_int_and_repr_take_are_one_sentence(code):
    """int() and repr() refuse numbers of over 4300 digits: before, a ValueError escaped."""
    with pytest.raises(BadFileError, match=r"^clients.toml: client 'c': exit code .* is not a number from 0 to 255\.$"):
        parse_client("c", {**CURL, "exit_codes": {code: "connected"}}, "clients.toml")
