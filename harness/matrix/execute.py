"""Running one client once: the lab's reference clients and any client under test.

Reference clients run in-process by default (same code as the console script,
without paying interpreter start-up per cell) or as subprocesses; a prefix
(``docker exec CONTAINER``, ``ip netns exec NS``) runs them on another machine
of the lab.  Clients under test always run as subprocesses.  A ``docker exec``
prefix is not run as a command: the cell goes to the container's client worker
over the Docker API (:mod:`harness.matrix.remote`), which runs reference clients
in its own Python and clients under test as processes of the container.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from harness.clients import attended, beam
from harness.lab.engine import exec_target
from harness.lab.info import Endpoint, LabInfo
from harness.model.scenarios import Scenario
from harness.model.vocab import REFERENCE_URLS


@dataclass(frozen=True)
class ReferenceClient:
    """One of the lab's own clients, ``attended`` or ``beam``."""

    name: str
    url: str

    def argv(self, scenario: Scenario, lab: LabInfo, endpoint: Endpoint, secret: str) -> list[str]:
        """The client's arguments for ``scenario`` on ``lab``, connecting as ``endpoint`` says."""
        # A scenario may send a client elsewhere (api.scrn.mt) or pass it extra flags (--tls-max 1.2).
        args = ["--url", scenario.urls.get(self.name, self.url), "--pins", lab.pins_file,
                "--trust", lab.trust_bundle(scenario.trust), "--json", "--timeout", "10",
                *scenario.client_args.get(self.name, ())]
        if endpoint.proxy_url:
            args += ["--proxy", endpoint.proxy_url]
        else:  # direct, or transparent: no proxy configured, the gateway redirects the connection
            args += ["--no-proxy", "--connect-to", endpoint.connect_to]
        if self.name == "attended":
            args += ["--on-warning", scenario.attended_on_warning, "--code", secret]
        else:
            args += ["--once", "--token", secret]
        return args

    def main(self) -> Callable[..., int]:
        """The client's ``main(argv, stdout=, stderr=, stdin=)``, to run it in this process."""
        return attended.main if self.name == "attended" else beam.main


REFERENCE_CLIENTS = {name: ReferenceClient(name, url) for name, url in REFERENCE_URLS.items()}


def parse_events(output: str) -> list[dict]:
    events = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    return events


# A reference client gives up on its own after --timeout 10 per step; this bounds a hung one.
REFERENCE_TIMEOUT = 120.0


def run_reference(client: ReferenceClient, argv: list[str], *, in_process: bool,
                  prefix: list[str] | None = None) -> tuple[int, str]:
    """Run a reference client; returns (exit code, combined output).

    ``prefix`` runs ``harness`` elsewhere: ``docker exec CONTAINER`` in the compose lab (its
    client worker), ``ip netns exec NS ...`` behind the local lab's gateway.
    """
    if prefix and (target := exec_target(prefix)) is not None:
        from harness.matrix import remote  # the host's side only: the worker itself never needs it

        return remote.run_reference(target, client.name, argv, REFERENCE_TIMEOUT, in_process=in_process)
    if prefix:
        proc = subprocess.run([*prefix, "harness", client.name, *argv], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=REFERENCE_TIMEOUT)
        return proc.returncode, proc.stdout + proc.stderr
    if in_process:
        out, err = io.StringIO(), io.StringIO()
        code = client.main()(argv, stdout=out, stderr=err, stdin=io.StringIO())
        return code, out.getvalue() + err.getvalue()
    proc = subprocess.run(
        [sys.executable, "-m", "harness", client.name, *argv],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=REFERENCE_TIMEOUT,
    )
    return proc.returncode, proc.stdout + proc.stderr


# What a cell keeps of a client's output (journals, reports): a client that prints without end
# must not fill the harness's memory or the reports.
OUTPUT_LIMIT = 1024 * 1024


def run_foreign(argv: list[str], env: dict[str, str], stdin: str | None, timeout: float,
                prefix: list[str] | None = None, *, limit: int = OUTPUT_LIMIT) -> tuple[int, str]:
    """Run a client under test; returns (exit code, combined output).

    The client runs in a process group of its own (a new session), and the whole
    group is killed when the client exits or its ``timeout`` passes, so neither a
    background child (``sleep 77 &``) nor a hung one outlives its cell.  Output is
    decoded leniently (a client may print anything) and kept up to ``limit`` bytes,
    with a note of how much was cut.  A missing program is exit 127 and a run
    past ``timeout`` exit 124 (as a shell and timeout(1) report them), each with a
    sentence in the output.  With a ``docker exec`` prefix, the container's client worker runs
    it the same way in the container.
    """
    if prefix and (target := exec_target(prefix)) is not None:
        from harness.matrix import remote

        return remote.run_foreign(target, argv, env, stdin, timeout, limit)
    if prefix:
        argv = [*prefix, *(["env", *[f"{k}={v}" for k, v in env.items()]] if env else []), *argv]
        env = {}
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={**os.environ, **env}, start_new_session=True)
    except FileNotFoundError:
        return 127, f"[harness] cannot run {argv[0]!r}: no such program; install it or fix 'command'.\n"
    except PermissionError:
        return 126, f"[harness] cannot run {argv[0]!r}: not executable.\n"
    output = _Output(proc.stdout, limit)
    threading.Thread(target=_feed, args=(proc.stdin, (stdin or "").encode()), daemon=True).start()
    finished = _wait_unreaped(proc, timeout)
    _kill_group(proc.pid)  # before reaping: the group id cannot have been reused yet
    code = proc.wait()
    text = output.collect()
    if not finished:
        return 124, text + f"\n[harness] the client did not finish within {timeout:g}s; its process group was killed.\n"
    return code, text


class _Output:
    """Reads a pipe to its end on a thread, keeping the first ``limit`` bytes and counting the rest."""

    def __init__(self, pipe, limit: int) -> None:
        self.pipe, self.limit, self.kept, self.cut = pipe, limit, bytearray(), 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while chunk := self.pipe.read1(65536):
                room = self.limit - len(self.kept)
                self.kept += chunk[:room]
                self.cut += max(0, len(chunk) - room)
        except (OSError, ValueError):
            pass

    def collect(self, grace: float = 5.0) -> str:
        # Everything in the group is dead, so the pipe ends; a process that left the group
        # (setsid) may hold it open: stop waiting for it after ``grace``.
        self.thread.join(grace)
        text = bytes(self.kept).decode("utf-8", "replace")
        if self.cut:
            text += f"\n[harness] output cut: {self.cut} bytes not kept (the first {self.limit} are above).\n"
        return text


def _feed(pipe, data: bytes) -> None:
    """Write the client's standard input and close it (a client that never reads it gets EPIPE)."""
    try:
        pipe.write(data)
    except OSError:
        pass
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def _wait_unreaped(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait until ``proc`` exits or ``timeout`` passes, without reaping it (its pid stays its
    group's id until :func:`_kill_group` ran); True if it exited."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfds: wait and reap (the group id may then be reused, rarely)
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
