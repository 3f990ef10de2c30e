"""harness.lab.local: LocalLab built from LabOptions, started (adopting an early proxy) and stopped.
(Faults on a running LocalLab — restarts, CA rotation, dying processes — are in tests/lab/test_faults.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.lab.early import early_proxy
from harness.lab.identity import ProcessRecord, carries, matches
from harness.lab.local import LocalLab
from harness.lab.lock import is_locked, read_holder
from harness.lab.options import LabOptions
from harness.lab.process import wait_gone
from harness.model.policy import load_policies
from tests.clihelpers import ROOT


def test_construction_takes_the_options_and_starts_nothing(tmp_path):
    policies = {k: v for k, v in load_policies().items() if k in ("inspect", "tunnel")}
    lab = LocalLab(LabOptions(state_dir=tmp_path / "s", lanes=3, show_secrets=True), policies=policies)
    assert (lab.state_dir, lab.lanes, lab.show_secrets, sorted(lab.policies)) == (
        tmp_path / "s", 3, True, ["inspect", "tunnel"])
    assert lab.children == [] and not (tmp_path / "s").exists()


def test_start_adopts_the_early_proxy_serves_and_stops(tmp_path):
    options = LabOptions(state_dir=tmp_path, lanes=2)
    policies = {k: v for k, v in load_policies().items() if k in ("inspect", "tunnel")}
    with early_proxy(options) as child:
        with LocalLab(options, policies=policies, proxy_child=child) as info:
            assert info.pids["proxy"] == child.pid  # adopted, not a second proxy
            assert sorted(info.proxies) == ["inspect", "tunnel"] and all(len(u) == 2 for u in info.proxies.values())
            assert len(info.server_connect) == 2 and json.loads((tmp_path / "proxy.json").read_text())
            with urllib.request.urlopen(f"{info.proxy_admin}/journal", timeout=10) as r:
                assert r.status == 200
            pids = list(info.pids.values())
    assert wait_gone(pids, 10), "LocalLab left a process behind"


def small_lab(state: Path) -> LocalLab:
    policies = load_policies()
    return LocalLab(LabOptions(state_dir=state, lanes=1), policies={n: policies[n] for n in ("inspect", "tunnel")})


def test_a_local_lab_locks_its_directory_and_marks_its_processes(tmp_path):
    state = tmp_path / "lab"
    lab = small_lab(state)
    with lab as info:
        assert is_locked(state) and read_holder(state).token == info.token
        assert set(info.processes) == {"proxy", "server"}
        for record in info.processes.values():
            assert matches(record, token=info.token) and carries(record.pid, token=info.token)
        second = subprocess.run([sys.executable, "-m", "harness", "up", "--lanes", "1", "--state-dir", str(state)],
                                capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)
        assert second.returncode == 2 and "is in use" in second.stderr and "Traceback" not in second.stderr
        old = info.processes["proxy"]
        lab.restart_proxy()  # a restarted process is the lab's as well, under its new pid
        assert info.processes["proxy"] != old and matches(info.processes["proxy"], token=info.token)
        assert info.processes["proxy"] == ProcessRecord.of(lab.children[1].pid)
    assert not is_locked(state)


def test_two_labs_of_one_process_cannot_share_a_directory(tmp_path):
    state = tmp_path / "lab"
    with small_lab(state):
        with pytest.raises(UsageError, match="a lab of this process already runs in"):
            small_lab(state).start()
        assert is_locked(state)  # the refused one released nothing of the running one's
    with small_lab(state):  # and once stopped, the directory is free again
        pass


def test_a_lab_that_fails_to_start_lets_go_of_the_directory(tmp_path):
    state = tmp_path / "lab"
    lab = LocalLab(LabOptions(state_dir=state, lanes=1, python="/nonexistent/python"),
                   policies={"inspect": load_policies()["inspect"]})
    with pytest.raises(FileNotFoundError):  # (LabOptions.python is for programs, not people)
        lab.start()
    assert not is_locked(state)
