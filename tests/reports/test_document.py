"""The run as one JSON document: credentials redacted unless asked for."""

from __future__ import annotations

import json

from harness.reports.document import to_document


def test_document_redacts_unless_asked(cells):
    unpinned = cells[4]
    assert unpinned.secret in json.dumps(unpinned.proxy_records)  # the lab journals it in clear ...
    assert "authorization" in unpinned.verdict.observation.credentials_at_proxy
    redacted = json.dumps(to_document(cells))
    assert not any(c.secret in redacted for c in cells)  # ... the report does not
    assert to_document(cells)["secrets_shown"] is False
    shown = json.dumps(to_document(cells, show_secrets=True))
    assert unpinned.secret in shown
