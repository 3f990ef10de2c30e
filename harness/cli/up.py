"""``harness up`` and ``harness down``: a lab that stays up until it is stopped.

One lab per state directory: ``up`` locks the directory before it touches it
and holds the lock until its lab has stopped (:mod:`harness.lab.lock`); a
second ``up`` there says which lab runs and exits 2, or with ``--replace``
stops that lab first.  ``up --detach`` takes the lock itself and hands the
locked descriptor to the process that keeps the lab (``--lock-fd``), so there
is no instant at which the directory is unlocked.

``down`` signals only processes it recognises as the lab's (a token and a
start time, or holding the lock: :mod:`harness.lab.down`), whatever state
``lab.json`` is in.

Start-up time: ``up`` spawns the proxy before it imports the lab's machinery
(those imports are inside :func:`cmd_up`, deliberately), so mitmproxy's
import overlaps loading the policies and building the lab.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

from harness.cli.banner import describe_lab
from harness.cli.parser import evidence_options, lab_options
from harness.errors import EnvironmentProblem, UnknownNameError, UsageError
from harness.lab.down import Stopped, lab_still_running, stop_lab
from harness.lab.early import early_proxy
from harness.lab.identity import TOKEN_ENV, ProcessRecord, lab_environment, procfs_available
from harness.lab.info import LabInfo
from harness.lab.lock import LabBusy, LabLock, acquire, adopt
from harness.lab.process import spawn, stop, wait_ready
from harness.lab.statedir import default_state_dir

# How long 'up --replace' waits for the stopped lab's owner to let go of the lock.
REPLACE_WAIT = 15.0
# How often a running 'up' keeps a snapshot of the journals for 'harness evidence' after it stops.
SNAPSHOT_EVERY = 2.0


def up_policies(spec: str) -> dict:
    """``--policies``: every policy, those the default matrix uses, or the named ones."""
    from harness.model.policy import load_policies  # deliberately late: see the module docstring
    from harness.model.scenarios import load_scenarios, policies_used, select

    policies = load_policies()
    if spec == "all":
        return policies
    if spec == "default":
        return policies_used(select(load_scenarios(policies=policies)), policies)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    for n in names:
        if n not in policies:
            raise UnknownNameError("policy", n, list(policies))
    return {n: policies[n] for n in names}


def lock_for_up(state_dir: Path, *, replace: bool) -> LabLock:
    """The state directory's lock for a new ``up``; with ``replace``, the running lab is stopped first."""
    try:
        return acquire(state_dir, role="up")
    except LabBusy:
        if not replace:
            raise
    stopped = stop_lab(state_dir)
    if stopped.survivors:
        raise EnvironmentProblem(f"--replace could not stop the running lab's processes {stopped.survivors}; "
                                 f"stop them and try again.")
    return acquire(state_dir, role="up", wait=REPLACE_WAIT)


def cmd_up(args: argparse.Namespace) -> int:
    options = lab_options(args, **evidence_options(args))
    if args.lock_fd is not None:  # the process 'up --detach' started: it inherits the locked descriptor
        lock = adopt(args.lock_fd, options.state_dir, token=os.environ.get(TOKEN_ENV) or "")
    else:
        lock = lock_for_up(options.state_dir, replace=args.replace)
    try:
        if args.detach:
            return _up_detached(options.state_dir, lock)
        return _up(args, options, lock)
    finally:
        lock.release()  # after lab.json is gone: a new lab never sees this one's leftovers


def _up(args: argparse.Namespace, options, lock: LabLock) -> int:
    with early_proxy(options) as proxy_child:
        from harness.lab.open import open_lab  # deliberately here, while the proxy imports mitmproxy
        from harness.net.journal import announce_ready
        from harness.reports.evidence import snapshot

        lab = open_lab(options, policies=up_policies(args.policies), proxy_child=proxy_child)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    info = lab.start()  # stops what it started if it fails
    try:
        info.processes["up"] = ProcessRecord.of(os.getpid())
        info.token = lock.token
        info.write()
        print(describe_lab(info, show_login=args.show_secrets or None), flush=True)
        if args.ready_fd is not None:
            announce_ready({"ready": {"state_dir": str(options.state_dir)}}, args.ready_fd)
        snapshot_due = 0.0
        while not stopping.wait(0.5):
            if lab.backend == "local" and time.monotonic() >= snapshot_due:
                # For 'harness evidence' once the lab has stopped: its journals die with it.
                snapshot(info)
                snapshot_due = time.monotonic() + SNAPSHOT_EVERY
            if lab.backend == "local" and any(c.proc.poll() is not None for c in lab.children):
                print("harness: a lab process exited unexpectedly; stopping the lab (see the logs).", file=sys.stderr)
                return 1
    finally:
        if lab.backend == "local":
            snapshot(info)  # the last word, if the journals still answer ('down' stops them at once)
        lab.stop()
        (options.state_dir / "lab.json").unlink(missing_ok=True)
        print("Lab stopped.", file=sys.stderr)
    return 0


