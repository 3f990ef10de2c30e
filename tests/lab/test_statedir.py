"""harness.lab.statedir: the state directory (0700), writable output directories, run_state_dir."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from harness.errors import EnvironmentProblem
from harness.lab.statedir import default_state_dir, prepare_state_dir, read_state_file, run_state_dir, writable_dir


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


def test_checks_of_one_directory_at_the_same_instant_do_not_trip_each_other(tmp_path):
    """Two 'harness up' at once both prove the state directory writable: with one shared probe name,
    one's unlink found the other's file gone and said "not writable" (CI saw it) instead of LabBusy."""
    import threading

    errors: list[Exception] = []

    def check() -> None:
        for _ in range(300):
            try:
                prepare_state_dir(tmp_path / "state")
            except Exception as e:  # noqa: BLE001 - collected, asserted below
                errors.append(e)

    threads = [threading.Thread(target=check) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and not list((tmp_path / "state").iterdir())


def test_default_state_dir_follows_the_environment(monkeypatch):
    monkeypatch.delenv("HARNESS_STATE_DIR", raising=False)
    assert default_state_dir() == Path(".lab")
    monkeypatch.setenv("HARNESS_STATE_DIR", "/tmp/elsewhere")
    assert default_state_dir() == Path("/tmp/elsewhere")


def test_run_state_dir_per_vendor():
    assert run_state_dir("/s") == Path("/s/run")
    assert run_state_dir(Path("/s"), "zscaler") == Path("/s/run-zscaler")


def test_a_small_regular_file_is_read(tmp_path):
    (tmp_path / "lab.json").write_bytes(b'{"a": 1}')
    assert read_state_file(tmp_path / "lab.json") == b'{"a": 1}'
    assert read_state_file(tmp_path / "lab.json", limit=8) == b'{"a": 1}'


def make_fifo(p):
    os.mkfifo(p)


def make_zero_link(p):
    p.symlink_to("/dev/zero")


def make_dir(p):
    p.mkdir()


def make_big(p):
    with open(p, "wb") as f:
        f.truncate(2 << 20)


@pytest.mark.parametrize("make,reason", [
    (make_fifo, "not a regular file"),          # would block open() or read() for ever
    (make_zero_link, "a symbolic link"),        # would read without end
    (make_dir, "a directory"),
    (make_big, "larger than"),
])
def test_anything_else_is_an_os_error_at_once(tmp_path, make, reason):
    path = tmp_path / "lab.json"
    make(path)
    start = time.monotonic()
    with pytest.raises(OSError, match=reason):
        read_state_file(path)
    assert time.monotonic() - start < 1


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_state_file(tmp_path / "nope")
