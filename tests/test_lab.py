"""The ./lab script a newcomer starts with: its --help lists everything it runs."""

from __future__ import annotations

import subprocess

import pytest

from tests.clihelpers import ROOT


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_lab_help_lists_its_commands_and_the_harness_commands(flag):
    proc = subprocess.run(["./lab", flag], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.startswith("usage: ./lab [COMMAND] [options]")
    listed = [line.split()[0] for line in text.splitlines() if line.startswith("  ") and line.strip()]
    for command in ("run", "test", "bench", "bench-load", "up", "down", "pki", "probe", "images", "attended", "beam"):
        assert command in listed, (command, text)
    assert "'./lab COMMAND --help' for its options" in text
    assert f'export PATH="{ROOT}/.venv/bin:$PATH"' in text  # how to type harness itself


def test_lab_passes_its_name_to_harness():
    """'./lab run --lanes 0' points at './lab run --help', which works as typed."""
    proc = subprocess.run(["./lab", "run", "--lanes", "0"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and proc.stderr.rstrip().endswith("see './lab run --help'.")
    assert subprocess.run(["./lab", "run", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300).stdout.startswith("usage: ./lab run ")
