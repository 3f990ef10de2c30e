"""harness.cli.parser: the arguments, their one-sentence errors, and LabOptions from them."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.cli.parser import build_parser, lab_options
from harness.clients import attended, beam
from harness.errors import UnknownNameError, UsageError
from harness.lab import images
from harness.lab.options import DEFAULT_ORG_CN, LabOptions
from harness.lab.statedir import default_state_dir
from tests.clihelpers import assert_one_sentence_error, harness


def test_errors_are_one_sentence_pointing_at_the_commands_help():
    with pytest.raises(UsageError) as e:
        build_parser().parse_args(["run", "--lanes", "0"])
    message = str(e.value)
    assert "--lanes" in message and message.endswith("see 'harness run --help'.")
    assert "\n" not in message


def test_up_defaults_make_the_default_lab_options(monkeypatch):
    monkeypatch.delenv("HARNESS_LAB", raising=False)
    monkeypatch.delenv("HARNESS_VENDOR", raising=False)
    options = lab_options(build_parser().parse_args(["up"]))
    assert isinstance(options, LabOptions)
    assert options.backend == "local" and options.lanes == 4 and options.state_dir == default_state_dir()
    assert options.org_common_name == DEFAULT_ORG_CN and options.name_constraints and options.vendor is None
    assert options.transparent is False and options.base_port is None and not options.show_secrets


def test_arguments_reach_lab_options():
    args = build_parser().parse_args(["run", "--lab", "local", "--state-dir", "/tmp/s", "--lanes", "2",
                                      "--no-name-constraints", "--transparent", "--base-port", "20000",
                                      "--org-cn", "Acme CA", "--show-secrets"])
    options = lab_options(args)
    assert options.state_dir == Path("/tmp/s") and options.lanes == 2 and options.name_constraints is False
    assert options.transparent is True and options.base_port == 20000
    assert options.org_common_name == "Acme CA" and options.show_secrets
    vendor = lab_options(build_parser().parse_args(["run", "--lab", "local", "--vendor", "zscaler"]))
    assert vendor.vendor.name == "zscaler"


def test_changes_override_the_arguments():
    options = lab_options(build_parser().parse_args(["up", "--lanes", "3"]), lanes=1)
    assert options.lanes == 1


def test_an_unknown_vendor_is_refused_when_the_options_are_made():
    with pytest.raises(UnknownNameError, match="unknown vendor 'nope'"):
        lab_options(build_parser().parse_args(["up", "--lab", "local", "--vendor", "nope"]))


def test_the_environment_picks_the_backend(monkeypatch):
    monkeypatch.setenv("HARNESS_LAB", "compose")
    assert build_parser().parse_args(["down"]).lab == "compose"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {name: sub for a in parser._actions if isinstance(a, argparse._SubParsersAction)
            for name, sub in a.choices.items()}


def every_parser() -> dict[str, argparse.ArgumentParser]:
    top = build_parser()
    parsers = {"harness": top, **{f"harness {n}": p for n, p in _subcommands(top).items()}}
    # images, attended and beam parse their own arguments: their real parsers replace the placeholders.
    image = images.build_parser()
    parsers.update({"harness images": image, "harness attended": attended.build_parser(),
                    "harness beam": beam.build_parser(),
                    **{f"harness images {n}": p for n, p in _subcommands(image).items()}})
    return parsers


PROGS = ["harness", "harness up", "harness down", "harness run", "harness pki", "harness probe", "harness evidence",
         "harness audit", "harness images",
         "harness images build", "harness attended", "harness beam"]


@pytest.fixture
def parsers(monkeypatch):
    monkeypatch.delenv("HARNESS_PROG", raising=False)
    return every_parser()


def test_every_command_is_checked(parsers):
    assert sorted(parsers) == sorted(PROGS)


@pytest.mark.parametrize("prog", PROGS)
def test_every_command_has_a_description_and_every_option_help(parsers, prog):
    parser = parsers[prog]
    assert parser.prog == prog
    assert parser.description and len(parser.description) > 20, f"{prog} has no description"
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            assert all(c.help for c in action._choices_actions), f"{prog}: a subcommand has no help line"
            continue
        assert action.help and len(action.help) > 10, f"{prog} {action.option_strings or action.dest}: no help"


def test_the_top_help_lists_every_command_with_a_line(parsers):
    text = parsers["harness"].format_help()
    for name in ("up", "down", "run", "pki", "probe", "audit", "images", "attended", "beam"):
        assert f"\n    {name} " in text
    assert "Run 'harness COMMAND --help'" in text


@pytest.mark.parametrize("args,prog", [
    (["--bogus"], "harness"),
    (["run", "--bogus"], "harness run"),
    (["run", "--lanes", "0"], "harness run"),
    (["up", "--bogus"], "harness up"),
    (["down", "--bogus"], "harness down"),
    (["down", "--lab", "kubernetes"], "harness down"),
    (["pki", "--bogus"], "harness pki"),
    (["probe"], "harness probe"),
    (["probe", "h", "--timeout", "-1"], "harness probe"),
    (["audit"], "harness audit"),
    (["audit", "--proxy", "http://127.0.0.1:1", "--listen", "nowhere"], "harness audit"),
    (["images"], "harness images"),
    (["images", "biuld"], "harness images"),
    (["images", "build", "--bogus"], "harness images build"),
    (["beam", "--bogus"], "harness beam"),
    (["attended", "--pins", "p", "--on-warning", "maybe"], "harness attended"),
])
def test_every_mistake_points_at_its_commands_help(args, prog):
    proc = harness(*args)
    assert_one_sentence_error(proc, 2)
    assert proc.stderr.rstrip().endswith(f"; see '{prog} --help'."), proc.stderr
    assert "usage:" not in proc.stderr  # one sentence, not argparse's usage dump


@pytest.mark.parametrize("prog", ["up", "down", "run", "pki", "probe", "images", "images build", "attended", "beam"])
def test_help_exits_zero(prog):
    proc = harness(*prog.split(), "--help")
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: harness {prog}"), proc.stdout + proc.stderr


def test_run_by_the_lab_script_the_sentences_name_it(monkeypatch):
    """./lab sets HARNESS_PROG: usage lines and "see '... --help'" name the command the person typed."""
    monkeypatch.setenv("HARNESS_PROG", "./lab")
    proc = harness("run", "--lanes", "0")
    assert_one_sentence_error(proc, 2)
    assert proc.stderr.rstrip().endswith("; see './lab run --help'.")
    assert harness("run", "--help").stdout.startswith("usage: ./lab run ")


def test_up_evidence_flags_reach_lab_options():
    from harness.cli.parser import evidence_options

    args = build_parser().parse_args(["up", "--upstream", "live", "--upstream-trust", "ca.pem", "--web",
                                      "--save-flows", "f.mitm", "--har", "f.har", "--keylog", "k.txt", "--pcap", "c.pcap"])
    o = lab_options(args, **evidence_options(args))
    assert (o.upstream, o.upstream_trust, o.web) == ("live", Path("ca.pem"), True)
    assert (o.save_flows, o.har, o.keylog, o.pcap) == (Path("f.mitm"), Path("f.har"), Path("k.txt"), Path("c.pcap"))
    plain = build_parser().parse_args(["up"])
    assert lab_options(plain, **evidence_options(plain)).upstream == "mock"
