"""Run clients through scenarios on a running lab and judge every cell.

Each (scenario, client) cell borrows a *lane* for its whole run: its own proxy
listener per policy and its own server port, so cells run in parallel without
sharing anything mutable, and the journal records of a lane after the cell's
starting cursor are exactly that cell's ground truth.

Reference clients run in-process by default (same code as the console
script, without paying interpreter start-up per cell); ``in_process=False``
runs them as real subprocesses.  Any other client is a
:class:`harness.model.clientdefs.ClientDef` (a command template and the pinning
policy it claims): it runs as a subprocess and is judged from the journals,
its exit code and its warning regex, since it prints no lab events.
"""

from __future__ import annotations

import io
import json
import os
import queue
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cryptography import x509

from harness.model.clientdefs import ClientDef, placeholder_values
from harness.net.journal import JournalReader
from harness.lab import LabInfo
from harness.model.policy import Policy
from harness.model.scenarios import Scenario
from harness.model.verdict import Evidence, Verdict, judge
from harness.model.vocab import REFERENCE_URLS
from harness.pki.names import display_name


@dataclass(frozen=True)
class ReferenceClient:
    """One of the lab's own clients, ``attended`` or ``beam``."""

    name: str
    url: str

    def argv(self, scenario: Scenario, lab: LabInfo, lane: int, secret: str) -> list[str]:
        # A scenario may send a client elsewhere (api.scrn.mt) or pass it extra flags (--tls-max 1.2).
        args = ["--url", scenario.urls.get(self.name, self.url), "--pins", lab.pins_file,
                "--trust", lab.trust_bundle(scenario.trust), "--json", "--timeout", "10",
                *scenario.client_args.get(self.name, ())]
        if scenario.via_proxy:
            args += ["--proxy", lab.proxy_url(scenario.policy, lane)]
        elif scenario.network == "transparent":
            # No proxy configured: the gateway redirects the connection to the proxy.
            args += ["--no-proxy", "--connect-to", lab.gateway_address(scenario.policy, lane)]
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


