"""The whole run as one JSON document: what ``harness run --json`` prints and every report file renders."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from harness.matrix.cell import CellResult
from harness.reports.cells import cell_document

# A cell that was not run, and why: (scenario, client, reason).
NotRun = tuple[str, str, str]


def to_document(results: list[CellResult], *, lab: dict | None = None, seconds: float | None = None,
                show_secrets: bool = False, not_run: Iterable[NotRun] = ()) -> dict:
    """The whole run as one JSON-able document; credentials redacted unless ``show_secrets``.

    ``not_run`` lists the cells the run left out with the reason (:func:`left_out`):
    reports show them as skipped, never as passed.
    """
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
        "seconds": round(seconds, 3) if seconds is not None else None,
        "secrets_shown": show_secrets,
        "lab": lab or {},
        "cells": [cell_document(r, show_secrets=show_secrets) for r in results],
        "not_run": [{"scenario": s, "client": c, "reason": why} for s, c, why in not_run],
    }


def to_json(results: list[CellResult], **kwargs) -> str:
    """:func:`to_document` as indented JSON text; takes the same keyword arguments."""
    return json.dumps(to_document(results, **kwargs), indent=2)


def left_out(skipped: dict[str, str], undetermined: Iterable[tuple[str, str]], scenarios, clients=None) -> list[NotRun]:
    """The cells a run did not run, with the reason, from :class:`harness.matrix.session.MatrixRun`'s
    ``skipped`` (scenario -> why its lab could not run it) and ``undetermined`` ((scenario, client)
    pairs whose outcome cannot be derived).

    A skipped scenario stands for the cells it would have had: one per client in ``clients``
    (reference names or client definitions, as given to the run), else per client the scenario expects.
    """
    cells: list[NotRun] = []
    rows = {s.name: s for s in scenarios}
    for key, why in skipped.items():  # ROW, or VENDOR/ROW in a vendor run
        s = rows.get(key) or rows.get(key.partition("/")[2])
        if s is not None:
            names = [getattr(c, "name", c) for c in clients] if clients else list(s.expect)
            cells += [(key, name, why) for name in names]
    cells += [(s, c, f"the lab cannot tell what {c} must do in {s}; "
                     f"set expect = {{ \"{s}\" = \"OUTCOME\" }} in its definition.") for s, c in undetermined]
    return cells
