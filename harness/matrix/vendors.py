"""``harness run --vendor NAME`` and ``--all-vendors``: the matrix under vendor profiles.

One fresh lab per vendor (its own CAs, chain shape and forging; start-up about
a second), the same scenarios on each, with two vendor-specific twists:

* a row's expectation follows the vendor's untrusted-upstream action
  (:meth:`harness.model.scenarios.Scenario.for_vendor`);
* every cell that met a forged certificate must show the vendor's issuer CN
  (in the attended warning, Beam's refusal and the proxy journal): a cell
  that names another issuer fails, with the reason.

Result rows are named ``<vendor>/<scenario>``.  Without ``--scenario`` or
``--tag``, ``--all-vendors`` runs the rows tagged ``vendors`` (those a vendor
changes); ``--vendor`` runs the everyday matrix.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from harness.errors import LabStartError, UsageError
from harness.matrix.runner import CellResult
from harness.model.vendors import VendorProfile, get_vendor, load_vendors
from harness.model.verdict import Verdict

PARALLEL_LABS = 3
START_ATTEMPTS = 3
_START_LOCK = threading.Lock()
WARNED = ("warned-continued", "declined", "blocked")
# Outcomes in which the client completed a handshake with a forged certificate.
SAW_FORGED = (*WARNED, "refused")


def issuer_reasons(cell: CellResult, vendor: VendorProfile) -> list[str]:
    """What in ``cell`` contradicts ``vendor``'s issuer CN (empty when nothing does)."""
    o = cell.verdict.observation
    if o.outcome not in SAW_FORGED or not o.intercepted:
        return []
    want, reasons = vendor.issuing_cn, []
    if o.issuer_seen != want:
        reasons.append(f"the client saw issuer CN={o.issuer_seen}, expected the {vendor.name} issuer CN={want}")
    forged = {r.get("forged_issuer") for r in cell.proxy_records if r.get("action") == "intercepted"} - {None}
    if forged and forged != {want}:
        reasons.append(f"the proxy forged with {', '.join(sorted(forged))}, not CN={want}")
    if cell.client == "attended" and o.outcome in WARNED and f"Certificate Issuer: CN={want}." not in cell.output:
        reasons.append(f"the attended warning does not name Certificate Issuer: CN={want}")
    return reasons


def judge_vendor(cell: CellResult, vendor: VendorProfile) -> CellResult:
    """``cell`` renamed ``<vendor>/<scenario>``, failing if it shows another issuer than the vendor's."""
    extra = tuple(issuer_reasons(cell, vendor))
    verdict = cell.verdict
    if extra:
        verdict = Verdict(verdict.expected, verdict.observation, verdict.reasons + extra)
    return replace(cell, scenario=replace(cell.scenario, name=f"{vendor.name}/{cell.scenario.name}"),
                   verdict=verdict)


def _lost_port_race(error: LabStartError, state_dir) -> bool:
    logs = [p.read_text(errors="replace")[-2000:] for p in (state_dir / "logs").glob("*.log")]
    return any("already in use" in text for text in [str(error), *logs])


def run_vendor(args, vendor: VendorProfile, scenarios, clients, progress) -> tuple[list[CellResult], dict]:
    """Start ``vendor``'s lab, run ``scenarios`` (as they must turn out under it), judge, stop."""
    from harness.cli.main import _make_lab
    from harness.lab import default_state_dir
    from harness.matrix.runner import MatrixRunner
    from harness.model.policy import load_policies

    state_dir = (args.state_dir or default_state_dir()) / f"run-{vendor.name}"
    # One lab starts at a time, and a start that lost a port race is retried: a
    # lab reserves free ports and binds them a moment later, and another lab's
    # outgoing connections may take one in between (their ephemeral ports).
    for attempt in range(1, START_ATTEMPTS + 1):
        with _START_LOCK:
            lab = _make_lab(args, state_dir, vendor=vendor)
            try:
                info = lab.start()
                break
            except LabStartError as e:
                if attempt == START_ATTEMPTS or not _lost_port_race(e, state_dir):
                    raise
    try:
        runner = MatrixRunner(info, in_process=not args.subprocess, policies=load_policies())
        results = runner.run([s.for_vendor(vendor) for s in scenarios], clients,
                             progress=lambda r, done, total: progress(vendor, r, done, total))
        lab_doc = json.loads(info.to_json())
    finally:
        lab.stop()
    return [judge_vendor(r, vendor) for r in results], lab_doc


def cmd_run_vendors(args) -> int:
    """The ``harness run`` command when ``--vendor`` or ``--all-vendors`` is given."""
    from harness.cli.main import resolve_clients
    from harness.reports.report import publish
    from harness.model.scenarios import load_scenarios, select

    if args.vendor and args.all_vendors:
        raise UsageError("give --vendor NAME or --all-vendors, not both.")
    if args.lab != "local":
        raise UsageError("vendor profiles run on the local lab; drop --lab compose.")
    vendors = list(load_vendors().values()) if args.all_vendors else [get_vendor(args.vendor)]
    tags = args.tag or (["vendors"] if args.all_vendors and not args.scenario else None)
    scenarios = select(load_scenarios(args.scenarios_file), args.scenario, tags)
    if not scenarios:
        raise UsageError("no scenario matches the --scenario/--tag selection; see fixtures/scenarios.toml.")
    clients = resolve_clients(args.client, args.client_file)
    if args.report is not None:
        from harness.reports.report import prepare_report_dir

        prepare_report_dir(args.report)
    progress_on = not args.json
    if progress_on:
        print(f"Starting {len(vendors)} vendor lab(s): {', '.join(v.name for v in vendors)}...",
              file=sys.stderr, flush=True)

    def progress(vendor, r, done, total):
        if progress_on:
            print(f"[{vendor.name} {done:>2}/{total}] {r.scenario.name}/{r.client}: {r.verdict.label}",
                  file=sys.stderr, flush=True)

    start = time.perf_counter()
    # A few labs side by side: each spends much of its time starting and waiting
    # on handshakes; more would only queue on the CPUs.
    with ThreadPoolExecutor(max_workers=min(PARALLEL_LABS, len(vendors))) as pool:
        runs = list(pool.map(lambda v: run_vendor(args, v, scenarios, clients, progress), vendors))
    seconds = time.perf_counter() - start
    results = [r for cells, _ in runs for r in cells]
    lab_doc = {"vendors": {v.name: doc for v, (_, doc) in zip(vendors, runs)}}
    publish(results, lab=lab_doc, seconds=seconds, as_json=args.json, report_dir=args.report,
            show_secrets=args.show_secrets)
    return 0 if all(r.passed for r in results) else 1
