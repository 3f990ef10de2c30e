"""Run clients through scenarios on a running lab and judge every cell.

Each (scenario, client) cell borrows a *lane* for its whole run: its own proxy
listener per policy and its own server port, so cells run in parallel without
sharing anything mutable, and the journal records of a lane after the cell's
starting cursor are exactly that cell's ground truth.

Reference clients run in-process by default (same code as the console
script, without paying interpreter start-up per cell); ``in_process=False``
runs them as real subprocesses.
"""

from __future__ import annotations

import io
import json
import queue
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from harness.journal import JournalReader
from harness.lab import LabInfo
from harness.scenarios import Scenario
from harness.verdict import Evidence, Verdict, judge


@dataclass(frozen=True)
class ReferenceClient:
    """One of the lab's own clients, ``attended`` or ``beam``."""

    name: str
    url: str

    def argv(self, scenario: Scenario, lab: LabInfo, lane: int, secret: str) -> list[str]:
        args = ["--url", self.url, "--pins", lab.pins_file, "--trust", lab.trust_bundle(scenario.trust),
                "--json", "--timeout", "10"]
        if scenario.via_proxy:
            args += ["--proxy", lab.proxy_url(scenario.policy, lane)]
        else:
            args += ["--no-proxy", "--connect-to", lab.server_connect[lane]]
        if self.name == "attended":
            args += ["--on-warning", scenario.attended_on_warning, "--code", secret]
        else:
            args += ["--once", "--token", secret]
        return args

    def main(self) -> Callable[..., int]:
        if self.name == "attended":
            from harness.clients.attended import main
        else:
            from harness.clients.beam import main
        return main


REFERENCE_CLIENTS = {
    "attended": ReferenceClient("attended", "https://api.screenmeet.com"),
    "beam": ReferenceClient("beam", "https://beam.screenmeet.com"),
}


@dataclass
class CellResult:
    """One cell of the matrix: a client in a scenario, judged."""

    scenario: Scenario
    client: str
    verdict: Verdict
    lane: int
    seconds: float
    output: str
    proxy_records: list[dict] = field(default_factory=list)
    server_records: list[dict] = field(default_factory=list)
    secret: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    def to_dict(self) -> dict:
        o = self.verdict.observation
        return {
            "scenario": self.scenario.name,
            "client": self.client,
            "expected": self.verdict.expected,
            "observed": o.outcome,
            "verdict": self.verdict.label,
            "reasons": list(self.verdict.reasons),
            "issuer_seen": o.issuer_seen,
            "pin_match": o.pin_match,
            "observation": o.__dict__ | {"credentials_at_proxy": list(o.credentials_at_proxy)},
            "lane": self.lane,
            "seconds": round(self.seconds, 3),
            "output": self.output,
            "proxy_records": self.proxy_records,
            "server_records": self.server_records,
        }


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


class MatrixRunner:
    """Runs cells on a lab, one lane per cell at a time."""

    def __init__(self, lab: LabInfo, *, in_process: bool = True, settle: float = 5.0) -> None:
        self.lab = lab
        self.in_process = in_process
        self.settle = settle
        self.proxy_journal = JournalReader(lab.proxy_admin)
        self.server_journal = JournalReader(lab.server_admin)
        self._lanes: queue.Queue[int] = queue.Queue()
        for lane in range(lab.lanes):
            self._lanes.put(lane)

    def run_cell(self, scenario: Scenario, client_name: str) -> CellResult:
        client = REFERENCE_CLIENTS[client_name]
        lane = self._lanes.get()
        try:
            start = time.perf_counter()
            proxy_cursor = self.proxy_journal.last_seq()
            server_cursor = self.server_journal.last_seq()
            secret = f"lab-secret-{secrets.token_hex(8)}"
            # Compose: the client runs in its container (corp), or at "home" for the direct scenario.
            where = "home" if not scenario.via_proxy else client_name
            prefix = self.lab.extra.get("client_exec", {}).get(where)
            code, output = run_reference(client, client.argv(scenario, self.lab, lane, secret),
                                         in_process=self.in_process, prefix=prefix)
            proxy = self.proxy_journal.read(lane=lane, after=proxy_cursor, settle=self.settle)
            server = self.server_journal.read(lane=lane, after=server_cursor)
            seconds = time.perf_counter() - start
        finally:
            self._lanes.put(lane)
        evidence = Evidence(code, proxy, server, scenario.via_proxy, parse_events(output), output)
        verdict = judge(scenario.expect[client_name], evidence)
        return CellResult(scenario, client_name, verdict, lane, seconds, output, proxy, server, secret)

    def run(self, scenarios: list[Scenario], clients: list[str] | None = None, *,
            progress: Callable[[CellResult, int, int], None] | None = None) -> list[CellResult]:
        """Run every (scenario, client) cell, ``lanes`` at a time; results in matrix order."""
        cells = [(s, c) for s in scenarios for c in (clients or list(s.expect)) if c in s.expect]
        results: list[CellResult | None] = [None] * len(cells)
        done = 0
        with ThreadPoolExecutor(max_workers=self.lab.lanes) as pool:
            futures = {pool.submit(self.run_cell, s, c): i for i, (s, c) in enumerate(cells)}
            for fut in _as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                done += 1
                if progress:
                    progress(results[i], done, len(cells))
        return [r for r in results if r is not None]


def _as_completed(futures):
    from concurrent.futures import as_completed

    return as_completed(futures)
