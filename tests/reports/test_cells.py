"""Redaction and the per-cell account every report format shares."""

from __future__ import annotations

import json
from dataclasses import replace

from harness.model.secrets import REDACTED
from harness.reports.cells import cell_document, describe
from harness.reports.rerun import rerun_command


def test_cell_document_redacts_the_command_and_environment(cells):
    cell = replace(cells[4], command=("curl", "-u", "alice:hunter2", "-H", "X-Api-Key: k-7f3a", cells[4].secret),
                   env={"API_TOKEN": "t-91c2", "HTTPS_PROXY": "http://bob:pw-55e1@proxy:3128"})
    doc = cell_document(cell)
    assert doc["command"] == ["curl", "-u", REDACTED, "-H", f"X-Api-Key: {REDACTED}", REDACTED]
    assert doc["env"] == {"API_TOKEN": REDACTED, "HTTPS_PROXY": f"http://{REDACTED}@proxy:3128"}
    line = rerun_command(doc)
    assert line.startswith("API_TOKEN='[redacted]' HTTPS_PROXY=") and "curl -u '[redacted]'" in line
    assert line in describe(doc)
    shown = cell_document(cell, show_secrets=True)
    assert "alice:hunter2" in shown["command"] and shown["env"]["API_TOKEN"] == "t-91c2"


def test_cell_document_redacts_unless_asked(cells):
    unpinned = cells[4]
    assert unpinned.secret in json.dumps(unpinned.proxy_records)  # the test lab journals it in clear ...
    assert unpinned.secret not in json.dumps(cell_document(unpinned))  # ... the document does not
    assert unpinned.secret in json.dumps(cell_document(unpinned, show_secrets=True))


def test_describe_tells_the_ground_truth(cells):
    text = describe(cell_document(cells[4]))
    assert text.startswith("inspected-continue/curl-unpinned: expected accepted-inspection, "
                           "observed accepted-inspection")
    assert "read: POST beam.screenmeet.com/beam/v1/agents/register -> 200 carrying authorization" in text
    assert "  server journal:" in text and cells[4].secret not in text
