"""JUnit XML for CI systems: one testcase per cell, failures with their reasons, the account in system-out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harness.reports.cells import describe

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str) -> str:
    """Text XML 1.0 can carry: control characters (a client's colour codes) become U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def to_junit(doc: dict) -> str:
    """JUnit XML: one testcase per cell (classname = scenario, name = client), failures with their reasons."""
    cells = doc["cells"]
    seconds = f"{doc['seconds'] or sum(c['seconds'] for c in cells):.3f}"
    suites = ET.Element("testsuites", name="tls-inspection-lab", tests=str(len(cells)),
                        failures=str(doc["failed"]), errors="0", time=seconds)
    suite = ET.SubElement(suites, "testsuite", name="tls-inspection-lab", tests=str(len(cells)),
                          failures=str(doc["failed"]), errors="0", skipped="0", time=seconds,
                          timestamp=doc["generated"])
    props = ET.SubElement(suite, "properties")
    for key in ("backend", "org_issuer_cn", "lanes"):
        if key in doc["lab"]:
            ET.SubElement(props, "property", name=key, value=str(doc["lab"][key]))
    for c in cells:
        case = ET.SubElement(suite, "testcase", classname=f"tls-lab.{c['scenario']}", name=c["client"],
                             time=f"{c['seconds']:.3f}")
        if c["verdict"] != "PASS":
            failure = ET.SubElement(case, "failure", type="verdict",
                                    message=_xml(f"expected {c['expected']}, observed {c['observed']}: "
                                                 + "; ".join(c["reasons"])))
            failure.text = _xml("\n".join(c["reasons"]))
        ET.SubElement(case, "system-out").text = _xml(describe(c))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
