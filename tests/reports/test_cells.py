"""Redaction and the per-cell account every report format shares."""

from __future__ import annotations

import json

from harness.reports.cells import REDACTED, cell_document, describe, redact


def test_redact():
    doc = {"a": "token s3cr3t here", "headers": {"Authorization": "Bearer s3cr3t", "accept": "*/*"},
           "code": "123456", "exit_code": 5, "list": ["s3cr3t", 1], "empty_code": {"code": None}}
    assert redact(doc, {"s3cr3t"}) == {
        "a": f"token {REDACTED} here", "headers": {"Authorization": REDACTED, "accept": "*/*"},
        "code": REDACTED, "exit_code": 5, "list": [REDACTED, 1], "empty_code": {"code": None}}


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
