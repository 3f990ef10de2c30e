"""``harness pki``: generate the lab PKI into the state directory, check the one there, or export
its organisation CA in every install format (``harness pki export DIR``)."""

from __future__ import annotations

import argparse
import os

from harness.errors import UsageError
from harness.lab.statedir import default_state_dir, prepare_state_dir, writable_dir
from harness.model.vendors import get_vendor
from harness.pki.ca import load_certificate
from harness.pki.export import export_ca
from harness.pki.hostile import parse_cases
from harness.pki.lab import LabPKI

P12_PASSWORD_ENV = "HARNESS_P12_PASSWORD"
EXPORT_HINT = "start the lab with 'harness up' (or generate its PKI with 'harness pki') first, or pass --state-dir"


def cmd_pki(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or default_state_dir()
    if getattr(args, "pki_action", None) == "export":
        return cmd_export(args, state_dir)
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


def cmd_export(args: argparse.Namespace, state_dir) -> int:
    """Write the org root (the CA clients must trust: ``org-ca.pem``, a vendor lab's root too)."""
    pki = LabPKI.at(state_dir)
    if not pki.org_ca.parent.is_dir():
        raise UsageError(f"there is no lab PKI under {state_dir}; {EXPORT_HINT}.")
    cert = load_certificate(pki.org_ca, hint=EXPORT_HINT)  # one BadFileError sentence if corrupt
    password = args.p12_password if args.p12_password is not None else os.environ.get(P12_PASSWORD_ENV, "")
    if args.directory.exists() and not args.directory.is_dir():
        raise UsageError(f"{args.directory} exists and is not a directory; pass a directory for the exported files.")
    directory = writable_dir(args.directory, what="export directory", option="another DIR")
    written = export_ca(cert, directory, password=password.encode())
    print(f"Exported the organisation CA {cert.subject.rfc4514_string()} (no private key):")
    for path in written:
        print(f"  {path}")
    return 0
