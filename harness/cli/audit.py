"""``harness audit --proxy URL``: grade an inspection proxy that is not the lab's (:mod:`harness.audit`)."""

from __future__ import annotations

import argparse

from harness.audit.drive import run_audit
from harness.lab.statedir import default_state_dir
from harness.net.addresses import check_local_address
from harness.reports.audit import to_html, to_json, to_text


def cmd_audit(args: argparse.Namespace) -> int:
    check_local_address(args.listen)
    result = run_audit(args.proxy, trust=args.trust, state_dir=args.state_dir or default_state_dir(),
                       listen=args.listen, timeout=args.timeout)
    doc = result.to_dict()
    if args.report:
        args.report.mkdir(parents=True, exist_ok=True)
        (args.report / "audit.html").write_text(to_html(doc))
        (args.report / "audit.json").write_text(to_json(doc) + "\n")
    print(to_json(doc) if args.json else to_text(doc))
    return 1 if result.grade == "F" else 0
