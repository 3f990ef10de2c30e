"""harness.cli.main: dispatch to the command modules and programs, LabError as one sentence and its exit code."""

import importlib
import importlib.metadata

import pytest

from harness.cli.main import COMMANDS, PROGRAMS, main
from tests.clihelpers import assert_one_sentence_error, harness


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_names_a_function_that_exists(command):
    module, function = COMMANDS[command]
    assert callable(getattr(importlib.import_module(module), function))


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_every_program_has_a_main(program):
    assert callable(importlib.import_module(PROGRAMS[program]).main)


def test_no_command_prints_the_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: harness" in capsys.readouterr().out


def test_a_lab_error_is_its_sentence_and_exit_code(tmp_path, capsys):
    """'pki --check' on an empty state directory raises BadFileError: printed, not raised."""
    assert main(["pki", "--check", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: ") and "there is no lab PKI" in err and len(err.strip().splitlines()) == 1


def test_programs_get_their_arguments_untouched(capsys):
    """'harness beam --help' is the Beam client's own help, not the harness parser's."""
    assert main(["beam", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--pins" in out and "--once" in out


def test_an_unknown_command_is_one_sentence():
    proc = harness("frobnicate")
    assert_one_sentence_error(proc, 2)
    assert "invalid choice: 'frobnicate'" in proc.stderr and "see 'harness --help'" in proc.stderr


def test_version_is_the_installed_distributions():
    proc = harness("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"harness {importlib.metadata.version('tls-inspection-lab')}\n"
