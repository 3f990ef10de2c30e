"""Child processes that announce readiness on a pipe, die with their parent, and are stopped
only if they are still the lab's.

Each lab component is started with ``--ready-fd N``: it writes one JSON line to
that descriptor when it is really listening.  The launcher waits on the pipe
(no sleeps, no log scraping) with a deadline; if the child dies first, the last
line of its log explains why.  On Linux children also get ``PR_SET_PDEATHSIG``
so a crashed launcher never leaves a proxy behind.

Every child starts a session (and process group) of its own, so a terminal's
Ctrl-C reaches only the launcher, which stops its children in order, and a
group can be signalled as a whole.  ``harness down`` signals processes that
are not its children with :func:`terminate`: each :class:`Target` is checked
again (token or lock, and start time: :mod:`harness.lab.identity`) right
before every signal, through a pidfd where the kernel has them.
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
from harness.lab.identity import ProcessRecord, matches

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
    record: ProcessRecord | None = None  # pid and start time, taken at spawn (for lab.json)

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
          gate: bool = False, pass_fds: tuple[int, ...] = ()) -> Child:
    """Start ``argv`` with ``--ready-fd`` appended, in a session of its own; stdout and stderr go to ``log``.

    ``env`` is the child's whole environment: a lab passes
    :func:`harness.lab.identity.lab_environment`, which marks its processes.
    With ``gate``, the child also gets ``--start-gate``: it does its slow imports
    at once, then waits for :meth:`Child.open_gate` before reading its files, so
    the launcher can prepare those files (the PKI) while the child starts.
    ``pass_fds`` are further descriptors the child inherits.
    """
    r, w = os.pipe()
    os.set_inheritable(w, True)
    with open(log, "ab") as logf:
        proc = subprocess.Popen(
            [*argv, "--ready-fd", str(w), *(["--start-gate"] if gate else [])],
            stdin=subprocess.PIPE if gate else subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
            pass_fds=(w, *pass_fds), env=env, close_fds=True, start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux" else None,
        )
    os.close(w)
    return Child(name, proc, r, log, ProcessRecord.of(proc.pid))


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


@dataclass(frozen=True)
class Target:
    """A process ``harness down`` may signal, and how it is recognised again before each signal.

    ``token``: it carries the lab's token; ``lock``: it holds the lab's lock (the
    owner).  ``group``: signal its whole process group (a child the lab started
    in a session of its own); otherwise the process alone (a foreground
    ``harness up`` shares its group with the user's shell pipeline).
    """

    record: ProcessRecord
    token: str | None = None
    lock: Path | None = None
    group: bool = False

    @property
    def pid(self) -> int:
        return self.record.pid

    def still_ours(self) -> bool:
        return matches(self.record, token=self.token, lock=self.lock)


def _signal_target(target: Target, sig: int) -> bool:
    """Send ``sig`` if ``target`` is still the process it was (True if sent); with a pidfd, the
    check and the signal reach the same process even if the pid is reused in between."""
    try:
        pidfd = os.pidfd_open(target.pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):
        pidfd = None  # no pidfds here: the check below is as close to the signal as it gets
    try:
        if not target.still_ours():
            return False
        if target.group and os.getpgid(target.pid) == target.pid:
            os.killpg(target.pid, sig)
        elif pidfd is not None:
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(target.pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def terminate(targets: list[Target], timeout: float = 5.0) -> tuple[list[int], list[int]]:
    """SIGTERM (+ SIGCONT), wait, SIGKILL: for ``harness down`` (the processes are not our children).

    Every signal goes only to a target that is still the lab's.  Returns
    ``(killed, survivors)``: the pids that needed SIGKILL, and those still alive after it.
    """
    signalled = [t for t in targets if _signal_target(t, signal.SIGTERM)]
    for t in signalled:
        _signal_target(t, signal.SIGCONT)  # a stopped (Ctrl-Z'd, hung) process acts on SIGTERM only once continued
    # Waited for until they have really exited (a dying process stops looking like the lab's
    # before it is gone).
    wait_gone([t.pid for t in signalled], timeout)
    stubborn = [t for t in signalled if pid_alive(t.pid) and t.still_ours()]
    killed = [t for t in stubborn if _signal_target(t, signal.SIGKILL)]
    wait_gone([t.pid for t in killed], timeout)
    return [t.pid for t in killed], [t.pid for t in killed if pid_alive(t.pid) and t.still_ours()]
