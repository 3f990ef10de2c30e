"""JUnit XML from real cells, as CI tools read it: names, counts, skipped cells, Jenkins' schema."""

from __future__ import annotations

import copy
import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from harness.reports.document import left_out, to_document
from harness.reports.junit import start_timestamp, to_junit

# The Jenkins xunit plugin's JUnit schema (source in the file's first comment).
SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).with_name("jenkins-junit.xsd"))))
# The form Jenkins' JUnit plugin and the Ant/Windy Road schema take: ISO 8601, no zone suffix.
JENKINS_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\Z")
NOT_RUN = [("transparent-inspected-continue", "beam", "the transparent gateway needs root on Linux."),
           ("untrusted-upstream", "curl-unpinned", "the lab cannot tell what curl-unpinned must do here.")]


def validate(text: str) -> None:
    doc = etree.fromstring(text.encode())
    assert SCHEMA.validate(doc), SCHEMA.error_log


def counts(element) -> dict[str, int]:
    return {k: int(element.get(k)) for k in ("tests", "failures", "errors")}


def test_junit(cells):
    root = ET.fromstring(to_junit(to_document(cells, seconds=1.5)))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert counts(suite) == counts(root) == {"tests": len(cells), "failures": 1, "errors": 0}
    assert suite.get("skipped") == "0"
    assert [(c.get("classname"), c.get("name")) for c in cases][:3] == [
        ("tls-lab.direct", "direct/beam"), ("tls-lab.inspected-continue", "inspected-continue/beam"),
        ("tls-lab.inspected-continue", "inspected-continue/attended")]
    assert len({c.get("name") for c in cases}) == len(cases)  # every cell its own test in a dashboard
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["inspected-continue/mislabelled"]
    failure = failed[0].find("failure")
    assert failure.get("message").startswith("expected accepted-inspection, observed refused: ")
    assert "the proxy decrypted no request" in failure.text
    out = cases[4].find("system-out").text
    assert "read: POST beam.screenmeet.com/beam/v1/agents/register -> 200 carrying authorization" in out
    assert cells[4].secret not in ET.tostring(root, encoding="unicode")


def test_skipped_cells_are_testcases_with_the_reason(cells):
    root = ET.fromstring(to_junit(to_document(cells, not_run=NOT_RUN)))
    suite = root.find("testsuite")
    skipped = [c for c in suite.findall("testcase") if c.find("skipped") is not None]
    assert [(c.get("classname"), c.get("name"), c.find("skipped").get("message")) for c in skipped] == [
        ("tls-lab.transparent-inspected-continue", "transparent-inspected-continue/beam", NOT_RUN[0][2]),
        ("tls-lab.untrusted-upstream", "untrusted-upstream/curl-unpinned", NOT_RUN[1][2])]
    assert suite.get("skipped") == "2" and suite.get("tests") == str(len(cells) + 2)


def test_counts_match_the_testcases(cells):
    doc = to_document(cells, not_run=NOT_RUN)
    doc["cells"].append(_not_runnable(doc["cells"][-1]))
    root = ET.fromstring(to_junit(doc))
    for element in (root, root.find("testsuite")):
        cases = root.iter("testcase")
        kinds = [next((k for k in ("failure", "error", "skipped") if c.find(k) is not None), "pass") for c in cases]
        assert counts(element) == {"tests": len(kinds), "failures": kinds.count("failure"),
                                   "errors": kinds.count("error")}
    assert root.find("testsuite").get("skipped") == str(kinds.count("skipped")) == "2"
    assert kinds.count("error") == 1 and kinds.count("failure") == 1


def _not_runnable(cell: dict) -> dict:
    """``cell`` as if its program did not exist (exit 127): an error of the machine, not a failure."""
    cell = copy.deepcopy(cell)
    cell.update(client="missing-program", verdict="FAIL", observed="exit-127",
                reasons=["[harness] cannot run 'nope': no such program"])
    cell["observation"]["exit_code"] = 127
    return cell


def test_timestamp_and_hostname(cells):
    doc = to_document(cells, seconds=90.0)
    suite = ET.fromstring(to_junit(doc)).find("testsuite")
    assert JENKINS_TIMESTAMP.match(suite.get("timestamp")), suite.get("timestamp")
    generated = datetime.strptime(doc["generated"], "%Y-%m-%dT%H:%M:%SZ")
    assert datetime.fromisoformat(suite.get("timestamp")) == generated - timedelta(seconds=90)  # the run's start
    assert start_timestamp({"generated": "2026-11-27T14:01:30Z", "seconds": 90.0}) == "2026-11-27T14:00:00"
    assert suite.get("hostname") == socket.gethostname()


def test_valid_against_jenkins_schema(cells):
    doc = to_document(cells, seconds=1.5, not_run=NOT_RUN)
    doc["cells"].append(_not_runnable(doc["cells"][-1]))
    validate(to_junit(doc))
    validate(to_junit(to_document([])))  # an empty run too


def _drop_suite_errors(root):
    del root.find("testsuite").attrib["errors"]


def _skipped_with_reason(root):
    root.find(".//skipped").set("reason", "x")


def _time_with_unit(root):
    root.find("testsuite").set("time", "1.5s")


def _skipped_count_on_testsuites(root):
    root.set("skipped", "2")


@pytest.mark.parametrize("breakage", [_drop_suite_errors, _skipped_with_reason, _time_with_unit,
                                      _skipped_count_on_testsuites])
def test_the_schema_rejects_what_jenkins_would(cells, breakage):
    """The validation above can fail: the schema refuses files that differ from ours in small ways."""
    root = etree.fromstring(to_junit(to_document(cells, seconds=1.5, not_run=NOT_RUN)).encode())
    assert SCHEMA.validate(root)
    breakage(root)
    assert not SCHEMA.validate(root)


def test_left_out_names_every_cell_a_skipped_scenario_would_have_had(lab_scenarios, lab_clients):
    s = lab_scenarios
    scenarios = [s["direct"], s["transparent-inspected-continue"], s["untrusted-upstream"]]
    skipped = {"transparent-inspected-continue": "no gateway here."}
    undetermined = [("untrusted-upstream", "curl-unpinned")]
    got = left_out(skipped, undetermined, scenarios)
    assert got[:2] == [("transparent-inspected-continue", c, "no gateway here.")
                       for c in s["transparent-inspected-continue"].expect]
    assert got[2][:2] == ("untrusted-upstream", "curl-unpinned") and "set expect = " in got[2][2]
    chosen = left_out(skipped, [], scenarios, [lab_clients["curl-pinned"], "beam"])
    assert [c for _, c, _ in chosen] == ["curl-pinned", "beam"]
    # In a vendor run a row left out is named as its cells are: VENDOR/ROW (parity matches them so).
    vendor = left_out({"palo-alto/untrusted-upstream": "not here."}, [], scenarios)
    assert vendor == [("palo-alto/untrusted-upstream", c, "not here.") for c in s["untrusted-upstream"].expect]


def test_junit_survives_control_characters(cells):
    doc = to_document(cells[:1])
    doc["cells"][0]["output"] = "\x1b[31mred\x1b[0m \x00"
    validate(to_junit(doc))  # well-formed, and still valid
