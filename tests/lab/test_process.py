"""harness.lab.process: readiness pipes, stopping children (even stopped ones), sessions of their
own, and signalling only targets that are still the lab's.  Small throw-away processes; no lab."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from harness.errors import LabStartError
from harness.lab.identity import ProcessRecord, lab_environment, new_token
from harness.lab.process import (
    Child,
    Target,
    pid_alive,
    spawn,
    stop,
    terminate,
    wait_gone,
    wait_ready,
)

PY = sys.executable


def child_of(argv, tmp_path) -> Child:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Child("sleeper", proc, -1, tmp_path / "none.log")


def orphan_sleeper() -> int:
    """A process that is not our child (its parent exits at once), as the lab's are for 'harness down'."""
    out = subprocess.run(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, timeout=10)
    return int(out.stdout.strip())


def test_wait_ready_reads_the_report(tmp_path):
    script = "import os, sys; fd = int(sys.argv[sys.argv.index('--ready-fd') + 1]); os.write(fd, b'{\"ready\": {\"x\": 1}}\\n')"
    child = spawn("reporter", [PY, "-c", script], tmp_path / "r.log")
    try:
        assert wait_ready([child], 10) == {"reporter": {"x": 1}}
    finally:
        stop([child])


def test_wait_ready_names_the_child_that_died_and_its_last_log_line(tmp_path):
    child = spawn("quitter", [PY, "-c", "import sys; print('quitter: no certificate here'); sys.exit(3)"],
                  tmp_path / "q.log")
    with pytest.raises(LabStartError, match="the quitter failed to start: quitter: no certificate here"):
        wait_ready([child], 10)


def test_wait_ready_has_a_deadline(tmp_path):
    child = spawn("sloth", [PY, "-c", "import time; time.sleep(30)"], tmp_path / "s.log")
    try:
        start = time.monotonic()
        with pytest.raises(LabStartError, match="did not become ready within"):
            wait_ready([child], 0.5)
        assert time.monotonic() - start < 5
    finally:
        stop([child])


def test_stop_continues_a_stopped_child_so_sigterm_works(tmp_path):
    """A hung (SIGSTOPped) child still stops on SIGTERM: stop() also sends SIGCONT, no 5 s SIGKILL wait."""
    child = child_of(["sleep", "30"], tmp_path)
    os.kill(child.pid, signal.SIGSTOP)
    start = time.monotonic()
    stop([child], timeout=5)
    assert time.monotonic() - start < 2.5
    assert child.proc.returncode == -signal.SIGTERM


def orphan_lab_process(tmp_path, token: str) -> int:
    """A process of a lab (token in its environment) that is not our child, waiting to be stopped."""
    out = subprocess.run(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, timeout=10,
                         env=lab_environment(token, tmp_path))
    return int(out.stdout.strip())


def test_terminate_stops_a_stopped_lab_process_that_is_not_our_child(tmp_path):
    token = new_token()
    pid = orphan_lab_process(tmp_path, token)
    os.kill(pid, signal.SIGSTOP)
    start = time.monotonic()
    assert terminate([Target(ProcessRecord.of(pid), token=token)], timeout=5) == ([], [])  # SIGTERM was enough
    assert not pid_alive(pid) and time.monotonic() - start < 2.5


def test_terminate_leaves_a_target_that_is_no_longer_the_labs():
    """The pid is there, but without the token (or with another start time): never signalled."""
    pid = orphan_sleeper()
    try:
        record = ProcessRecord.of(pid)
        assert terminate([Target(record, token=new_token())], timeout=0.5) == ([], [])
        assert terminate([Target(ProcessRecord(pid, record.start + 1), token=new_token())], timeout=0.5) == ([], [])
        assert terminate([Target(record)], timeout=0.5) == ([], [])  # recognised by nothing at all
        assert pid_alive(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


def test_terminate_kills_what_ignores_sigterm(tmp_path):
    token = new_token()
    child = spawn("stubborn", [PY, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                         "print('ready', flush=True); time.sleep(60)"],
                  tmp_path / "stubborn.log", env=lab_environment(token, tmp_path), die_with_parent=False)
    deadline = time.monotonic() + 10
    while "ready" not in (tmp_path / "stubborn.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    killed, survivors = terminate([Target(child.record, token=token, group=True)], timeout=0.5)
    assert killed == [child.pid] and survivors == []
    child.proc.wait(5)


def test_spawned_children_lead_a_session_and_group_of_their_own(tmp_path):
    """Ctrl-C in the launcher's terminal reaches only the launcher; 'down' can signal the group."""
    child = spawn("grouped", [PY, "-c", "import time; time.sleep(30)"], tmp_path / "g.log")
    try:
        assert os.getpgid(child.pid) == child.pid and os.getsid(child.pid) == child.pid
        assert os.getpgid(child.pid) != os.getpgid(0)
        assert child.record == ProcessRecord.of(child.pid)
    finally:
        stop([child])


def test_a_group_target_takes_its_grandchildren_along(tmp_path):
    """A lab child that started a helper of its own: signalling the group ends both."""
    token = new_token()
    script = ("import subprocess, sys, time; p = subprocess.Popen(['sleep', '60']); "
              "print(p.pid, flush=True); time.sleep(60)")
    child = spawn("parent", [PY, "-c", script], tmp_path / "p.log", env=lab_environment(token, tmp_path),
                  die_with_parent=False)
    deadline = time.monotonic() + 10
    while not (tmp_path / "p.log").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.02)
    grandchild = int((tmp_path / "p.log").read_text().split()[0])
    terminate([Target(child.record, token=token, group=True)], timeout=5)
    child.proc.wait(5)
    assert wait_gone([grandchild], 5)


def test_wait_gone_times_out_on_a_live_process_and_returns_when_it_exits():
    pid = orphan_sleeper()
    try:
        assert wait_gone([pid], 0.2) is False
    finally:
        os.kill(pid, signal.SIGKILL)
    assert wait_gone([pid], 5) is True


def test_a_zombie_counts_as_gone(tmp_path):
    child = child_of(["sleep", "30"], tmp_path)
    child.proc.kill()
    # Not reaped yet: kill(0) still succeeds, but the process is gone.
    assert wait_gone([child.pid], 5)
    assert not pid_alive(child.pid)
    child.proc.wait()
