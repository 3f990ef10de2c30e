"""'harness run' (harness.cli.run) as a user runs it: the matrix, its JSON, its exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from tests.clihelpers import ROOT, assert_one_sentence_error, harness
from tests.reports.test_junit import validate


def test_run_core_matrix_passes_and_reports_json(tmp_path):
    proc = harness("run", "--tag", "core", "--json", "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["failed"] == 0 and doc["passed"] == 14
    assert {c["scenario"] for c in doc["cells"]} >= {"direct", "inspected-continue", "exception-partial"}


def test_run_exits_nonzero_on_a_mismatch(tmp_path):
    """Negative: a scenario file that expects the wrong outcome makes 'harness run' fail."""
    fixtures = ROOT / "fixtures"
    bad = tmp_path / "scenarios.toml"
    (tmp_path / "policies.toml").write_text((fixtures / "policies.toml").read_text())
    bad.write_text('[[scenario]]\nname = "wrong"\nnetwork = "proxy"\npolicy = "inspect"\n'
                   'trust = "public+org"\nexpect = { beam = "connected" }\n')
    proc = harness("run", "--scenarios-file", str(bad), "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout and "expected connected" in proc.stdout


def test_run_subprocess_clients(tmp_path):
    proc = harness("run", "--scenario", "inspected-continue", "--subprocess", "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warned-continued" in proc.stdout


def test_unwritable_state_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = harness("run", "--state-dir", str(blocker / "sub"))
    assert_one_sentence_error(proc, 1)
    assert "not writable" in proc.stderr


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
