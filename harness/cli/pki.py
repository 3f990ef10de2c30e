"""``harness pki``: generate the lab PKI into the state directory, or check the one there."""

from __future__ import annotations

import argparse

from harness.lab.statedir import default_state_dir, prepare_state_dir
from harness.model.vendors import get_vendor
from harness.pki.hostile import parse_cases
from harness.pki.lab import LabPKI


def cmd_pki(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or default_state_dir()
    if args.check:
        pki = LabPKI.load(state_dir)  # one BadFileError sentence for a missing, corrupt or key-less file
        print(f"The lab PKI in {pki.state_dir} is complete: every file parses and every key matches its certificate.")
        return 0
    vendor = get_vendor(args.vendor) if args.vendor else None
    constrained = not args.no_name_constraints and args.name_constraints == "on"
    pki = LabPKI.generate(prepare_state_dir(state_dir), org_common_name=args.org_cn, org_organization=args.org_o,
                          name_constraints=constrained, vendor=vendor, hostile_sites=parse_cases(args.sites))
    for name, path in pki.describe().items():
        print(f"{name:20} {path}")
    return 0
