"""The local lab's proxy, started before anything else (mitmproxy needs ~0.6 s to import).

:func:`early_proxy` spawns ``python -m harness.proxy --config <state>/proxy.json``
at once; the process imports mitmproxy and waits at its start gate until the
lab (:class:`harness.lab.local.LocalLab`, ``proxy_child=``) has written that
file and opens the gate.  The CLI does this before importing the rest of the
lab, so that work and the caller's (loading scenarios, checking options)
overlap mitmproxy's import.  This module imports only what spawning needs.

The state directory is locked (:mod:`harness.lab.lock`) before the proxy is
spawned or anything in the directory is touched: a second lab in the same
directory stops here with one sentence, having changed nothing.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from harness.lab.identity import lab_environment
from harness.lab.lock import acquire
from harness.lab.options import LabOptions
from harness.lab.process import Child, spawn, stop
from harness.lab.statedir import prepare_state_dir

PROXY = "inspection proxy"
# The proxy's configuration, in the state directory: written before the proxy's start gate opens.
PROXY_CONFIG = "proxy.json"


def proxy_command(config: Path, python: str = sys.executable) -> list[str]:
    """The command that runs the proxy ``config`` describes."""
    return [python, "-m", "harness.proxy", "--config", str(config)]


def prespawn_proxy(state_dir: str | Path, python: str = sys.executable, *, token: str) -> Child:
    """Start the proxy process for the lab in ``state_dir`` (whose lock this process holds, with
    ``token``), waiting at its start gate."""
    state = prepare_state_dir(state_dir)
    logs = state / "logs"
    logs.mkdir(exist_ok=True)
    config = state / PROXY_CONFIG
    config.unlink(missing_ok=True)  # a previous lab's: never what this proxy is for
    return spawn(PROXY, proxy_command(config, python), logs / "proxy.log", gate=True,
                 env=lab_environment(token, state))


@contextlib.contextmanager
def early_proxy(options: LabOptions) -> Iterator[Child | None]:
    """For the local lab, a proxy process started now and waiting for its configuration
    (hand it to :func:`harness.lab.open.open_lab`); stopped again if the block fails before
    a lab adopts it."""
    if options.backend != "local":
        yield None
        return
    # Held while the block runs; the lab that adopts the proxy takes the lock again itself.
    with acquire(options.state_dir) as lock:
        child = prespawn_proxy(options.state_dir, options.python, token=lock.token)
        try:
            yield child
        except BaseException:
            stop([child])
            raise
