"""``harness up`` and ``harness down``: a lab that stays up until it is stopped.

Start-up time: ``up`` spawns the proxy before it imports the lab's machinery
(those imports are inside :func:`cmd_up`, deliberately), so mitmproxy's
import overlaps loading the policies and building the lab.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from harness.cli.banner import describe_lab
from harness.cli.parser import lab_options
from harness.errors import LabError, UnknownNameError
from harness.lab.early import early_proxy
from harness.lab.info import LabInfo
from harness.lab.process import is_lab_process, spawn, terminate_pids, wait_ready
from harness.lab.statedir import default_state_dir, prepare_state_dir


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


def cmd_up(args: argparse.Namespace) -> int:
    options = lab_options(args)
    if args.detach:
        return _up_detached(options.state_dir)
    with early_proxy(options) as proxy_child:
        from harness.lab.open import open_lab  # deliberately here, while the proxy imports mitmproxy
        from harness.net.journal import announce_ready

        lab = open_lab(options, policies=up_policies(args.policies), proxy_child=proxy_child)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    info = lab.start()
    try:
        info.pids["up"] = os.getpid()
        info.write()
        print(describe_lab(info), flush=True)
        if args.ready_fd is not None:
            announce_ready({"ready": {"state_dir": str(options.state_dir)}}, args.ready_fd)
        while not stop.wait(0.5):
            if lab.backend == "local" and any(c.proc.poll() is not None for c in lab.children):
                print("harness: a lab process exited unexpectedly; stopping the lab (see the logs).", file=sys.stderr)
                return 1
    finally:
        lab.stop()
        (options.state_dir / "lab.json").unlink(missing_ok=True)
        print("Lab stopped.", file=sys.stderr)
    return 0


def _up_detached(state_dir: Path) -> int:
    """Run ``harness up`` (these same arguments, without --detach) as a process of its own,
    return once its lab is up."""
    prepare_state_dir(state_dir)
    argv = [a for a in sys.argv[1:] if a != "--detach"] if sys.argv[1:2] == ["up"] else ["up"]
    if "--state-dir" not in argv:
        argv += ["--state-dir", str(state_dir)]
    child = spawn("lab", [sys.executable, "-m", "harness", *argv], state_dir / "up.log", die_with_parent=False)
    wait_ready([child], 120)
    print(describe_lab(LabInfo.read(state_dir)))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or default_state_dir()
    try:
        info = LabInfo.read(state_dir)
    except LabError:
        info = None
    if info is not None:
        # The 'up' process stops its own lab on SIGTERM; its children too, should it be gone.
        pids = [info.pids[k] for k in ("up", "proxy", "server") if k in info.pids]
        # A pid from a stale lab.json may since belong to an unrelated process: never signal that.
        survivors = terminate_pids([p for p in pids if is_lab_process(p)])
        (state_dir / "lab.json").unlink(missing_ok=True)
        if survivors:
            print(f"harness: killed {survivors} that did not stop on SIGTERM.", file=sys.stderr)
    if args.lab == "compose" or (info is not None and info.backend == "compose"):
        from harness.lab.compose import compose_down  # only the compose lab needs Docker's helpers

        compose_down(state_dir)
    elif info is None:
        print(f"No lab is running in {state_dir}.")
    else:
        print(f"Lab in {state_dir} stopped.")
    return 0
