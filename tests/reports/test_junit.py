"""JUnit XML from real cells."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.reports.document import to_document
from harness.reports.junit import to_junit


def test_junit(cells):
    root = ET.fromstring(to_junit(to_document(cells, seconds=1.5)))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert (suite.get("tests"), suite.get("failures")) == (str(len(cells)), "1")
    assert [(c.get("classname"), c.get("name")) for c in cases][:2] == [("tls-lab.direct", "beam"),
                                                                     ("tls-lab.inspected-continue", "beam")]
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["mislabelled"]
    assert "the proxy decrypted no request" in failed[0].find("failure").text
    out = cases[4].find("system-out").text
    assert "read: POST beam.screenmeet.com/beam/v1/agents/register -> 200 carrying authorization" in out
    assert cells[4].secret not in ET.tostring(root, encoding="unicode")


def test_junit_survives_control_characters(cells):
    doc = to_document(cells[:1])
    doc["cells"][0]["output"] = "\x1b[31mred\x1b[0m \x00"
    ET.fromstring(to_junit(doc))  # well-formed
