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


def test_a_lost_port_race_is_told_from_other_start_failures(tmp_path):
    from harness.errors import LabStartError
    from harness.lab.open import lost_port_race

    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "proxy.log").write_text("error while attempting to bind: address already in use\n")
    assert lost_port_race(LabStartError("the inspection proxy failed to start"), tmp_path)
    (tmp_path / "logs" / "proxy.log").write_text("ModuleNotFoundError: No module named 'x'\n")
    assert not lost_port_race(LabStartError("the inspection proxy failed to start"), tmp_path)


def test_start_lab_starts_and_the_caller_stops(tmp_path):
    from harness.lab.open import start_lab
    from harness.lab.options import LabOptions
    from harness.net.journal import JournalReader

    lab, info = start_lab(LabOptions(state_dir=tmp_path / "s", lanes=1))
    try:
        assert JournalReader(info.proxy_admin).healthy(timeout=5)
    finally:
        lab.stop()
