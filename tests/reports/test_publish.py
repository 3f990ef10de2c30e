"""What harness run prints and the report files it writes."""

from __future__ import annotations

import json

from harness.reports.publish import write_reports


def test_write_reports(cells, tmp_path):
    written = write_reports(tmp_path / "r", cells, lab={"backend": "local", "org_issuer_cn": "X"}, seconds=1)
    assert [p.name for p in written] == ["report.html", "junit.xml", "report.json"]
    assert json.loads((tmp_path / "r" / "report.json").read_text())["failed"] == 1

