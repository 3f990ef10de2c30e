"""harness.lab.identity: a lab's processes are recognised by token and start time (or by holding
its lock), never by pid or command line alone.  Small throw-away processes; no lab."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time

import pytest

from harness.lab.identity import (
    STATE_ENV,
    TOKEN_ENV,
    ProcessRecord,
    carries,
    holds_flock,
    lab_environment,
    matches,
    new_token,
    scan,
    start_time,
    state_marker,
)

PY = sys.executable
SLEEP = "import time; time.sleep(60)"


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []

    def start(argv, env=None):
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
        started.append(p)
        wait_exec(p.pid, argv)
        return p

    yield start
    for p in started:
        p.kill()
        p.wait()


def wait_exec(pid: int, argv: list[str]) -> None:
    """Until ``pid`` runs ``argv`` (between fork and exec it still has the parent's environment)."""
    want = "\0".join(argv).encode()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if open(f"/proc/{pid}/cmdline", "rb").read().rstrip(b"\0") == want:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise AssertionError(f"{argv} did not start")


def test_start_time_is_stable_and_differs_between_processes(procs):
    a, b = procs(["sleep", "60"]), procs(["sleep", "60"])
    assert start_time(a.pid) == start_time(a.pid) is not None
    assert start_time(os.getpid()) <= start_time(a.pid) <= start_time(b.pid)
    assert start_time(2 ** 22 + 7) is None  # above pid_max: never a process


def test_start_time_survives_a_command_name_with_parentheses_and_spaces(tmp_path, procs):
    odd = tmp_path / "a) b ("
    odd.symlink_to("/bin/sleep")
    p = procs([str(odd), "60"])
    assert start_time(p.pid) == ProcessRecord.of(p.pid).start is not None


def test_a_token_is_fresh_and_carried_only_by_what_the_lab_spawned(tmp_path, procs):
    token = new_token()
    assert len(token) == 32 and token != new_token()
    mine = procs([PY, "-c", SLEEP], env=lab_environment(token, tmp_path))
    stranger = procs([PY, "-c", SLEEP, "harness"])  # looks like the lab on its command line
    other_lab = procs([PY, "-c", SLEEP], env=lab_environment(new_token(), tmp_path / "other"))
    assert carries(mine.pid, token=token) and carries(mine.pid, state=state_marker(tmp_path))
    assert not carries(stranger.pid, token=token) and not carries(stranger.pid, state=state_marker(tmp_path))
    assert not carries(other_lab.pid, token=token) and not carries(other_lab.pid, state=state_marker(tmp_path))
    assert not carries(os.getpid(), token=token)  # the test itself (its environ is its start-up one)
    assert {r.pid for r in scan(token=token)} == {mine.pid}
    assert {r.pid for r in scan(state=state_marker(tmp_path))} == {mine.pid}


def test_a_marker_without_a_token_is_not_the_labs(tmp_path, procs):
    """HARNESS_LAB_STATE alone (say, copied into a shell) does not make a process the lab's."""
    env = {**os.environ, STATE_ENV: state_marker(tmp_path)}
    env.pop(TOKEN_ENV, None)
    p = procs([PY, "-c", SLEEP], env=env)
    assert not carries(p.pid, state=state_marker(tmp_path))
    assert scan(state=state_marker(tmp_path)) == []


def test_matches_needs_the_token_and_the_recorded_start(tmp_path, procs):
    token = new_token()
    p = procs([PY, "-c", SLEEP], env=lab_environment(token, tmp_path))
    record = ProcessRecord.of(p.pid)
    assert matches(record, token=token)
    assert not matches(ProcessRecord(p.pid, record.start + 1), token=token)  # a reused pid starts later
    assert not matches(ProcessRecord(p.pid, None), token=token)
    assert not matches(record, token=new_token())
    assert not matches(record)  # neither token nor lock: nothing is the lab's by pid alone


def test_holding_the_flock_is_not_the_same_as_having_the_file_open(tmp_path, procs):
    """The lab's owner holds the lock; a 'tail -F lab.lock' merely has it open."""
    lock = tmp_path / "lab.lock"
    lock.write_text("")
    holder = procs([PY, "-c", f"import fcntl, time; f = open({str(lock)!r}, 'r+'); "
                              f"fcntl.flock(f, fcntl.LOCK_EX); time.sleep(60)"])
    tail = procs(["tail", "-F", str(lock)])
    deadline = time.monotonic() + 10
    while not holds_flock(holder.pid, lock) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert holds_flock(holder.pid, lock)
    assert matches(ProcessRecord.of(holder.pid), lock=lock)
    assert not holds_flock(tail.pid, lock)
    assert not matches(ProcessRecord.of(tail.pid), lock=lock)
    assert not holds_flock(holder.pid, tmp_path / "missing.lock")


def test_this_process_holding_a_shared_lock_is_not_an_owner(tmp_path):
    lock = tmp_path / "lab.lock"
    lock.write_text("")
    with open(lock) as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        assert not holds_flock(os.getpid(), lock)  # only an exclusive (WRITE) flock counts
        fcntl.flock(f, fcntl.LOCK_UN)


@pytest.mark.parametrize("data", [
    None, [], "12", {"pid": 1}, {"pid": "1", "start": 5}, {"pid": True, "start": 5}, {"pid": 0, "start": 5},
    {"pid": -4, "start": 5}, {"pid": 3, "start": -1}, {"pid": 3, "start": 1.5}, {"pid": 3, "start": 5, "x": 1},
])
def test_a_process_record_of_the_wrong_shape_is_a_type_error(data):
    with pytest.raises(TypeError):
        ProcessRecord.from_dict(data)


def test_a_process_record_round_trip():
    assert ProcessRecord.from_dict({"pid": 42, "start": 7}) == ProcessRecord(42, 7)
    assert ProcessRecord.from_dict({"pid": 42, "start": None}) == ProcessRecord(42, None)


def test_scan_needs_something_to_look_for():
    with pytest.raises(ValueError):
        scan()
