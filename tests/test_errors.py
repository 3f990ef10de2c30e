"""harness.errors: the hierarchy the CLI and the clients rely on, the exit codes, UnknownNameError's sentence."""

from __future__ import annotations

import pytest

from harness.errors import (
    ArgumentParser,
    BadFileError,
    EnvironmentProblem,
    LabError,
    LabStartError,
    NetworkError,
    ProtocolError,
    StepTimeout,
    TlsHandshakeAborted,
    TlsVerificationError,
    UnknownNameError,
    UsageError,
    close_names,
    did_you_mean,
    usage_error,
)
from tests.clihelpers import assert_one_sentence_error, harness

SCENARIOS = ["direct", "tunnel-only", "inspected-continue", "inspected-decline", "inspected-untrusted-ca",
             "exception-wildcard", "exception-partial"]


@pytest.mark.parametrize("cls,parent,code", [
    (UsageError, LabError, 2),
    (UnknownNameError, UsageError, 2),
    (BadFileError, UsageError, 2),
    (EnvironmentProblem, LabError, 1),
    (LabStartError, LabError, 1),
])
def test_lab_errors_and_their_exit_codes(cls, parent, code):
    assert issubclass(cls, parent) and cls.exit_code == code


def test_the_base_exit_code_is_1():
    assert LabError("x").exit_code == 1


def test_client_failures_are_not_lab_errors():
    """A client's network or TLS failure is the remote side's, never printed as the caller's mistake."""
    for cls in (NetworkError, StepTimeout, ProtocolError, TlsVerificationError, TlsHandshakeAborted):
        assert not issubclass(cls, LabError)
    assert issubclass(StepTimeout, NetworkError) and issubclass(ProtocolError, NetworkError)
    assert issubclass(TlsHandshakeAborted, TlsVerificationError)
    assert not issubclass(TlsVerificationError, NetworkError)


def test_unknown_name_is_one_sentence_listing_the_known_names_sorted():
    e = UnknownNameError("vendor", "acme", ("zscaler", "fortinet"))
    assert str(e) == "unknown vendor 'acme'; choose one of: fortinet, zscaler."
    assert (e.kind, e.name, e.known) == ("vendor", "acme", ["zscaler", "fortinet"])


def test_tls_verification_error_carries_reason_and_issuer():
    e = TlsVerificationError("certificate has expired", issuer_cn="Acme CA")
    assert str(e) == e.reason == "certificate has expired" and e.issuer_cn == "Acme CA" and e.host is None


@pytest.mark.parametrize("name,expected", [
    ("directt", ["direct"]),
    ("DIRECT", ["direct"]),  # another case
    ("exception-wildcrad", ["exception-wildcard"]),  # swapped letters
    ("inspected-contine", ["inspected-continue"]),
    ("tunnel", ["tunnel-only"]),
    ("wget", []),  # nothing close: no guess
    ("", []),
])
def test_close_names(name, expected):
    assert close_names(name, SCENARIOS)[:1] == expected


def test_close_names_are_best_first_and_at_most_three():
    got = close_names("inspected", SCENARIOS + ["inspected-rsa", "inspected-tls12"])
    assert len(got) == 3 and all(g.startswith("inspected-") for g in got)


def test_did_you_mean():
    assert did_you_mean([]) == ""
    assert did_you_mean(["a"]) == " (did you mean 'a'?)"
    assert did_you_mean(["a", "b", "c"]) == " (did you mean 'a', 'b' or 'c'?)"


def test_unknown_name_suggests_then_lists():
    e = UnknownNameError("scenario", "directt", SCENARIOS)
    assert str(e).startswith("unknown scenario 'directt' (did you mean 'direct'?); choose one of: direct, ")
    assert e.suggestions == ["direct"] and e.exit_code == 2 and str(e).endswith(".")
    plain = UnknownNameError("client", "wget", ["attended", "beam"])
    assert str(plain) == "unknown client 'wget'; choose one of: attended, beam."


def test_usage_error_points_at_help_and_completes_a_choice():
    message = "argument --lab: invalid choice: 'compse' (choose from 'local', 'compose')"
    assert str(usage_error("harness run", message)) == (
        "harness run: argument --lab: invalid choice: 'compse' (choose from 'local', 'compose') "
        "(did you mean 'compose'?); see 'harness run --help'.")
    assert str(usage_error("harness run", "bad", named=False)) == "bad; see 'harness run --help'."


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog="tool")
    sub = p.add_subparsers(dest="command", parser_class=ArgumentParser)
    build = sub.add_parser("build")
    build.add_argument("--tag")
    deeper = build.add_subparsers(dest="what", parser_class=ArgumentParser)
    deeper.add_parser("image")
    return p


@pytest.mark.parametrize("argv,sentence", [
    (["build", "--bogus"], "tool build: unrecognized arguments: --bogus; see 'tool build --help'."),
    (["build", "image", "--x"], "tool build image: unrecognized arguments: --x; see 'tool build image --help'."),
    (["--x"], "tool: unrecognized arguments: --x; see 'tool --help'."),
    (["biuld"], "tool: argument command: invalid choice: 'biuld' (choose from 'build') (did you mean 'build'?); "
                "see 'tool --help'."),
])
def test_argument_parser_blames_the_subcommand_that_was_mistyped(argv, sentence):
    with pytest.raises(UsageError) as info:
        _parser().parse_args(argv)
    assert str(info.value) == sentence and info.value.exit_code == 2


@pytest.mark.parametrize("args,sentence", [
    (["run", "--scenario", "directt"], "unknown scenario 'directt' (did you mean 'direct'?); choose one of: "),
    (["run", "--client", "bem"], "unknown client 'bem' (did you mean 'beam'?); choose one of: "),
    (["run", "--vendor", "zscalr"], "unknown vendor 'zscalr' (did you mean 'zscaler'?); choose one of: "),
    (["pki", "--vendor", "palo-alto-networks"], "unknown vendor 'palo-alto-networks' (did you mean 'palo-alto'?)"),
    (["up", "--policies", "inspct"], "unknown policy 'inspct' (did you mean 'inspect'"),
    (["run", "--lab", "compse"], "(did you mean 'compose'?); see 'harness run --help'."),
    (["rn"], "(did you mean 'run'?); see 'harness --help'."),
])
def test_the_command_line_suggests_the_closest_name(tmp_path, args, sentence):
    proc = harness(*args, "--state-dir", str(tmp_path)) if args[0] != "rn" else harness(*args)
    assert_one_sentence_error(proc, 2)
    assert proc.stderr.startswith("harness: ") and sentence in proc.stderr, proc.stderr


def test_the_plugin_suggests_the_closest_name(run_scenario, run_client):
    with pytest.raises(UnknownNameError, match=r"unknown scenario 'inspected-contineu' \(did you mean 'inspected-"):
        run_scenario("inspected-contineu", "beam")
    with pytest.raises(UnknownNameError, match=r"unknown client 'curl-pined' \(did you mean 'curl-pinned'"):
        run_client("curl-pined", "direct")
