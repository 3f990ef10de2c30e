"""JUnit XML for CI systems: one testcase per cell, named ``scenario/client``.

What CI tools read from it (Jenkins, GitLab, GitHub test reporters): a cell
that failed its verdict is a ``<failure>`` with expected vs observed and the
reasons; a client that could not be run at all (no such program, not
executable) is an ``<error>``, a fault of the machine rather than of the
client; a cell the run left out (its scenario needs what the lab lacks, or
nothing tells what a client must do there) is a ``<skipped message=...>`` with
the reason, so a dashboard never counts it as passed.  The suite's counts are
those of the testcases written; its timestamp is the run's start in UTC
without a zone suffix (``2026-11-27T14:00:00``, the form Jenkins' JUnit schema
and plugin parse), and it names the host.  Every cell's account (the
journals, the client's output, the command that reruns it) is its
``system-out``.  ``tests/reports/jenkins-junit.xsd`` is the schema the tests
hold it to.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

from harness.reports.cells import describe

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
SUITE = "tls-inspection-lab"
# A client under test that never ran: a shell's codes for "no such program" and "not executable".
NOT_RUNNABLE = (126, 127)


def _xml(text: str) -> str:
    """Text XML 1.0 can carry: control characters (a client's colour codes) become U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def case_name(scenario: str, client: str) -> str:
    """A testcase's name: ``scenario/client`` (``vendor/scenario/client`` in a vendor run)."""
    return f"{scenario}/{client}"


def case_classname(scenario: str) -> str:
    """A testcase's class: ``tls-lab.<scenario>``; a vendor's cells group under ``tls-lab.<vendor>``."""
    return "tls-lab." + scenario.replace("/", ".")


def start_timestamp(doc: dict) -> str:
    """When the run started (the document is made at its end), UTC, ``YYYY-MM-DDTHH:MM:SS``."""
    end = datetime.strptime(doc["generated"], "%Y-%m-%dT%H:%M:%SZ")
    return (end - timedelta(seconds=doc.get("seconds") or 0)).strftime("%Y-%m-%dT%H:%M:%S")


def _is_error(cell: dict) -> bool:
    return cell.get("client_policy", "reference") != "reference" and \
        cell["observation"]["exit_code"] in NOT_RUNNABLE


def to_junit(doc: dict) -> str:
    """JUnit XML for a :func:`harness.reports.document.to_document` document."""
    cells, not_run = doc["cells"], doc.get("not_run", [])
    seconds = f"{doc['seconds'] or sum(c['seconds'] for c in cells):.3f}"
    errors = sum(1 for c in cells if c["verdict"] != "PASS" and _is_error(c))
    failures = sum(1 for c in cells if c["verdict"] != "PASS") - errors
    counts = {"tests": str(len(cells) + len(not_run)), "failures": str(failures), "errors": str(errors)}
    suites = ET.Element("testsuites", name=SUITE, **counts, time=seconds)
    suite = ET.SubElement(suites, "testsuite", name=SUITE, **counts, skipped=str(len(not_run)), time=seconds,
                          timestamp=start_timestamp(doc), hostname=socket.gethostname())
    props = ET.SubElement(suite, "properties")
    for key in ("backend", "org_issuer_cn", "lanes"):
        if key in doc["lab"]:
            ET.SubElement(props, "property", name=key, value=str(doc["lab"][key]))
    for c in cells:
        case = ET.SubElement(suite, "testcase", classname=case_classname(c["scenario"]),
                             name=case_name(c["scenario"], c["client"]), time=f"{c['seconds']:.3f}")
        if c["verdict"] != "PASS":
            message = f"expected {c['expected']}, observed {c['observed']}: " + "; ".join(c["reasons"])
            kind = ("error", "client-not-run") if _is_error(c) else ("failure", "verdict")
            problem = ET.SubElement(case, kind[0], type=kind[1], message=_xml(message))
            problem.text = _xml("\n".join(c["reasons"]))
        ET.SubElement(case, "system-out").text = _xml(describe(c))
    for n in not_run:
        case = ET.SubElement(suite, "testcase", classname=case_classname(n["scenario"]),
                             name=case_name(n["scenario"], n["client"]), time="0.000")
        ET.SubElement(case, "skipped", message=_xml(n["reason"]))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
