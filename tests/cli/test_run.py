"""'harness run --report': what the run left out reaches every report (real subprocess, real lab)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from tests.cli.test_main import harness
from tests.reports.test_junit import validate


def test_cells_not_run_reach_the_reports(tmp_path):
    # curl-unpinned behind an untrusted upstream: nothing tells what it must do, so the cell is not run.
    reports = tmp_path / "reports"
    proc = harness("run", "--client", "curl-unpinned", "--scenario", "direct", "--scenario", "untrusted-upstream",
                   "--report", str(reports), "--state-dir", str(tmp_path / "lab"), "--lanes", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Not run, no outcome can be derived" in proc.stderr and "1 passed, 0 failed" in proc.stdout

    junit = (reports / "junit.xml").read_text()
    validate(junit)
    suite = ET.fromstring(junit).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("2", "0", "0", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"direct/curl-unpinned", "untrusted-upstream/curl-unpinned"}
    skipped = cases["untrusted-upstream/curl-unpinned"].find("skipped")
    assert "set expect = { \"untrusted-upstream\" = \"OUTCOME\" }" in skipped.get("message")
    assert cases["direct/curl-unpinned"].find("skipped") is None

    doc = json.loads((reports / "report.json").read_text())
    assert [(n["scenario"], n["client"]) for n in doc["not_run"]] == [("untrusted-upstream", "curl-unpinned")]
    page = (reports / "report.html").read_text()
    assert "Not run (1)" in page and "<title>TLS-inspection lab: 1 passed, 0 failed, 1 not run</title>" in page
