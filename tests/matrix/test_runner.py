"""harness.matrix.runner: which rows a lab can run (unavailable), and the MatrixRunner's refusal to guess."""

import shutil

import pytest

from harness.errors import UsageError
from harness.lab.info import LabInfo, Transparent
from harness.matrix.runner import MatrixRunner, unavailable
from harness.model.scenarios import Scenario


def lab(**changes) -> LabInfo:
    fields = dict(backend="compose", state_dir="/s", lanes=1, proxies={}, server_connect=[], proxy_admin="",
                  server_admin="", pki={}, org_issuer_cn="")
    return LabInfo(**{**fields, **changes})


def test_a_transparent_row_needs_the_gateway():
    row = Scenario(name="t", network="transparent", expect={"beam": "refused"}, policy="inspect")
    assert unavailable(row, lab()) == "this lab has no transparent gateway."
    assert unavailable(row, lab(transparent_unavailable="needs root.")) == "needs root."
    assert unavailable(row, lab(transparent=Transparent(gateways={"inspect": ["10.0.0.1:443"]}))) is None


def test_a_hostile_upstream_row_needs_its_site():
    row = Scenario(name="h", network="proxy", expect={"beam": "tls-error"}, policy="tunnel-expired")
    assert unavailable(row, lab()) == (
        "the compose lab serves no hostile site 'expired' (start it with the policy 'tunnel-expired').")
    assert unavailable(row, lab(sites={"expired": ["127.0.0.1:9300"]})) is None
    assert unavailable(Scenario(name="d", network="direct", expect={"beam": "connected"}), lab()) is None


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)")
def test_undetermined_cells_are_listed_not_guessed(lab_runner, lab_scenarios, lab_clients):
    unpinned, row = lab_clients["curl-unpinned"], lab_scenarios["untrusted-upstream"]
    assert lab_runner.run([row], [unpinned]) == []
    assert lab_runner.undetermined == [("untrusted-upstream", "curl-unpinned")]
    with pytest.raises(UsageError, match="cannot tell what curl-unpinned \\(unpinned\\) must do in untrusted-upstream"):
        lab_runner.run_cell(row, unpinned)
    assert lab_runner.run_cell(row, unpinned, expect="blocked").passed  # the proxy's block page


def test_a_runner_borrows_the_lanes_it_is_given_and_only_the_labs():
    assert MatrixRunner(lab_of(4)).lanes == (0, 1, 2, 3)
    assert MatrixRunner(lab_of(4), lanes=range(2, 4)).lanes == (2, 3)
    for bad in ((4,), (), (-1,)):
        with pytest.raises(ValueError, match=r"are not lanes of this lab \(0-3\)"):
            MatrixRunner(lab_of(4), lanes=bad)


def test_every_cell_runs_on_the_runners_own_lanes(tls_lab, lab_scenarios):
    runner = MatrixRunner(tls_lab, lanes=[tls_lab.lanes - 1])
    cells = runner.run([lab_scenarios["inspected-continue"], lab_scenarios["exception-wildcard"]])
    assert len(cells) == 4 and all(c.passed for c in cells)
    assert {c.lane for c in cells} == {tls_lab.lanes - 1}


def lab_of(lanes: int) -> LabInfo:
    return LabInfo(backend="local", state_dir="/nonexistent", lanes=lanes, proxies={}, server_connect=[],
                   proxy_admin="http://127.0.0.1:9", server_admin="http://127.0.0.1:9", pki={}, org_issuer_cn="x")


def test_an_ip_exception_under_a_destination_matching_vendor_is_local_only():
    """On compose the server has a container address, not the 127.0.0.1 the exception-ip policy names
    (CI's compose vendor run: palo-alto and fortinet inspected what the local lab passes through)."""
    from harness.matrix.runner import COMPOSE_SERVER_ADDRESS
    from harness.model.vendors import get_vendor

    row = Scenario(name="exception-ip", network="proxy", expect={"beam": "refused"}, policy="exception-ip")
    assert unavailable(row, lab(), vendor=get_vendor("palo-alto")) == COMPOSE_SERVER_ADDRESS
    assert unavailable(row, lab(), vendor=get_vendor("zscaler")) is None  # matches names: runs, and is inspected
    assert unavailable(row, lab(backend="local"), vendor=get_vendor("palo-alto")) is None
    named = Scenario(name="w", network="proxy", expect={"beam": "connected"}, policy="exception-wildcard")
    assert unavailable(named, lab(), vendor=get_vendor("palo-alto")) is None
