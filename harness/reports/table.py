"""The terminal report: a fixed-width table of the cells, and the one-line summary under it."""

from __future__ import annotations

from harness.matrix.cell import CellResult
from harness.reports.cells import cell_document
from harness.reports.rerun import rerun_command

COLUMNS = ("scenario", "client", "expected", "observed", "issuer seen", "server saw interception", "grade",
           "verdict")


def _row(r: CellResult) -> tuple[str, ...]:
    o = r.verdict.observation
    return (r.scenario.name, r.client, r.verdict.expected, o.outcome, o.issuer_seen or "-",
            r.server_saw_interception, r.server_grade, r.verdict.label)


def table(results: list[CellResult], *, color: bool = False, show_secrets: bool = False) -> str:
    """A fixed-width table; under each failure its reasons and the command that reruns its client
    (credentials in it redacted unless ``show_secrets``)."""
    rows = [COLUMNS] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) for cell, w in zip(row, widths)]
        if color and n:
            mark = "\033[32m" if row[-1] == "PASS" else "\033[31m"
            cells[-1] = f"{mark}{cells[-1]}\033[0m"
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
        elif not results[n - 1].passed:
            for reason in results[n - 1].verdict.reasons:
                lines.append(f"    - {reason}")
            if rerun := rerun_command(cell_document(results[n - 1], show_secrets=show_secrets)):
                lines.append(f"    rerun: {rerun}")
    return "\n".join(lines)


def summary_line(results: list[CellResult], seconds: float | None = None) -> str:
    """``N passed, M failed``, with the run's duration when ``seconds`` is given."""
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    took = f" in {seconds:.2f}s" if seconds is not None else ""
    return f"{passed} passed, {failed} failed{took}"


def grades_line(lab: dict) -> str | None:
    """For a vendor run: each product's upstream TLS grade as the mock server gave it (NDSS 2017 rules)."""
    vendors = lab.get("vendors") or {}
    grades = [f"{name} {doc['upstream_grade']}" for name, doc in vendors.items() if doc.get("upstream_grade")]
    return "Upstream TLS grade per product (the server's grade of the proxy's ClientHello): " + ", ".join(grades) \
        if grades else None
