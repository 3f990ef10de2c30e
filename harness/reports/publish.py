"""Writing the reports of a run: what ``harness run`` prints and the files ``--report DIR`` gets."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

from harness.lab.statedir import writable_dir
from harness.matrix.cell import CellResult
from harness.reports.document import NotRun, to_document, to_json
from harness.reports.html import to_html
from harness.reports.junit import to_junit
from harness.reports.table import grades_line, summary_line, table


def prepare_report_dir(path: str | Path) -> Path:
    """Create the report directory, or say in one sentence why it cannot be used."""
    return writable_dir(path, what="report directory", option="--report")


def write_reports(directory: str | Path, results: list[CellResult], *, lab: dict | None = None,
                  seconds: float | None = None, show_secrets: bool = False, not_run: Iterable[NotRun] = ()) -> list[Path]:
    """Write ``report.html``, ``junit.xml`` and ``report.json``; returns their paths.

    ``not_run``: the cells left out, with why (:func:`harness.reports.document.left_out`).
    """
    d = prepare_report_dir(directory)
    doc = to_document(results, lab=lab, seconds=seconds, show_secrets=show_secrets, not_run=not_run)
    files = {"report.html": to_html(doc), "junit.xml": to_junit(doc), "report.json": json.dumps(doc, indent=2)}
    written = []
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
        written.append(d / name)
    return written


def publish(results: list[CellResult], *, lab: dict, seconds: float, as_json: bool,
            report_dir: str | Path | None, show_secrets: bool, not_run: Iterable[NotRun] = ()) -> None:
    """What ``harness run`` prints (the table, or one JSON document) and the report files it writes."""
    not_run = list(not_run)
    if as_json:
        print(to_json(results, lab=lab, seconds=seconds, show_secrets=show_secrets, not_run=not_run))
    else:
        print(table(results, color=sys.stdout.isatty(), show_secrets=show_secrets))
        print(summary_line(results, seconds))
        if line := grades_line(lab):
            print(line)
    if report_dir is not None:
        written = write_reports(report_dir, results, lab=lab, seconds=seconds, show_secrets=show_secrets,
                                not_run=not_run)
        print(f"Reports: {', '.join(str(p) for p in written)}", file=sys.stderr)
