"""harness.lab.statedir: the state directory (0700), writable output directories, run_state_dir."""

import stat
from pathlib import Path

import pytest

from harness.errors import EnvironmentProblem
from harness.lab.statedir import default_state_dir, prepare_state_dir, run_state_dir, writable_dir


def test_prepare_creates_the_state_dir_private(tmp_path):
    state = prepare_state_dir(tmp_path / "a" / "state")
    assert state.is_dir() and stat.S_IMODE(state.stat().st_mode) == 0o700
    assert list(state.iterdir()) == []  # the write test leaves nothing behind


def test_an_unwritable_state_dir_is_one_sentence_naming_the_option(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(EnvironmentProblem) as e:
        prepare_state_dir(blocker / "state")
    message = str(e.value)
    assert message.startswith(f"the state directory {blocker / 'state'} is not writable (")
    assert message.endswith("pass --state-dir with a writable directory.") and "\n" not in message


def test_writable_dir_names_what_and_option(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("")
    with pytest.raises(EnvironmentProblem, match="the report directory .* pass --report with"):
        writable_dir(blocker / "r", what="report directory", option="--report")
    assert writable_dir(tmp_path / "r", what="report directory", option="--report").is_dir()


def test_default_state_dir_follows_the_environment(monkeypatch):
    monkeypatch.delenv("HARNESS_STATE_DIR", raising=False)
    assert default_state_dir() == Path(".lab")
    monkeypatch.setenv("HARNESS_STATE_DIR", "/tmp/elsewhere")
    assert default_state_dir() == Path("/tmp/elsewhere")


def test_run_state_dir_per_vendor():
    assert run_state_dir("/s") == Path("/s/run")
    assert run_state_dir(Path("/s"), "zscaler") == Path("/s/run-zscaler")
