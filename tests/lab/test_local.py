"""harness.lab.local, the lifecycle parts: a local lab holds its state directory's lock from start to
stop, and every process it spawns (restarted ones too) carries its token and is recorded with its
start time.  Real labs (one lane, two policies)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.lab.identity import ProcessRecord, carries, matches
from harness.lab.local import LocalLab
from harness.lab.lock import is_locked, read_holder
from harness.lab.options import LabOptions
from harness.model.policy import load_policies

ROOT = Path(__file__).resolve().parents[2]


def small_lab(state: Path) -> LocalLab:
    policies = load_policies()
    return LocalLab(LabOptions(state_dir=state, lanes=1), policies={n: policies[n] for n in ("inspect", "tunnel")})


def test_a_local_lab_locks_its_directory_and_marks_its_processes(tmp_path):
    state = tmp_path / "lab"
    lab = small_lab(state)
    with lab as info:
        assert is_locked(state) and read_holder(state).token == info.token
        assert set(info.processes) == {"proxy", "server"}
        for record in info.processes.values():
            assert matches(record, token=info.token) and carries(record.pid, token=info.token)
        second = subprocess.run([sys.executable, "-m", "harness", "up", "--lanes", "1", "--state-dir", str(state)],
                                capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)
        assert second.returncode == 2 and "is in use" in second.stderr and "Traceback" not in second.stderr
        old = info.processes["proxy"]
        lab.restart_proxy()  # a restarted process is the lab's as well, under its new pid
        assert info.processes["proxy"] != old and matches(info.processes["proxy"], token=info.token)
        assert info.processes["proxy"] == ProcessRecord.of(lab.children[1].pid)
    assert not is_locked(state)


def test_two_labs_of_one_process_cannot_share_a_directory(tmp_path):
    state = tmp_path / "lab"
    with small_lab(state):
        with pytest.raises(UsageError, match="a lab of this process already runs in"):
            small_lab(state).start()
        assert is_locked(state)  # the refused one released nothing of the running one's
    with small_lab(state):  # and once stopped, the directory is free again
        pass


def test_a_lab_that_fails_to_start_lets_go_of_the_directory(tmp_path):
    state = tmp_path / "lab"
    lab = LocalLab(LabOptions(state_dir=state, lanes=1, python="/nonexistent/python"),
                   policies={"inspect": load_policies()["inspect"]})
    with pytest.raises(FileNotFoundError):  # (LabOptions.python is for programs, not people)
        lab.start()
    assert not is_locked(state)
