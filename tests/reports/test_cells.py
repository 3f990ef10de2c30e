"""Redaction and the per-cell account every report format shares."""

from __future__ import annotations

from harness.reports.cells import REDACTED, redact


def test_redact():
    doc = {"a": "token s3cr3t here", "headers": {"Authorization": "Bearer s3cr3t", "accept": "*/*"},
           "code": "123456", "exit_code": 5, "list": ["s3cr3t", 1], "empty_code": {"code": None}}
    assert redact(doc, {"s3cr3t"}) == {
        "a": f"token {REDACTED} here", "headers": {"Authorization": REDACTED, "accept": "*/*"},
        "code": REDACTED, "exit_code": 5, "list": [REDACTED, 1], "empty_code": {"code": None}}

