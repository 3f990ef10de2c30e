"""The terminal table and summary line."""

from __future__ import annotations

from harness.reports.table import summary_line, table


def test_table_lists_every_cell_and_the_reasons_of_failures(cells):
    lines = table(cells).splitlines()
    assert lines[0].split() == ["scenario", "client", "expected", "observed", "issuer", "seen",
                                "server", "saw", "interception", "grade", "verdict"]
    assert set(lines[1]) == {"-", " "}
    failing = next(i for i, line in enumerate(lines) if line.endswith("FAIL"))
    assert lines[failing].split()[:2] == ["inspected-continue", "mislabelled"]
    reasons = cells[-1].verdict.reasons
    assert reasons and lines[failing + 1:failing + 1 + len(reasons)] == [f"    - {r}" for r in reasons]
    assert sum(line.endswith("PASS") for line in lines) == len(cells) - 1
    assert "\033[" not in table(cells) and "\033[31mFAIL" in table(cells, color=True)


def test_summary_line(cells):
    assert summary_line(cells) == f"{len(cells) - 1} passed, 1 failed"
    assert summary_line(cells, 2.5) == f"{len(cells) - 1} passed, 1 failed in 2.50s"
    assert summary_line([]) == "0 passed, 0 failed"


def test_server_saw_interception_column(cells):
    """From the real cells: yes where a client reached the server through inspection (the attended
    client continuing, unpinned curl), no where it reached it untouched, - where nothing reached it."""
    seen = {(c.scenario.name, c.client): c.server_saw_interception for c in cells}
    assert seen[("direct", "beam")] == "no" and seen[("exception-wildcard", "curl-pinned")] == "no"
    assert seen[("inspected-continue", "attended")] == "yes" and seen[("inspected-continue", "curl-unpinned")] == "yes"
    assert seen[("inspected-continue", "beam")] == "-" and seen[("inspected-continue", "curl-pinned")] == "-"
    rows = {tuple(line.split()[:2]): line.split() for line in table(cells).splitlines()[2:] if line.endswith(("PASS", "FAIL"))}
    assert rows[("inspected-continue", "attended")][-3:] == ["yes", "A", "PASS"]
    assert rows[("inspected-continue", "beam")][-3:] == ["-", "-", "PASS"]
