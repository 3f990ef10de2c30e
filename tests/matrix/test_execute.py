"""harness.matrix.execute.run_foreign: a client under test cannot hurt the harness.

It runs in a session (process group) of its own; the whole group dies at its
timeout and when it exits, so a background grandchild never outlives the cell;
its output is kept up to a limit, with a note of what was cut, and decoded
whatever bytes it printed.  Real processes, no mocks.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from harness.matrix.execute import OUTPUT_LIMIT, run_foreign


@pytest.fixture(autouse=True)
def no_hang():
    """Fail, instead of hanging the suite, if a run outlives its client's timeout by far."""
    def hung(*_):
        raise AssertionError("run_foreign did not return: something of the client outlived it")
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(40)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def session_members(sid: int) -> list[int]:
    """Live processes (not zombies) whose session id is ``sid``: field 6 of /proc/PID/stat."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[3]) == sid and fields[0] != b"Z":
                members.append(int(entry))
    return members


def survivors(sid: int, grace: float = 5.0) -> list[int]:
    """The session's members still alive after ``grace`` (SIGKILL takes a moment to land)."""
    deadline = time.monotonic() + grace
    while (members := session_members(sid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


def gone(pid: int, grace: float = 5.0) -> bool:
    """True once ``pid`` is dead (a zombie counts as dead)."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_a_grandchild_dies_with_the_client_at_its_timeout():
    """sh starts 'sleep 77' in the background and waits on 'sleep 100': at the timeout both die."""
    start = time.monotonic()
    code, output = run_foreign(["sh", "-c", "sleep 77 & echo $$ $!; sleep 100"], {}, None, 1.0)
    assert code == 124 and time.monotonic() - start < 30
    assert "did not finish within 1s; its process group was killed" in output
    sh, sleeper = (int(x) for x in output.split()[:2])
    assert gone(sleeper), "the background 'sleep 77' survived the client's timeout"
    assert survivors(sh) == [], "a process of the client's session survived its timeout"


def test_a_background_child_dies_when_the_client_exits():
    """A client that exits 0 leaving 'sleep 77 &' behind: its exit code stands, the child is gone,
    and the harness did not wait for the child's end of the output pipe."""
    start = time.monotonic()
    code, output = run_foreign(["sh", "-c", "sleep 77 & echo $$ $!"], {}, None, 30.0)
    assert code == 0 and time.monotonic() - start < 20  # not 77 s
    sh, sleeper = (int(x) for x in output.split())
    assert gone(sleeper) and survivors(sh) == []


def test_the_client_runs_in_a_session_of_its_own():
    code, output = run_foreign([sys.executable, "-c", "import os; print(os.getpid(), os.getsid(0), os.getpgrp())"],
                               {}, None, 30.0)
    pid, sid, pgrp = (int(x) for x in output.split())
    assert code == 0 and pid == sid == pgrp != os.getsid(0)


def test_output_beyond_the_limit_is_cut_with_a_note():
    code, output = run_foreign([sys.executable, "-c", "import sys; sys.stdout.write('a' * 3_000_000)"], {}, None, 30.0)
    assert code == 0
    assert output[:OUTPUT_LIMIT] == "a" * OUTPUT_LIMIT and output[OUTPUT_LIMIT:OUTPUT_LIMIT + 11] == "\n[harness] "
    assert output.endswith(f"[harness] output cut: {3_000_000 - OUTPUT_LIMIT} bytes not kept "
                           f"(the first {OUTPUT_LIMIT} are above).\n")


def test_endless_output_is_cut_and_the_client_stopped():
    code, output = run_foreign(["sh", "-c", "yes"], {}, None, 1.0)
    assert code == 124 and len(output) < OUTPUT_LIMIT + 500
    assert "[harness] output cut: " in output and "its process group was killed" in output


@pytest.mark.parametrize("data,shown", [(b"\xff\xfeok\n", "\ufffd\ufffdok\n"), (b"\x00nul\n", "\x00nul\n")])
def test_any_bytes_are_output(data, shown):
    code, output = run_foreign([sys.executable, "-c", f"import sys; sys.stdout.buffer.write({data!r})"], {}, None, 30.0)
    assert code == 0 and output == shown


def test_stdin_is_given_and_a_client_that_never_reads_it_does_not_hang():
    assert run_foreign(["cat"], {}, "y\n", 30.0) == (0, "y\n")
    start = time.monotonic()
    assert run_foreign(["sh", "-c", "exit 3"], {}, "x" * 5_000_000, 30.0) == (3, "")
    assert time.monotonic() - start < 10


def test_stderr_is_kept_with_stdout():
    code, output = run_foreign(["sh", "-c", "echo out; echo err >&2; exit 5"], {"X": "1"}, None, 30.0)
    assert code == 5 and output == "out\nerr\n"


def test_missing_and_unexecutable_programs(tmp_path):
    assert run_foreign(["/nonexistent/client"], {}, None, 5)[0] == 127
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert run_foreign([str(script)], {}, None, 5)[0] == 126
