"""``harness run``: fresh labs, the scenario matrix on them, the table and the reports.

One path for every option: ``--vendor NAME`` and ``--all-vendors`` start a lab
per vendor profile, ``--lab compose`` runs the same cells on containers, and a
``policies.toml`` beside ``--scenarios-file`` is used for every one of them
(:func:`harness.matrix.session.run_matrix`).

Start-up time: the first lab's proxy is spawned before this command imports
the lab, the matrix and the reports (their imports are inside
:func:`cmd_run`, deliberately), so mitmproxy's import overlaps all of that.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from harness.cli.parser import lab_options
from harness.errors import EnvironmentProblem, UnknownNameError, UsageError
from harness.lab.early import early_proxy
from harness.lab.statedir import run_state_dir
from harness.model.vendors import load_vendors


def resolve_clients(names: list[str] | None, files: list[Path] | None) -> list | None:
    """``--client``/``--client-file`` -> reference names and ClientDefs (None: the scenarios' own clients)."""
    from harness.matrix.execute import REFERENCE_CLIENTS  # deliberately late: see the module docstring
    from harness.model.clientdefs import builtin_clients, load_clients

    if not names and not files:
        return None
    definitions = builtin_clients()
    from_files: dict = {}
    for path in files or []:
        from_files.update(load_clients(path))
    definitions.update(from_files)
    chosen: list = []
    for name in names or list(from_files):
        if name in REFERENCE_CLIENTS:
            chosen.append(name)
        elif name in definitions:
            chosen.append(definitions[name])
        else:
            raise UnknownNameError("client", name, [*REFERENCE_CLIENTS, *definitions])
    return chosen


def cmd_run(args: argparse.Namespace) -> int:
    if args.vendor and args.all_vendors:
        raise UsageError("give --vendor NAME or --all-vendors, not both.")
    options = lab_options(args)
    vendors = list(load_vendors().values()) if args.all_vendors else [options.vendor] if options.vendor else None
    first = replace(options, state_dir=run_state_dir(options.state_dir, vendors[0].name if vendors else None))
    with early_proxy(first) as proxy_child:
        # Deliberately imported here, while the proxy imports mitmproxy (module docstring).
        from harness.matrix.session import run_matrix
        from harness.model.policy import load_policies
        from harness.model.scenarios import load_scenarios, select
        from harness.reports.document import left_out
        from harness.reports.publish import prepare_report_dir, publish

        # A scenario file brings its own policies.toml from beside it.
        policies = load_policies(args.scenarios_file.parent / "policies.toml") if args.scenarios_file else load_policies()
        # Without a selection, --all-vendors runs the rows a vendor changes.
        tags = args.tag or (["vendors"] if args.all_vendors and not args.scenario else None)
        scenarios = select(load_scenarios(args.scenarios_file, policies=policies), args.scenario, tags)
        if not scenarios:
            raise UsageError("no scenario matches the --scenario/--tag selection; see fixtures/scenarios.toml.")
        clients = resolve_clients(args.client, args.client_file)
        if args.report is not None:
            prepare_report_dir(args.report)  # an unwritable report directory fails before the lab starts
        if not args.json:
            labs = f"{len(vendors)} vendor lab(s): {', '.join(v.name for v in vendors)}" if vendors else f"the {args.lab} lab"
            print(f"Starting {labs}...", file=sys.stderr, flush=True)
        run = run_matrix(options, scenarios, clients, policies=policies, vendors=vendors,
                         in_process=not args.subprocess, progress=None if args.json else _progress,
                         proxy_child=proxy_child)
    not_run = left_out(run.skipped, run.undetermined, scenarios, clients)
    publish(run.results, lab=run.labs, seconds=run.seconds, as_json=args.json, report_dir=None,
            show_secrets=args.show_secrets, not_run=not_run)
    if args.report is not None:
        _write_reports(args.report, run, show_secrets=args.show_secrets, not_run=not_run)
    _say_left_out(run)
    return 0 if run.passed else 1


def _write_reports(directory: Path, run, *, show_secrets: bool, not_run: list) -> None:
    """``--report DIR``: the files, or one sentence naming DIR when the disk cannot take them
    (the directory was proven writable before the lab started, but a disk fills up)."""
    from harness.reports.publish import write_reports  # deliberately late: see the module docstring

    try:
        written = write_reports(directory, run.results, lab=run.labs, seconds=run.seconds, show_secrets=show_secrets,
                                not_run=not_run)
    except OSError as e:
        raise EnvironmentProblem(f"cannot write the reports to {directory} ({e.strerror or e}); free space there "
                                 "or pass --report with another directory.") from None
    print(f"Reports: {', '.join(str(p) for p in written)}", file=sys.stderr)


def _progress(vendor, cell, done: int, total: int) -> None:
    where = f"{vendor.name} " if vendor is not None else ""
    print(f"[{where}{done:>2}/{total}] {cell.scenario.name}/{cell.client}: {cell.verdict.label}", file=sys.stderr, flush=True)


def _say_left_out(run) -> None:
    for why in sorted(set(run.skipped.values())):
        names = [n for n, w in run.skipped.items() if w == why]
        print(f"Skipped {', '.join(names)}: {why}", file=sys.stderr)
    if run.undetermined:
        print("Not run, no outcome can be derived (set expect = { SCENARIO = OUTCOME } in the definition): "
              + ", ".join(f"{c} in {s}" for s, c in run.undetermined) + ".", file=sys.stderr)
