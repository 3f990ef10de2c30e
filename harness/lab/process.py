"""Child processes that announce readiness on a pipe, and die with their parent.

Each lab component is started with ``--ready-fd N``: it writes one JSON line to
that descriptor when it is really listening.  The launcher waits on the pipe
(no sleeps, no log scraping) with a deadline; if the child dies first, the last
line of its log explains why.  On Linux children also get ``PR_SET_PDEATHSIG``
so a crashed launcher never leaves a proxy behind.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import LabStartError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    ready_fd: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def open_gate(self) -> None:
        """Let a child started with ``gate=True`` go on past its imports."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.write(b"go\n")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass  # it died; wait_ready reports why


def spawn(name: str, argv: list[str], log: Path, *, env: dict | None = None, die_with_parent: bool = True,
          gate: bool = False) -> Child:
    """Start ``argv`` with ``--ready-fd`` appended; stdout and stderr go to ``log``.

    With ``gate``, the child also gets ``--start-gate``: it does its slow imports
    at once, then waits for :meth:`Child.open_gate` before reading its files, so
    the launcher can prepare those files (the PKI) while the child starts.
    """
    r, w = os.pipe()
    os.set_inheritable(w, True)
    with open(log, "ab") as logf:
        proc = subprocess.Popen(
            [*argv, "--ready-fd", str(w), *(["--start-gate"] if gate else [])],
            stdin=subprocess.PIPE if gate else subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
            pass_fds=(w,), env=env, close_fds=True,
            preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux" else None,
        )
    os.close(w)
    return Child(name, proc, r, log)


def _log_tail(log: Path) -> str:
    try:
        lines = [l for l in log.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def wait_ready(children: list[Child], timeout: float) -> dict[str, dict]:
    """Wait until every child announced readiness; return ``{name: report}``."""
    deadline = time.monotonic() + timeout
    pending = {c.ready_fd: c for c in children}
    buffers: dict[int, bytes] = {fd: b"" for fd in pending}
    reports: dict[str, dict] = {}
    try:
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                names = ", ".join(c.name for c in pending.values())
                raise LabStartError(f"the {names} did not become ready within {timeout:.0f}s; see the logs in {children[0].log.parent}.")
            readable, _, _ = select.select(list(pending), [], [], remaining)
            for fd in readable:
                chunk = os.read(fd, 65536)
                child = pending[fd]
                if chunk:
                    buffers[fd] += chunk
                    continue
                # EOF: either the full report arrived, or the child died.
                del pending[fd]
                os.close(fd)
                text = buffers[fd].decode(errors="replace").strip()
                if not text:
                    child.proc.wait(timeout=5)
                    why = _log_tail(child.log) or f"exit code {child.proc.returncode}"
                    raise LabStartError(f"the {child.name} failed to start: {why} (log: {child.log}).")
                report = json.loads(text)
                if "error" in report:  # the child's own sentence (harness.cli.main), with its exit code
                    try:
                        child.proc.wait(timeout=10)  # it is exiting: leave nothing behind
                    except subprocess.TimeoutExpired:
                        pass
                    error = LabStartError(str(report["error"]))
                    error.exit_code = int(report.get("exit_code", LabStartError.exit_code))
                    raise error
                reports[child.name] = report["ready"]
    finally:
        for fd in pending:
            os.close(fd)
    return reports


def stop(children: list[Child], timeout: float = 5.0) -> None:
    """SIGTERM (and SIGCONT, so a stopped child can act on it) every child, then SIGKILL
    what is still alive after ``timeout``."""
    for c in children:
        if c.proc.poll() is None:
            c.proc.terminate()
            _signal(c.pid, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    for c in children:
        try:
            c.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()


def kill(child: Child, timeout: float = 5.0) -> None:
    """SIGKILL a child and reap it: what a crash looks like to everyone else."""
    if child.proc.poll() is None:
        child.proc.kill()
    child.proc.wait(timeout=timeout)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (FileNotFoundError, IndexError):
        return not os.path.isdir("/proc/self")  # no procfs: trust kill(0)
    except OSError:
        return True


def is_lab_process(pid: int) -> bool:
    """True if ``pid`` runs one of the lab's programs (``python -m harness...``).

    ``harness down`` reads pids from ``lab.json``; after a crash and a reboot or
    a long time, such a pid may belong to an unrelated process, which must not
    be signalled.  Without procfs there is no way to tell, so it says True.  An
    empty command line (a kernel thread, a zombie, a process mid-exec) is not
    the lab's.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")
    except OSError:
        return False
    return any(a == b"harness" or a.startswith(b"harness.") or a.endswith(b"/harness") for a in argv)


def wait_gone(pids: list[int], timeout: float) -> bool:
    """Wait until none of ``pids`` is alive; False if ``timeout`` passed first.

    On Linux this waits on pidfds (an event, no polling); elsewhere, and for
    zombies nobody reaps, it falls back to checking every 50 ms.
    """
    deadline = time.monotonic() + timeout
    fds = []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                continue
            except (AttributeError, OSError):
                break  # no pidfds here: poll below
        else:
            remaining = deadline - time.monotonic()
            while fds and remaining > 0:
                readable, _, _ = select.select(fds, [], [], remaining)
                for fd in readable:
                    fds.remove(fd)
                    os.close(fd)
                remaining = deadline - time.monotonic()
    finally:
        for fd in fds:
            os.close(fd)
    while any(pid_alive(p) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)  # only reached without pidfds (or for an unreaped zombie's last instant)
    return True


def terminate_pids(pids: list[int], timeout: float = 5.0) -> list[int]:
    """SIGTERM (+ SIGCONT), wait, SIGKILL: for ``harness down`` (the processes are not our children).

    Returns the pids that had to be killed.
    """
    for pid in pids:
        if pid_alive(pid):
            _signal(pid, signal.SIGTERM)
            _signal(pid, signal.SIGCONT)  # a stopped (Ctrl-Z'd, hung) process acts on SIGTERM only once continued
    wait_gone(pids, timeout)
    survivors = [p for p in pids if pid_alive(p)]
    for pid in survivors:
        _signal(pid, signal.SIGKILL)
    wait_gone(survivors, timeout)
    return survivors