REFERENCE_CLIENTS = {name: ReferenceClient(name, url) for name, url in REFERENCE_URLS.items()}


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
    # "reference" for attended/beam, else the policy a client definition claims.
    client_policy: str = "reference"
    command: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    def to_dict(self) -> dict:
        o = self.verdict.observation
        return {
            "scenario": self.scenario.name,
            "scenario_detail": {"network": self.scenario.network, "policy": self.scenario.policy,
                                "trust": self.scenario.trust, "description": self.scenario.description},
            "client": self.client,
            "client_policy": self.client_policy,
            "command": list(self.command),
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


def client_place(scenario: Scenario, client: str) -> str:
    """Where a client runs, as a key of ``LabInfo.extra["client_exec"]`` (absent: in this process or
    a local subprocess): "home" without a proxy, its own corp machine behind an explicit proxy,
    "<client>@transparent" behind the transparent gateway."""
    return {"direct": "home", "proxy": client}.get(scenario.network, f"{client}@{scenario.network}")


def unavailable(scenario: Scenario, lab: LabInfo, policies: dict[str, Policy] | None = None) -> str | None:
    """Why ``lab`` cannot run ``scenario`` (one sentence), or None.

    ``policies`` are the lab's (default ``fixtures/policies.toml``).
    """
    if scenario.network == "transparent" and not lab.extra.get("transparent"):
        return lab.extra.get("transparent_unavailable") or "this lab has no transparent gateway."
    if scenario.policy:
        if policies is None:
            from harness.model.policy import load_policies

            policies = load_policies()
        site = getattr(policies.get(scenario.policy), "upstream", "")
        if site and site not in lab.extra.get("sites", {}):
            return f"the {lab.backend} lab serves no hostile site {site!r} (the local lab does)."
    return None


class MatrixRunner:
    """Runs cells on a lab, one lane per cell at a time.

    ``policies`` (the lab's, default ``fixtures/policies.toml``) tell a client
    definition which hosts each scenario decrypts.
    """

    def __init__(self, lab: LabInfo, *, in_process: bool = True, settle: float = 5.0,
                 policies: dict[str, Policy] | None = None) -> None:
        self.lab = lab
        self.in_process = in_process
        self.settle = settle
        self._policies = policies
        self._pins_text: str | None = None
        self._server_issuer: str | None = None
        # (scenario, client) cells of client definitions left out: no outcome can be derived (see run()).
        self.undetermined: list[tuple[str, str]] = []
        self.proxy_journal = JournalReader(lab.proxy_admin)
        self.server_journal = JournalReader(lab.server_admin)
        self.skipped: dict[str, str] = {}  # scenario -> why this lab could not run it (see run())
        self._lanes: queue.Queue[int] = queue.Queue()
        for lane in range(lab.lanes):
            self._lanes.put(lane)

    @property
    def policies(self) -> dict[str, Policy]:
        if self._policies is None:
            from harness.model.policy import load_policies

            self._policies = load_policies()
        return self._policies

    def run_cell(self, scenario: Scenario, client_name: "str | ClientDef", *, expect: str | None = None) -> CellResult:
        """Run one client (a reference name or a :class:`ClientDef`) in ``scenario`` and judge it.

        ``expect`` replaces the expected outcome (default: the scenario's, or the definition's policy).
        """
        if isinstance(client_name, ClientDef):
            return self._run_definition(scenario, client_name, expect)
        client = REFERENCE_CLIENTS[client_name]
        # Compose: the client runs in its container (corp), or at "home" for the direct scenario.
        prefix = self.lab.extra.get("client_exec", {}).get(client_place(scenario, client_name))

        def execute(lane: int, secret: str):
            code, output = run_reference(client, client.argv(scenario, self.lab, lane, secret),
                                         in_process=self.in_process, prefix=prefix)
            return code, output, None

        lane, secret, (code, output, _), proxy, server, seconds = self._on_lane(execute)
        evidence = Evidence(code, proxy, server, scenario.through_proxy, parse_events(output), output)
        verdict = judge(expect or scenario.expect[client_name], evidence)
        return CellResult(scenario, client_name, verdict, lane, seconds, output, proxy, server, secret)

    def _on_lane(self, run):
        """Borrow a lane, run ``run(lane, secret)`` on it, and collect that lane's journal records.

        The cursors are taken before the client starts, so the records after them on
        this lane are exactly the cell's ground truth; the proxy's are read once the
        lane's connections have settled.
        """
        lane = self._lanes.get()
        try:
            start = time.perf_counter()
            proxy_cursor = self.proxy_journal.last_seq()
            server_cursor = self.server_journal.last_seq()
            secret = f"lab-secret-{secrets.token_hex(8)}"
            result = run(lane, secret)
            proxy = self.proxy_journal.read(lane=lane, after=proxy_cursor, settle=self.settle)
            server = self.server_journal.read(lane=lane, after=server_cursor)
            seconds = time.perf_counter() - start
        finally:
            self._lanes.put(lane)
        return lane, secret, result, proxy, server, seconds

    def _run_definition(self, scenario: Scenario, client: ClientDef, expect: str | None) -> CellResult:
        expected = expect or client.expected(scenario, self.policies)
        if expected is None:
            from harness.errors import UsageError

            raise UsageError(f"the lab cannot tell what {client.name} ({client.policy}) must do in {scenario.name}; "
                             f"add expect = {{ \"{scenario.name}\" = \"OUTCOME\" }} to its definition.")
        # Compose: from a corp container behind the proxy, from "home" for the direct scenario.
        prefix = self.lab.extra.get("client_exec", {}).get(client_place(scenario, "beam"))

        def execute(lane: int, secret: str):
            values = placeholder_values(
                proxy_url=self.lab.proxy_url(scenario.policy, lane) if scenario.via_proxy else "",
                trust=self.lab.trust_bundle(scenario.trust), pins=self.lab.pins_file,
                pins_text=self._read_pins(prefix), url=client.url, scenario=scenario.name,
                connect_to="" if scenario.via_proxy else self.lab.gateway_address(scenario.policy, lane)
                if scenario.network == "transparent" else self.lab.server_connect[lane], secret=secret, lane=lane,
                org_ca=self.lab.pki.get("org_ca", ""), python="python3" if prefix else sys.executable,
            )
            rendered = client.render(values, via_proxy=scenario.via_proxy, on_warning=scenario.attended_on_warning)
            code, output = run_foreign(list(rendered.argv), rendered.env, rendered.stdin, client.timeout, prefix)
            return code, output, rendered

        lane, secret, (code, output, rendered), proxy, server, seconds = self._on_lane(execute)
        evidence = Evidence(code, proxy, server, scenario.through_proxy, [], output,
                            warned=client.warned(output), server_issuer=self._read_server_issuer())
        verdict = judge(expected, evidence, client.exit_codes)
        return CellResult(scenario, client.name, verdict, lane, seconds, output, proxy, server, secret,
                          client_policy=client.policy, command=rendered.argv)

    def _read_pins(self, prefix: list[str] | None) -> str:
        """The lab's pins file (read once; inside the client container when the lab is there)."""
        if self._pins_text is None:
            path = Path(self.lab.pins_file)
            if path.is_file():
                self._pins_text = path.read_text()
            else:
                proc = subprocess.run([*(prefix or []), "cat", str(path)], capture_output=True, text=True, timeout=60)
                self._pins_text = proc.stdout
        return self._pins_text

    def _read_server_issuer(self) -> str | None:
        """The common name of the issuer of the mock server's certificate, where the lab's PKI is readable."""
        if self._server_issuer is None:
            self._server_issuer = ""
            chain = self.lab.pki.get("server_chain")
            if chain and Path(chain).is_file():
                leaf = x509.load_pem_x509_certificate(Path(chain).read_bytes())
                self._server_issuer = display_name(leaf.issuer)
        return self._server_issuer or None

    def run(self, scenarios: list[Scenario], clients: "list[str | ClientDef] | None" = None, *,
            progress: Callable[[CellResult, int, int], None] | None = None) -> list[CellResult]:
        """Run every (scenario, client) cell, ``lanes`` at a time; results in matrix order.

        A reference client runs where the scenario expects something of it, a client definition everywhere.
        Scenarios the lab cannot run (transparent ones without root) are left out and listed in
        ``self.skipped`` (name -> reason).
        """
        self.skipped = {s.name: why for s in scenarios if (why := unavailable(s, self.lab, self.policies))}
        scenarios = [s for s in scenarios if s.name not in self.skipped]
        pairs = [(s, c) for s in scenarios for c in (clients or list(s.expect))]
        # A definition runs where its outcome can be derived; the rest are listed, not guessed.
        self.undetermined = [(s.name, c.name) for s, c in pairs
                             if isinstance(c, ClientDef) and c.expected(s, self.policies) is None]
        cells = [(s, c) for s, c in pairs if (c.expected(s, self.policies) is not None
                                              if isinstance(c, ClientDef) else c in s.expect)]
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
