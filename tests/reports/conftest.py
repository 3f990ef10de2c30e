"""Real cells from the test lab, shared by every report module's tests (run once per session)."""

from __future__ import annotations

from dataclasses import replace

import pytest


@pytest.fixture(scope="session")
def cells(lab_runner, lab_scenarios, lab_clients):
    """Real cells from the test lab (which journals credentials in clear): every kind of outcome, one failure."""
    run = lab_runner.run_cell
    s = lab_scenarios
    mislabelled = replace(lab_clients["curl-pinned"], name="mislabelled", policy="unpinned")
    return [
        run(s["direct"], "beam"),
        run(s["inspected-continue"], "beam"),
        run(s["inspected-continue"], "attended"),
        run(s["inspected-continue"], lab_clients["curl-pinned"]),
        run(s["inspected-continue"], lab_clients["curl-unpinned"]),
        run(s["inspected-untrusted-ca"], lab_clients["curl-pinned"]),
        run(s["exception-wildcard"], lab_clients["curl-pinned"]),
        run(s["inspected-continue"], mislabelled),
    ]
