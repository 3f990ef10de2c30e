"""The command line explains itself: a description for every command, help for every option, and
every mistake points at the --help of the command that was mistyped (real subprocesses)."""

from __future__ import annotations

import argparse

import pytest

from harness.cli.parser import build_parser
from harness.clients import attended, beam
from harness.lab import images
from tests.cli.test_main import assert_one_sentence_error, harness


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


PROGS = ["harness", "harness up", "harness down", "harness run", "harness pki", "harness probe", "harness images",
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
    for name in ("up", "down", "run", "pki", "probe", "images", "attended", "beam"):
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
