"""harness.lab.local: LocalLab built from LabOptions, started (adopting an early proxy) and stopped.
(Faults on a running LocalLab — restarts, CA rotation, dying processes — are in tests/lab/test_faults.py.)"""

import json
import urllib.request

from harness.lab.early import early_proxy
from harness.lab.local import LocalLab
from harness.lab.options import LabOptions
from harness.lab.process import wait_gone
from harness.model.policy import load_policies


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
