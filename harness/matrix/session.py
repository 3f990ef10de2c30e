"""The one run path: labs for some options, the matrix on each, the results.

``harness run`` (with or without ``--vendor``, ``--all-vendors``, ``--lab
compose``), the benchmarks and anyone scripting the lab call
:func:`run_matrix`; the pytest plugin uses the same pieces
(:func:`harness.lab.open.open_lab` and :class:`MatrixRunner` with the vendor
as a parameter).  For each lab it serves only the policies the scenarios use,
builds the transparent gateway where rows need it and the machine allows,
and lets the first lab adopt a proxy started early (:func:`harness.lab.early.early_proxy`).

Several vendor profiles run as several labs, a few side by side: each
spends much of its time starting and waiting on handshakes, and more would
only queue on the CPUs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import UsageError
from harness.lab.gateway import policies_for
from harness.lab.open import start_lab
from harness.lab.options import LabOptions
from harness.lab.process import Child
from harness.lab.statedir import run_state_dir
from harness.matrix.cell import CellResult
from harness.matrix.runner import MatrixRunner
from harness.matrix.vendors import product_grades
from harness.model.clientdefs import ClientDef
from harness.model.policy import Policy, load_policies
from harness.model.scenarios import Scenario, policies_used
from harness.model.vendors import VendorProfile

PARALLEL_LABS = 3
# One lab starts at a time: a lab reserves free ports and binds them a moment later, and
# another lab's outgoing connections may take one in between (their ephemeral ports).
_START_LOCK = threading.Lock()

Progress = Callable[[CellResult, int, int], None]


@dataclass
class MatrixRun:
    """What a run produced: judged cells in matrix order, and what was left out and why."""

    results: list[CellResult]
    labs: dict  # the lab document (lab.json's content), or {"vendors": {name: document}}
    seconds: float
    skipped: dict[str, str] = field(default_factory=dict)  # scenario -> why its lab could not run it
    undetermined: list[tuple[str, str]] = field(default_factory=list)  # (scenario, client) with no derivable outcome

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def options_for(options: LabOptions, scenarios: list[Scenario], *, vendor: VendorProfile | None = None,
                state_dir: Path | None = None) -> LabOptions:
    """``options`` for a lab that runs ``scenarios``: the transparent gateway for the policies of
    its transparent rows, where it can be built (``--transparent`` still requires it for all)."""
    changes: dict = {"vendor": vendor if vendor is not None else options.vendor}
    if state_dir is not None:
        changes["state_dir"] = state_dir
    if options.transparent is not True and (wanted := policies_for(scenarios)):
        changes.update(transparent=None, transparent_policies=tuple(wanted))
    return replace(options, **changes)


def _run_one(options: LabOptions, scenarios: list[Scenario], clients, policies: dict[str, Policy], *,
             in_process: bool, progress: Progress | None, proxy_child: Child | None):
    """Start one lab, run ``scenarios`` on it, stop it; (runner, results, lab document)."""
    served = policies_used(scenarios, policies)
    with _START_LOCK:
        lab, info = start_lab(options, policies=served, proxy_child=proxy_child)
    try:
        runner = MatrixRunner(info, in_process=in_process, policies=policies, vendor=options.vendor)
        results = runner.run(scenarios, clients, progress=progress)
        return runner, results, json.loads(info.to_json())
    finally:
        lab.stop()


def run_matrix(options: LabOptions, scenarios: list[Scenario], clients: "list[str | ClientDef] | None" = None, *,
               policies: dict[str, Policy], vendors: list[VendorProfile] | None = None, in_process: bool = True,
               progress: Callable[[VendorProfile | None, CellResult, int, int], None] | None = None,
               proxy_child: Child | None = None) -> MatrixRun:
    """Run every (scenario, client) cell on a fresh lab (one per vendor when ``vendors`` is given).

    ``policies`` are the ones the scenarios were loaded against; ``clients``
    (reference names or :class:`ClientDef`) replace the scenarios' own;
    ``progress(vendor, cell, done, total)`` is called as cells finish;
    ``proxy_child`` is a proxy started early in the first lab's state directory
    (:func:`harness.lab.statedir.run_state_dir`) for it to adopt.
    """
    if options.backend == "compose" and policies != load_policies():
        raise UsageError("the compose image serves fixtures/policies.toml only, so a scenario file with its own "
                         "policies.toml runs on the local lab; drop --lab compose.")
    start = time.perf_counter()
    plans = [(v, options_for(options, scenarios, vendor=v, state_dir=run_state_dir(options.state_dir, v.name if v else None)))
             for v in (vendors or [None])]

    def one(index: int, vendor: VendorProfile | None, lab_options: LabOptions):
        report = (lambda cell, done, total: progress(vendor, cell, done, total)) if progress else None
        return _run_one(lab_options, scenarios, clients, policies, in_process=in_process, progress=report,
                        proxy_child=proxy_child if index == 0 else None)

    # Compose labs one after another: an engine holds one compose lab (fixed subnets, one project).
    side_by_side = 1 if options.backend == "compose" else PARALLEL_LABS
    with ThreadPoolExecutor(max_workers=min(side_by_side, len(plans))) as pool:
        futures = [pool.submit(one, i, v, o) for i, (v, o) in enumerate(plans)]
        runs = [f.result() for f in futures]
    results = [cell for _, cells, _ in runs for cell in cells]
    labs = ({"vendors": {v.name: doc for (v, _), (_, _, doc) in zip(plans, runs)}} if vendors
            else runs[0][2])
    if vendors:  # the server's grade of each product's upstream ClientHello (harness.matrix.vendors)
        for name, grade in product_grades(results).items():
            labs["vendors"].get(name, {})["upstream_grade"] = grade
    # Under vendors a cell's scenario is named VENDOR/ROW (harness.matrix.vendors), and so is a row left out.
    skipped = {(f"{runner.vendor.name}/{name}" if vendors and runner.vendor else name): why
               for runner, _, _ in runs for name, why in runner.skipped.items()}
    undetermined = sorted({pair for runner, _, _ in runs for pair in runner.undetermined})
    return MatrixRun(results, labs, time.perf_counter() - start, skipped, undetermined)
