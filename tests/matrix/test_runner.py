"""harness.matrix.runner: which rows a lab can run (unavailable), and the MatrixRunner's refusal to guess."""

import shutil

import pytest

from harness.errors import UsageError
from harness.lab.info import LabInfo, Transparent
from harness.matrix.runner import unavailable
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
    assert unavailable(row, lab()) == "the compose lab serves no hostile site 'expired' (the local lab does)."
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
