"""``harness audit --proxy URL``: grade an inspection proxy that is not the lab's (:mod:`harness.audit`)."""

from __future__ import annotations

import argparse

from harness.audit.drive import run_audit
from harness.errors import EnvironmentProblem
from harness.lab.statedir import default_state_dir
from harness.net.addresses import check_local_address
from harness.reports.audit import to_html, to_json, to_text
from harness.reports.publish import prepare_report_dir


def cmd_audit(args: argparse.Namespace) -> int:
    check_local_address(args.listen)
    if args.report is not None:
        prepare_report_dir(args.report)  # an unusable report directory is said before the audit starts
    result = run_audit(args.proxy, trust=args.trust, state_dir=args.state_dir or default_state_dir(),
                       listen=args.listen, timeout=args.timeout)
    doc = result.to_dict()
    if args.report is not None:
        try:
            (args.report / "audit.html").write_text(to_html(doc), encoding="utf-8")
            (args.report / "audit.json").write_text(to_json(doc) + "\n", encoding="utf-8")
        except OSError as e:
            raise EnvironmentProblem(f"cannot write the audit report to {args.report} ({e.strerror or e}); free "
                                     "space there or pass --report with another directory.") from None
    print(to_json(doc) if args.json else to_text(doc))
    return 1 if result.grade == "F" else 0
