"""Tests for harness.matrix.runner: the lanes a runner may borrow."""

import pytest

from harness.lab.info import LabInfo
from harness.matrix.runner import MatrixRunner


def lab(lanes: int) -> LabInfo:
    return LabInfo(backend="local", state_dir="/nonexistent", lanes=lanes, proxies={}, server_connect=[],
                   proxy_admin="http://127.0.0.1:9", server_admin="http://127.0.0.1:9", pki={}, org_issuer_cn="x")


def test_a_runner_borrows_the_lanes_it_is_given_and_only_the_labs():
    assert MatrixRunner(lab(4)).lanes == (0, 1, 2, 3)
    assert MatrixRunner(lab(4), lanes=range(2, 4)).lanes == (2, 3)
    for bad in ((4,), (), (-1,)):
        with pytest.raises(ValueError, match=r"are not lanes of this lab \(0-3\)"):
            MatrixRunner(lab(4), lanes=bad)


def test_every_cell_runs_on_the_runners_own_lanes(tls_lab, lab_scenarios):
    runner = MatrixRunner(tls_lab, lanes=[tls_lab.lanes - 1])
    cells = runner.run([lab_scenarios["inspected-continue"], lab_scenarios["exception-wildcard"]])
    assert len(cells) == 4 and all(c.passed for c in cells)
    assert {c.lane for c in cells} == {tls_lab.lanes - 1}
