"""Run clients through scenarios on a running lab and judge every cell.

Each (scenario, client) cell borrows a *lane* for its whole run: its own proxy
listener per policy and its own server port, so cells run in parallel without
sharing anything mutable, and the journal records of a lane after the cell's
starting cursor are exactly that cell's ground truth.

Reference clients run in-process by default (:mod:`harness.matrix.execute`);
``in_process=False`` runs them as real subprocesses.  Any other client is a
:class:`harness.model.clientdefs.ClientDef` (a command template and the pinning
policy it claims): it runs as a subprocess and is judged from the journals,
its exit code and its warning regex, since it prints no lab events.

A roaming policy switches after a cell's first connections (see
:mod:`harness.proxy.roaming`): before such a cell the runner restarts its
lane's connection count on the proxy, so every cell starts from connection 1.
"""

from __future__ import annotations

import queue
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from cryptography import x509

from harness.errors import PatternTimeout, UsageError
from harness.lab.info import LabInfo
from harness.matrix.cell import CellResult
from harness.matrix.execute import REFERENCE_CLIENTS, parse_events, run_foreign, run_reference
from harness.matrix.vendors import judge_vendor
from harness.model.clientdefs import ClientDef, placeholder_values
from harness.model.policy import Policy, load_policies
from harness.model.scenarios import Scenario
from harness.model.values import is_ip_literal
from harness.model.vendors import VendorProfile
from harness.model.verdict import Evidence, judge
from harness.net.journal import JournalReader
from harness.pki.names import display_name
from harness.proxy.roaming import reset_lane

# On compose the mock server has a container address, not the 127.0.0.1 a policy's IP exception names
# (fixtures/policies.toml: exception-ip): a product that matches destinations cannot apply it there.
# harness.reports.parity accepts this reason as a difference between the backends.
COMPOSE_SERVER_ADDRESS = ("its policy's IP exception names the local lab's server address; the compose lab's server "
                          "has a container address, which a product matching destinations would need instead.")


def unavailable(scenario: Scenario, lab: LabInfo, policies: dict[str, Policy] | None = None,
                vendor: VendorProfile | None = None) -> str | None:
    """Why ``lab`` cannot run ``scenario`` (one sentence), or None.

    ``policies`` are the lab's (default ``fixtures/policies.toml``); ``vendor`` the profile it emulates.
    """
    if scenario.network == "transparent" and lab.transparent is None:
        return lab.transparent_unavailable or "this lab has no transparent gateway."
    if scenario.policy:
        if policies is None:
            policies = load_policies()
        site = getattr(policies.get(scenario.policy), "upstream", "")
        if site and site not in lab.sites:
            return f"the {lab.backend} lab serves no hostile site {site!r} (start it with the policy {scenario.policy!r})."
        policy = policies.get(scenario.policy)
        if (lab.backend == "compose" and vendor is not None and vendor.exception_match == "destination"
                and policy is not None and any(is_ip_literal(e.suffix) for e in policy.exceptions)):
            return COMPOSE_SERVER_ADDRESS
    return None


