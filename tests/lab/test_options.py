"""harness.lab.options: one LabOptions for the CLI and the plugin; the checks across options say one sentence."""

import re
from pathlib import Path

import pytest

from harness.errors import EnvironmentProblem, UnknownNameError, UsageError
from harness.lab.options import DEFAULT_ORG_CN, LabOptions
from harness.model.vendors import get_vendor


def test_defaults_are_harness_up_defaults(monkeypatch):
    monkeypatch.delenv("HARNESS_STATE_DIR", raising=False)
    o = LabOptions()
    assert (o.backend, o.state_dir, o.lanes, o.transparent, o.vendor) == ("local", Path(".lab"), 4, False, None)
    assert o.org_common_name == DEFAULT_ORG_CN and o.name_constraints


def test_keyword_only_frozen_and_readable():
    with pytest.raises(TypeError):
        LabOptions("local")  # positional use is the point: it must fail
    o = LabOptions(state_dir="x", transparent_policies=["inspect"])
    assert o.state_dir == Path("x") and o.transparent_policies == ("inspect",)
    with pytest.raises(AttributeError):
        o.lanes = 2
    assert "lanes=4" in repr(o)


@pytest.mark.parametrize("kwargs,error,says", [
    ({"lanes": 0}, EnvironmentProblem, "at least one lane"),
    ({"lanes": True}, EnvironmentProblem, "at least one lane"),
    ({"backend": "k8s"}, UnknownNameError, "unknown lab backend 'k8s'"),
    ({"backend": "compose", "base_port": 9000}, UsageError, "--base-port applies to the local lab only"),
    ({"vendor": "zscaler", "org_common_name": "Mine"}, UsageError, "names the inspection CA itself"),
    ({"backend": "compose", "listen": "192.168.1.20"}, UsageError, "--listen applies to the local lab"),
])
def test_bad_combinations_are_one_sentence(kwargs, error, says):
    if kwargs.get("vendor"):
        kwargs = {**kwargs, "vendor": get_vendor(kwargs["vendor"])}
    with pytest.raises(error, match=says):
        LabOptions(**kwargs)


def test_good_combinations_pass():
    LabOptions(vendor=get_vendor("zscaler"))
    LabOptions(backend="compose", transparent=None, transparent_policies=("inspect",))
    LabOptions(base_port=20000, lanes=1)
    # Both backends: a vendor profile, unconstrained CAs (issue 16).
    LabOptions(backend="compose", vendor=get_vendor("zscaler"), name_constraints=False)


# -- live upstream and evidence --------------------------------------------------------------

@pytest.mark.parametrize("kwargs,error,says", [
    ({"upstream": "internet"}, UnknownNameError, "internet"),
    ({"upstream_trust": Path("ca.pem")}, UsageError, "--upstream-trust is the CA bundle for real servers; it goes "
                                                      "with --upstream live"),
    ({"backend": "compose", "web": True}, UsageError, "--web runs on the local lab"),
    ({"backend": "compose", "upstream": "live"}, UsageError, "--upstream live runs on the local lab"),
    ({"har": Path("x"), "save_flows": Path("x")}, UsageError, "need one file each"),
])
def test_evidence_options_that_cannot_go_together(kwargs, error, says):
    with pytest.raises(error, match=re.escape(says) if error is UsageError else says):
        LabOptions(**kwargs)


def test_evidence_defaults_are_off():
    o = LabOptions()
    assert (o.upstream, o.upstream_trust, o.web, o.save_flows, o.har, o.keylog, o.pcap) == (
        "mock", None, False, None, None, None, None)