def _up_detached(state_dir: Path, lock: LabLock) -> int:
    """Run ``harness up`` (these same arguments, without --detach) as a process of its own that
    takes over ``lock``; return once its lab is up."""
    drop = {"--detach", "--replace"}  # this process did the replacing
    argv = [a for a in sys.argv[1:] if a not in drop] if sys.argv[1:2] == ["up"] else ["up"]
    if "--state-dir" not in argv:
        argv += ["--state-dir", str(state_dir)]
    child = spawn("lab", [sys.executable, "-m", "harness", *argv, "--lock-fd", str(lock.fd)], state_dir / "up.log",
                  die_with_parent=False, env=lab_environment(lock.token, state_dir), pass_fds=(lock.fd,))
    try:
        wait_ready([child], 120)
    except BaseException:
        stop([child])  # nothing left behind: a lab that did not come up is not kept
        raise
    print(describe_lab(LabInfo.read(state_dir)))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir or default_state_dir())
    if not procfs_available() and lab_still_running(state_dir):
        raise EnvironmentProblem("without /proc the lab's processes cannot be told from others; "
                                 "stop the 'harness up' process yourself (Ctrl-C in its terminal).")
    stopped = stop_lab(state_dir)
    if args.lab == "compose" or stopped.records.backend == "compose":
        from harness.lab.compose import compose_down  # only the compose lab needs Docker's helpers

        compose_down(state_dir)
        return 0
    _say(stopped, state_dir)
    if stopped.survivors:
        raise EnvironmentProblem(f"processes {stopped.survivors} of the lab in {state_dir} survived SIGKILL "
                                 f"(another user's?); stop them as their owner.")
    if stopped.owner_left is None and lab_still_running(state_dir):
        raise EnvironmentProblem(_unrecognised(state_dir, stopped))
    lab_json, removed = state_dir / "lab.json", False
    if stopped.owner_left is None and lab_json.is_file():
        lab_json.unlink(missing_ok=True)
        removed = True
    if state_dir.exists() and not state_dir.is_dir() and not stopped.signalled:
        raise UsageError(f"{state_dir} is a file, not a lab's state directory, and no lab process names it; "
                         f"pass --state-dir with the directory 'harness up' used.")
    if stopped.owner_left is not None:
        return 0  # _say named the owner that keeps running
    if stopped.signalled:
        print(f"Lab in {state_dir} stopped.")
    else:
        problem = stopped.records.problem
        note = f" ({problem}; {'removed it' if removed else 'left as it is'})" if problem else ""
        print(f"No lab is running in {state_dir}{note}.")
    return 0


def _say(stopped: Stopped, state_dir: Path) -> None:
    for pid in stopped.ignored:
        print(f"harness: pid {pid} named in lab.json is not a process of this lab; left it alone.", file=sys.stderr)
    if stopped.records.problem and stopped.signalled:
        print(f"harness: {stopped.records.problem}; found the lab's processes by its token instead.", file=sys.stderr)
    if stopped.killed:
        print(f"harness: killed {stopped.killed} that did not stop on SIGTERM.", file=sys.stderr)
    if stopped.owner_left is not None:
        print(f"Stopped the processes of the lab in {state_dir}; its owner ({stopped.owner_left.describe()}) "
              f"keeps running and will report them gone.")


def _unrecognised(state_dir: Path, stopped: Stopped) -> str:
    holder = stopped.records.holder
    who = f" ({holder.describe()})" if holder else ""
    return (f"a lab holds {state_dir}{who}, but none of its processes could be recognised as the lab's "
            f"(another user's?); stop it as its owner, then run 'harness down --state-dir {shlex.quote(str(state_dir))}'.")
