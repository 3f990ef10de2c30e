"""Whole ``harness`` runs on compose labs of their own: a vendor profile, unconstrained CAs (issue 16).

An engine holds one compose lab, and each test here starts its own (through the
CLI, as a person does), which would replace a session's compose lab: run this
module alone, ``./lab test --lab=compose tests/lab/test_compose_runs.py``; in a
session that also uses the shared lab its tests skip, saying so.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cryptography import x509

from harness.model.vendors import get_vendor
from tests.clihelpers import ROOT

pytestmark = pytest.mark.compose


@pytest.fixture
def own_compose_labs(request, lab_backend):
    if lab_backend != "compose":
        pytest.skip("starts compose labs: needs --lab=compose")
    shared = [i for i in request.session.items if "tls_lab" in i.fixturenames and i.module is not request.module]
    if shared:
        pytest.skip("starts its own compose labs, which would replace this session's; run this module alone")


def harness(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_a_vendor_run_on_compose_forges_as_the_profile_says(own_compose_labs, tmp_path):
    vendor = get_vendor("zscaler")
    proc = harness("run", "--lab", "compose", "--vendor", vendor.name, "--tag", "vendors", "--json",
                   "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["failed"] == 0 and doc["passed"] > 0 and doc["lab"]["vendors"][vendor.name]["vendor"] == vendor.name
    issuers = {r["forged_issuer"] for c in doc["cells"] for r in c["proxy_records"]
               if r.get("kind", "connection") == "connection" and r.get("action") == "intercepted"}
    # Negative: the org CA's name (the default lab's issuer) appears nowhere.
    assert issuers == {vendor.issuing_cn}


def test_up_without_name_constraints_on_compose(own_compose_labs, tmp_path):
    proc = harness("up", "--lab", "compose", "--detach", "--no-name-constraints", "--state-dir", str(tmp_path))
    try:
        assert proc.returncode == 0, proc.stderr[-3000:]
        lab = json.loads((tmp_path / "lab.json").read_text())
        pem = subprocess.run(["docker", "exec", lab["containers"]["proxy"], "cat", lab["pki"]["org_ca"]],
                             capture_output=True, timeout=60, check=True).stdout
        org = x509.load_pem_x509_certificate(pem)
        assert x509.NameConstraints not in [type(e.value) for e in org.extensions]
        # The lab works: a forged connection through it is judged as on the local lab.
        run = harness("run", "--lab", "compose", "--no-name-constraints", "--scenario", "inspected-continue",
                      "--state-dir", str(tmp_path / "run"))
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    finally:
        harness("down", "--lab", "compose", "--state-dir", str(tmp_path), timeout=300)
