"""harness.lab.early: the proxy spawned before the lab, waiting at its gate, stopped if nothing adopts it."""

import pytest

from harness.lab.early import PROXY_CONFIG, early_proxy, prespawn_proxy, proxy_command
from harness.lab.options import LabOptions
from harness.lab.process import stop, wait_gone


def test_proxy_command_reads_the_config():
    assert proxy_command("/s/proxy.json", "/usr/bin/python3") == [
        "/usr/bin/python3", "-m", "harness.proxy", "--config", "/s/proxy.json"]


def test_prespawn_waits_at_the_gate_and_removes_a_stale_config(tmp_path):
    (tmp_path / PROXY_CONFIG).write_text("{}")  # a previous lab's
    child = prespawn_proxy(tmp_path, token="test-token")
    try:
        assert child.proc.poll() is None and child.proc.stdin is not None  # alive, gate closed
        assert not (tmp_path / PROXY_CONFIG).exists()
        assert child.log == tmp_path / "logs" / "proxy.log"
    finally:
        stop([child])
    assert wait_gone([child.pid], 10)


def test_early_proxy_is_stopped_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError, match="the lab failed"):
        with early_proxy(LabOptions(state_dir=tmp_path, lanes=1)) as child:
            assert child is not None and child.proc.poll() is None
            pid = child.pid
            raise RuntimeError("the lab failed")
    assert wait_gone([pid], 10), "the prespawned proxy outlived the failed block"


def test_no_early_proxy_for_compose(tmp_path):
    with early_proxy(LabOptions(backend="compose", state_dir=tmp_path, lanes=1)) as child:
        assert child is None
    assert not (tmp_path / "logs").exists()
