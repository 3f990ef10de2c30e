"""harness.lab.open: open_lab picks the backend and the policies; nothing starts before 'with'."""

from harness.lab.compose import ComposeLab
from harness.lab.local import LocalLab
from harness.lab.open import open_lab
from harness.lab.options import LabOptions
from harness.model.policy import load_policies


def test_local_lab_serves_every_policy_by_default(tmp_path):
    lab = open_lab(LabOptions(state_dir=tmp_path, lanes=1))
    assert isinstance(lab, LocalLab) and set(lab.policies) == set(load_policies())
    assert lab.children == []  # not started


def test_local_lab_serves_the_policies_asked_for(tmp_path):
    policies = {k: v for k, v in load_policies().items() if k in ("inspect", "tunnel")}
    lab = open_lab(LabOptions(state_dir=tmp_path, lanes=1), policies=policies)
    assert sorted(lab.policies) == ["inspect", "tunnel"]


def test_compose_lab_always_serves_every_policy(tmp_path):
    lab = open_lab(LabOptions(backend="compose", state_dir=tmp_path, lanes=1),
                   policies={"inspect": load_policies()["inspect"]})
    assert isinstance(lab, ComposeLab) and set(lab.policies) == set(load_policies())
