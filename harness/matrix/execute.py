"""Running one client once: the lab's reference clients and any client under test.

Reference clients run in-process by default (same code as the console script,
without paying interpreter start-up per cell) or as subprocesses; a prefix
(``docker exec CONTAINER``, ``ip netns exec NS``) runs them on another machine
of the lab.  Clients under test always run as subprocesses.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from harness.clients import attended, beam
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


def run_reference(client: ReferenceClient, argv: list[str], *, in_process: bool,
                  prefix: list[str] | None = None) -> tuple[int, str]:
    """Run a reference client; returns (exit code, combined output).

    ``prefix`` runs ``harness`` elsewhere (``docker exec CONTAINER`` in the compose lab).
    """
    if prefix:
        proc = subprocess.run([*prefix, "harness", client.name, *argv], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout + proc.stderr
    if in_process:
        out, err = io.StringIO(), io.StringIO()
        code = client.main()(argv, stdout=out, stderr=err, stdin=io.StringIO())
        return code, out.getvalue() + err.getvalue()
    proc = subprocess.run(
        [sys.executable, "-m", "harness", client.name, *argv],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def run_foreign(argv: list[str], env: dict[str, str], stdin: str | None, timeout: float,
                prefix: list[str] | None = None) -> tuple[int, str]:
    """Run a client under test; returns (exit code, combined output).

    A missing program is exit 127 and a run past ``timeout`` exit 124 (as a
    shell and timeout(1) report them), each with a sentence in the output.
    """
    if prefix:
        argv = [*prefix, *(["env", *[f"{k}={v}" for k, v in env.items()]] if env else []), *argv]
        env = {}
    try:
        proc = subprocess.run(argv, input=stdin if stdin is not None else "", capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **env})
    except FileNotFoundError:
        return 127, f"[harness] cannot run {argv[0]!r}: no such program; install it or fix 'command'.\n"
    except PermissionError:
        return 126, f"[harness] cannot run {argv[0]!r}: not executable.\n"
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        out = out.decode("utf-8", "replace") if isinstance(out, bytes) else out
        return 124, out + f"\n[harness] the client did not finish within {timeout:g}s and was stopped.\n"
    return proc.returncode, proc.stdout + proc.stderr
