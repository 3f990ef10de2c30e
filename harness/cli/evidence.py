"""``harness evidence DIR``: bundle what the running or just-stopped lab saw (:mod:`harness.reports.evidence`)."""

from __future__ import annotations

import argparse

from harness.lab.statedir import default_state_dir
from harness.reports.evidence import bundle


def cmd_evidence(args: argparse.Namespace) -> int:
    archive = bundle(args.state_dir or default_state_dir(), args.dir)
    print(f"Evidence in {args.dir} and {archive} (see SUMMARY.md there).")
    return 0
