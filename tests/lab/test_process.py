"""harness.lab.process: readiness pipes, stopping children (even stopped ones), and what
'harness down' may signal.  Uses small throw-away processes; no lab."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from harness.errors import LabStartError
from harness.lab.process import (
    Child,
    is_lab_process,
    pid_alive,
    spawn,
    stop,
    terminate_pids,
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


def test_terminate_pids_stops_a_stopped_process_that_is_not_our_child():
    pid = orphan_sleeper()
    os.kill(pid, signal.SIGSTOP)
    start = time.monotonic()
    assert terminate_pids([pid], timeout=5) == []  # ended by SIGTERM, nothing had to be killed
    assert not pid_alive(pid) and time.monotonic() - start < 2.5


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


def test_is_lab_process_recognises_only_the_lab_programs(tmp_path):
    from harness.pki.lab import LabPKI

    pki = LabPKI.generate(tmp_path / "state")
    sleeper = child_of(["sleep", "30"], tmp_path)
    server = spawn("mock server", [PY, "-m", "harness.server", "--cert", str(pki.server_chain), "--key",
                                   str(pki.server_key), "--ports", "0", "--admin", "127.0.0.1:0"], tmp_path / "s.log")
    try:
        wait_ready([server], 30)  # running for real, not half-way through exec
        assert is_lab_process(server.pid)
        assert not is_lab_process(sleeper.pid)
        assert not is_lab_process(os.getpid())  # pytest
    finally:
        stop([server, sleeper])