class MatrixRunner:
    """Runs cells on a lab, one lane per cell at a time.

    ``policies`` (the lab's, default ``fixtures/policies.toml``) tell a client
    definition which hosts each scenario decrypts.  ``vendor`` is the profile
    the lab emulates: each row is judged as it must turn out under that
    product, and a cell that shows another issuer fails
    (:mod:`harness.matrix.vendors`).  ``lanes`` are the lanes it may borrow
    (default all of the lab's); processes sharing a lab each get lanes of their own,
    since a lane's journal records are one cell's only while one cell runs on it.
    """

    def __init__(self, lab: LabInfo, *, in_process: bool = True, settle: float = 5.0,
                 policies: dict[str, Policy] | None = None, vendor: VendorProfile | None = None,
                 lanes: Iterable[int] | None = None) -> None:
        self.lab = lab
        self.in_process = in_process
        self.settle = settle
        self.vendor = vendor
        self._policies = policies
        self._pins_text: str | None = None
        self._server_issuer: str | None = None
        # (scenario, client) cells of client definitions left out: no outcome can be derived (see run()).
        self.undetermined: list[tuple[str, str]] = []
        self.proxy_journal = JournalReader(lab.proxy_admin)
        self.server_journal = JournalReader(lab.server_admin)
        self.skipped: dict[str, str] = {}  # scenario -> why this lab could not run it (see run())
        self.lanes = tuple(range(lab.lanes) if lanes is None else lanes)
        if not self.lanes or not set(self.lanes) <= set(range(lab.lanes)):
            raise ValueError(f"lanes {list(self.lanes)} are not lanes of this lab (0-{lab.lanes - 1}).")
        self._lanes: queue.Queue[int] = queue.Queue()
        for lane in self.lanes:
            self._lanes.put(lane)

    @property
    def policies(self) -> dict[str, Policy]:
        if self._policies is None:
            self._policies = load_policies()
        return self._policies

    def run_cell(self, scenario: Scenario, client_name: "str | ClientDef", *, expect: str | None = None) -> CellResult:
        """Run one client (a reference name or a :class:`ClientDef`) in ``scenario`` and judge it.

        ``expect`` replaces the expected outcome (default: the scenario's, or the definition's policy).
        """
        if self.vendor is not None:
            scenario = scenario.for_vendor(self.vendor)
        if isinstance(client_name, ClientDef):
            cell = self._run_definition(scenario, client_name, expect)
        else:
            cell = self._run_reference(scenario, client_name, expect)
        return cell if self.vendor is None else judge_vendor(cell, self.vendor)

    def _run_reference(self, scenario: Scenario, client_name: str, expect: str | None) -> CellResult:
        client = REFERENCE_CLIENTS[client_name]

        def execute(lane: int, secret: str):
            # Compose: the client runs in its container (corp), or at "home" for the direct scenario.
            endpoint = self.lab.endpoint(scenario.network, scenario.policy, lane, client_name, login=scenario.proxy_login)
            argv = client.argv(scenario, self.lab, endpoint, secret)
            code, output = run_reference(client, argv, in_process=self.in_process, prefix=list(endpoint.exec_prefix))
            return code, output, (argv, endpoint.exec_prefix)

        lane, secret, (code, output, (argv, prefix)), proxy, server, seconds = self._on_lane(execute, self._roams(scenario))
        evidence = Evidence(code, proxy, server, scenario.through_proxy, parse_events(output), output)
        verdict = judge(expect or scenario.expect[client_name], evidence)
        # The console script is what a person types to rerun it (run_reference's in-process run is the same code).
        return CellResult(scenario, client_name, verdict, lane, seconds, output, proxy, server, secret,
                          command=("harness", client_name, *argv), exec_prefix=tuple(prefix))

    def _roams(self, scenario: Scenario) -> bool:
        """Whether ``scenario``'s policy switches between connections (its lane's count must restart)."""
        policy = self.policies.get(scenario.policy) if scenario.through_proxy else None
        return policy is not None and policy.roam is not None

    def _on_lane(self, run, roams: bool = False):
        """Borrow a lane, run ``run(lane, secret)`` on it, and collect that lane's journal records.

        The cursors are taken before the client starts, so the records after them on
        this lane are exactly the cell's ground truth; the proxy's are read once the
        lane's connections have settled.  ``roams``: restart the lane's connection
        count first, so a roaming policy switches after this cell's own connections.
        """
        lane = self._lanes.get()
        try:
            start = time.perf_counter()
            proxy_cursor = self.proxy_journal.last_seq()
            server_cursor = self.server_journal.last_seq()
            if roams:
                reset_lane(self.lab.proxy_admin, lane)
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
            raise UsageError(f"the lab cannot tell what {client.name} ({client.policy}) must do in {scenario.name}; "
                             f"add expect = {{ \"{scenario.name}\" = \"OUTCOME\" }} to its definition.")

        def execute(lane: int, secret: str):
            # Compose: from a corp container behind the proxy (Beam's), from "home" for the direct scenario.
            endpoint = self.lab.endpoint(scenario.network, scenario.policy, lane, "beam", login=scenario.proxy_login)
            prefix = list(endpoint.exec_prefix)
            values = placeholder_values(
                proxy_url=endpoint.proxy_url or "", connect_to=endpoint.connect_to or "",
                trust=self.lab.trust_bundle(scenario.trust), pins=self.lab.pins_file,
                pins_text=self._read_pins(prefix), url=client.url, scenario=scenario.name, secret=secret, lane=lane,
                org_ca=self.lab.pki.get("org_ca", ""), python="python3" if prefix else sys.executable,
            )
            rendered = client.render(values, via_proxy=scenario.via_proxy, on_warning=scenario.attended_on_warning)
            code, output = run_foreign(list(rendered.argv), rendered.env, rendered.stdin, client.timeout, prefix)
            return code, output, (rendered, prefix)

        lane, secret, (code, output, (rendered, prefix)), proxy, server, seconds = self._on_lane(execute, self._roams(scenario))
        try:
            warned, problem = client.warned(output), None
        except PatternTimeout as e:  # the definition's pattern, not the client, is at fault: say so in the cell
            warned, problem = None, str(e)
        evidence = Evidence(code, proxy, server, scenario.through_proxy, [], output,
                            warned=warned, server_issuer=self._read_server_issuer())
        verdict = judge(expected, evidence, client.exit_codes)
        if problem:
            verdict = replace(verdict, reasons=(*verdict.reasons, problem))
        return CellResult(scenario, client.name, verdict, lane, seconds, output, proxy, server, secret,
                          client_policy=client.policy, command=rendered.argv, env=rendered.env, stdin=rendered.stdin,
                          exec_prefix=tuple(prefix))

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
        """Run every (scenario, client) cell, one per lane at a time; results in matrix order.

        A reference client runs where the scenario expects something of it, a client definition everywhere.
        Scenarios the lab cannot run (transparent ones without root) are left out and listed in
        ``self.skipped`` (name -> reason).
        """
        self.skipped = {s.name: why for s in scenarios
                        if (why := unavailable(s, self.lab, self.policies, self.vendor))}
        scenarios = [s for s in scenarios if s.name not in self.skipped]
        pairs = [(s, c) for s in scenarios for c in (clients or list(s.expect))]
        # A definition runs where its outcome can be derived; the rest are listed, not guessed.
        self.undetermined = [(s.name, c.name) for s, c in pairs
                             if isinstance(c, ClientDef) and c.expected(s, self.policies) is None]
        cells = [(s, c) for s, c in pairs if (c.expected(s, self.policies) is not None
                                              if isinstance(c, ClientDef) else c in s.expect)]
        results: list[CellResult | None] = [None] * len(cells)
        done = 0
        with ThreadPoolExecutor(max_workers=len(self.lanes)) as pool:
            futures = {pool.submit(self.run_cell, s, c): i for i, (s, c) in enumerate(cells)}
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                done += 1
                if progress:
                    progress(results[i], done, len(cells))
        return [r for r in results if r is not None]

