#!/usr/bin/env python3
"""Mutation check of the pure cores: does the suite notice when their logic is broken?

    ./lab mutate [MODULE ...] [--max-children N] [--show]

MODULE is one of pins, policy, verdict, decision, forge (default: all five).
Each runs mutmut (installed into the venv by ``./lab mutate`` on first use) on
one module with the tests written for it, in its own scratch directory under
``build/mutate/MODULE`` (its ``setup.cfg`` holds mutmut's configuration), from
scratch every time, and prints how many mutants the tests killed and which
survived (``--show``: with their diffs).  For ``forge`` only the ``plan``
function is mutated: the rest of forge.py builds certificates.

Slow (minutes per module on two busy cores): run it by hand after changing a
core or its tests, never in CI.  A survivor that changes an outcome (what the
lab decides, not the wording of a message) wants a test.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutate"
MUTMUT = Path(sys.executable).parent / "mutmut"


@dataclass(frozen=True)
class Target:
    source: str
    tests: tuple[str, ...]
    function: str = ""  # mutate only this function of the module (mutmut's x_NAME mutants)

    @property
    def module(self) -> str:
        return self.source.removesuffix(".py").replace("/", ".")

    @property
    def mutants(self) -> str:
        """The mutmut name pattern of this target's mutants."""
        return f"{self.module}.x_{self.function}__mutmut_*" if self.function else f"{self.module}.*"


TARGETS = {
    "pins": Target("harness/model/pins.py", ("tests/model/test_pins.py",)),
    "policy": Target("harness/model/policy.py", ("tests/model/test_policy.py",)),
    "verdict": Target("harness/model/verdict.py", ("tests/model/test_verdict.py",)),
    "decision": Target("harness/clients/decision.py", ("tests/clients/test_decision.py",)),
    "forge": Target("harness/proxy/forge.py", ("tests/proxy/test_forge.py",), function="plan"),
}
# What the scratch directory shows mutmut of the checkout (symlinks: mutmut copies what it mutates).
LINKED = ("harness", "tests", "fixtures", "pyproject.toml")
RESULT = re.compile(r"^\s*(\S+): (.+)$")


def setup_cfg(target: Target) -> str:
    """mutmut's configuration for one target (mutmut reads setup.cfg when pyproject.toml has none)."""
    tests = "\n    ".join(target.tests)
    return (f"[mutmut]\nsource_paths = harness\nonly_mutate = {target.source}\nalso_copy = fixtures\n"
            f"pytest_add_cli_args_test_selection =\n    {tests}\npytest_add_cli_args = -p no:cacheprovider\n")


def prepare(name: str, target: Target) -> Path:
    where = WORK / name
    shutil.rmtree(where, ignore_errors=True)  # from scratch: stale results would hide new tests
    where.mkdir(parents=True)
    for entry in LINKED:
        (where / entry).symlink_to(ROOT / entry)
    (where / "setup.cfg").write_text(setup_cfg(target))
    return where


def run_one(name: str, target: Target, max_children: int, show: bool) -> dict[str, int]:
    where = prepare(name, target)
    log = where / "mutmut.log"
    print(f"mutate {name}: {target.source} against {' '.join(target.tests)} (log: {log})", flush=True)
    args = [str(MUTMUT), "run", "--max-children", str(max_children)]
    if target.function:
        args.append(target.mutants)
    with open(log, "w") as out:
        code = subprocess.run(args, cwd=where, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        sys.exit(f"mutate {name}: mutmut run failed (exit {code}); see {log}.")
    listing = subprocess.run([str(MUTMUT), "results", "--all", "true"], cwd=where, capture_output=True, text=True)
    statuses = {m[1]: m[2] for line in listing.stdout.splitlines() if (m := RESULT.match(line))}
    pattern = re.compile(re.escape(target.mutants).replace(r"\*", ".*") + "$")
    statuses = {mutant: s for mutant, s in statuses.items() if pattern.match(mutant)}
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    for mutant, status in sorted(statuses.items()):
        if status != "killed":
            print(f"  {status}: {mutant}")
            if show:
                diff = subprocess.run([str(MUTMUT), "show", mutant], cwd=where, capture_output=True, text=True)
                print("    " + "\n    ".join(line for line in diff.stdout.splitlines() if line[:1] in "-+"
                                           and not line.startswith(("---", "+++"))))
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="./lab mutate", description=__doc__.split("\n\n")[0])
    p.add_argument("modules", nargs="*", metavar="MODULE", help=f"one of {', '.join(TARGETS)} (default: all)")
    p.add_argument("--max-children", type=int, default=min(2, os.cpu_count() or 1),
                   help="mutants tested at once (default: 2)")
    p.add_argument("--show", action="store_true", help="print each survivor's diff")
    args = p.parse_args(argv)
    if unknown := [m for m in args.modules if m not in TARGETS]:
        p.error(f"unknown module {unknown[0]!r}; choose from {', '.join(TARGETS)}")
    if args.max_children < 1:
        p.error("--max-children must be 1 or more")
    if not MUTMUT.exists():
        sys.exit(f"mutate: {MUTMUT} is missing; run './lab mutate', which installs mutmut into the venv.")
    summary = {name: run_one(name, TARGETS[name], args.max_children, args.show) for name in args.modules or TARGETS}
    print(f"\n{'module':<10} {'mutants':>7} {'killed':>7} {'survived':>8} {'other':>6}")
    for name, counts in summary.items():
        total, killed, survived = sum(counts.values()), counts.get("killed", 0), counts.get("survived", 0)
        print(f"{name:<10} {total:>7} {killed:>7} {survived:>8} {total - killed - survived:>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
