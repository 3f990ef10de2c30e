"""harness.lab.lock: one lab per state directory.  Other holders are real processes; no lab."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.errors import EnvironmentProblem, UsageError
from harness.lab.identity import lab_environment
from harness.lab.lock import LOCK_FILE, LabBusy, acquire, adopt, is_locked, read_holder

PY = sys.executable


def hold_in_child(state_dir, role="up") -> subprocess.Popen:
    """Another process that locks ``state_dir`` and keeps it until killed; returns once it holds it."""
    code = ("import sys, time; from harness.lab.lock import acquire; "
            f"acquire(sys.argv[1], role={role!r}); print('locked', flush=True); time.sleep(60)")
    p = subprocess.Popen([PY, "-c", code, str(state_dir)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_acquire_creates_the_directory_and_records_the_holder(tmp_path):
    state = tmp_path / "new" / "state"
    with acquire(state, role="up") as lock:
        assert state.is_dir() and (state.stat().st_mode & 0o777) == 0o700
        assert ((state / LOCK_FILE).stat().st_mode & 0o777) == 0o600
        holder = read_holder(state)
        assert holder == lock.holder and holder.pid == os.getpid() and holder.role == "up"
        assert len(holder.token) == 32 and holder.start is not None
        assert is_locked(state) and is_locked(state)  # probing does not take it
    assert not is_locked(state)
    assert (state / LOCK_FILE).exists()  # never deleted: a deleted lock file lets two labs each lock one


def test_within_a_process_the_lock_is_reentrant_with_one_token(tmp_path):
    outer = acquire(tmp_path, role="up")
    inner = acquire(tmp_path)
    assert inner.token == outer.token and inner.fd == outer.fd
    inner.release()
    inner.release()  # twice is harmless: one reference, released once
    assert is_locked(tmp_path)
    outer.release()
    assert not is_locked(tmp_path)
    again = acquire(tmp_path)
    assert again.token != outer.token  # a new lab gets a new token
    again.release()


def test_a_second_process_gets_one_sentence_naming_the_running_lab(tmp_path):
    holder = hold_in_child(tmp_path)
    try:
        start = time.monotonic()
        with pytest.raises(LabBusy) as busy:
            acquire(tmp_path)
        assert time.monotonic() - start < 2
        message = str(busy.value)
        assert busy.value.exit_code == 2 and "\n" not in message
        assert f"pid {holder.pid}" in message and "started 20" in message
        assert f"'harness down --state-dir {tmp_path}'" in message and "--replace" in message
    finally:
        holder.kill()
        holder.wait()
    # The kernel let go when the holder died (SIGKILL: no clean-up ran).
    acquire(tmp_path).release()


def test_a_busy_message_for_a_run_or_plugin_lab_says_it_ends_with_its_command(tmp_path):
    holder = hold_in_child(tmp_path, role="lab")
    try:
        with pytest.raises(LabBusy, match="it stops when that command ends"):
            acquire(tmp_path)
    finally:
        holder.kill()
        holder.wait()


def test_a_holder_record_that_is_garbage_still_blocks_and_says_so(tmp_path):
    holder = hold_in_child(tmp_path)
    try:
        (tmp_path / LOCK_FILE).write_text("garbage")  # the lock is on the inode, not the text
        with pytest.raises(LabBusy, match="another process is starting a lab there"):
            acquire(tmp_path)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("text", ["", "{", "[]", '{"pid": "1"}', json.dumps({"pid": 1, "start": 2, "token": 3,
                                                                             "role": "up", "command": "x", "since": 1})])
def test_read_holder_of_a_broken_record_is_none(tmp_path, text):
    (tmp_path / LOCK_FILE).write_text(text)
    assert read_holder(tmp_path) is None


def test_a_lock_file_that_is_a_symlink_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("precious")
    state = tmp_path / "state"
    state.mkdir()
    (state / LOCK_FILE).symlink_to(elsewhere)
    with pytest.raises(UsageError, match="cannot open the lock file"):
        acquire(state)
    assert elsewhere.read_text() == "precious"


def test_a_state_dir_that_is_a_file_is_one_sentence(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(EnvironmentProblem, match="not writable") as e:
        acquire(tmp_path / "file")
    assert "\n" not in str(e.value)


def test_two_processes_at_the_same_instant_exactly_one_wins(tmp_path):
    """Eight processes released together by one pipe: one holds the lock, seven say who does."""
    code = ("import os, sys, time; from harness.lab.lock import acquire, LabBusy\n"
            "os.read(int(sys.argv[2]), 1)\n"
            "try:\n    acquire(sys.argv[1], role='up'); print('won', flush=True); time.sleep(30)\n"
            "except LabBusy as e:\n    print('lost', e, flush=True)\n")
    r, w = os.pipe()
    procs = [subprocess.Popen([PY, "-c", code, str(tmp_path), str(r)], pass_fds=(r,), stdout=subprocess.PIPE, text=True)
             for _ in range(8)]
    os.close(r)
    time.sleep(1.0)  # every interpreter started and waits at the pipe
    os.write(w, b"x" * 8)
    os.close(w)
    try:
        lines = [p.stdout.readline().strip() for p in procs]
        assert sum(line == "won" for line in lines) == 1, lines
        winner = procs[[line == "won" for line in lines].index(True)]
        assert all(f"pid {winner.pid}" in line for line in lines if line.startswith("lost")), lines
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_adopt_takes_over_a_lock_handed_down_by_descriptor(tmp_path):
    lock = acquire(tmp_path, role="up")
    code = ("import os, sys, time; from harness.lab.lock import adopt\n"
            "adopt(int(sys.argv[2]), sys.argv[1], token=os.environ['HARNESS_LAB_TOKEN']); print('adopted', flush=True)\n"
            "time.sleep(60)\n")
    child = subprocess.Popen([PY, "-c", code, str(tmp_path), str(lock.fd)], pass_fds=(lock.fd,), stdout=subprocess.PIPE,
                             text=True, env=lab_environment(lock.token, tmp_path))
    try:
        assert child.stdout.readline().strip() == "adopted"
        lock.release()  # the parent goes; the child keeps the directory locked
        assert is_locked(tmp_path)
        holder = read_holder(tmp_path)
        assert holder.pid == child.pid and holder.token == lock.token and holder.role == "up"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not is_locked(tmp_path)


def test_adopt_refuses_a_descriptor_that_is_not_the_lock(tmp_path):
    other = open(tmp_path / "not-the-lock", "w")
    (tmp_path / LOCK_FILE).write_text("")
    try:
        with pytest.raises(UsageError, match="is not the lock of"):
            adopt(other.fileno(), tmp_path, token="t" * 32)
        with pytest.raises(UsageError, match="is not the lock of"):
            adopt(9999, tmp_path, token="t" * 32)
        with pytest.raises(UsageError, match="no lab token"):
            adopt(other.fileno(), tmp_path, token="")
    finally:
        other.close()


def test_adopt_refuses_the_lock_file_another_process_holds(tmp_path):
    holder = hold_in_child(tmp_path)
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR)
    try:
        with pytest.raises(UsageError, match="is not the lock of"):
            adopt(fd, tmp_path, token="t" * 32)
    finally:
        os.close(fd)
        holder.kill()
        holder.wait()


def test_a_lock_file_that_is_a_fifo_or_a_directory_is_refused(tmp_path):
    for make in (os.mkfifo, os.mkdir):
        state = tmp_path / make.__name__
        state.mkdir()
        make(state / LOCK_FILE)
        start = time.monotonic()
        with pytest.raises(UsageError, match="cannot open the lock file"):
            acquire(state)
        assert time.monotonic() - start < 2
