"""The whole run as one JSON document: what ``harness run --json`` prints and every report file renders."""

from __future__ import annotations

import json
import time

from harness.matrix.cell import CellResult
from harness.reports.cells import cell_document


def to_document(results: list[CellResult], *, lab: dict | None = None, seconds: float | None = None,
                show_secrets: bool = False) -> dict:
    """The whole run as one JSON-able document; credentials redacted unless ``show_secrets``."""
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
        "seconds": round(seconds, 3) if seconds is not None else None,
        "secrets_shown": show_secrets,
        "lab": lab or {},
        "cells": [cell_document(r, show_secrets=show_secrets) for r in results],
    }


def to_json(results: list[CellResult], **kwargs) -> str:
    """:func:`to_document` as indented JSON text; takes the same keyword arguments."""
    return json.dumps(to_document(results, **kwargs), indent=2)
