"""'harness up' and 'harness down' (harness.cli.up) as a user runs them: real subprocesses, real
processes to find and stop, fixed ports, nothing left behind."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.clihelpers import assert_one_sentence_error, harness


def test_up_detach_then_down_leaves_no_process(tmp_path):
    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    assert "inspection CA" in proc.stdout and "curl --proxy" in proc.stdout
    info = json.loads((tmp_path / "lab.json").read_text())
    pids = list(info["pids"].values())
    assert len(pids) == 3 and all(_alive(p) for p in pids)
    # The lab really serves: Beam refuses through the inspect listener.
    beam = harness("beam", "--proxy", info["proxies"]["inspect"][0], "--trust", info["pki"]["trust_public_org"],
                   "--pins", info["pki"]["pins_file"], "--once")
    assert beam.returncode == 5, beam.stderr
    down = harness("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0
    assert not any(_alive(p) for p in pids)
    assert not (tmp_path / "lab.json").exists()
    assert harness("down", "--state-dir", str(tmp_path)).returncode == 0  # idempotent


def test_killed_up_takes_its_children_along(tmp_path):
    """A crashed 'harness up' leaves no proxy or server behind (PR_SET_PDEATHSIG)."""
    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    info = json.loads((tmp_path / "lab.json").read_text())
    os.kill(info["pids"]["up"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(info["pids"][k]) for k in ("proxy", "server")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(info["pids"][k]) for k in ("proxy", "server"))
    assert harness("down", "--state-dir", str(tmp_path)).returncode == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_crashed_proxy_stops_the_lab_and_down_leaves_nothing(tmp_path):
    """The proxy dies (SIGKILL): 'harness up' notices, stops the server and removes lab.json;
    'harness down' afterwards has nothing left to stop."""
    from harness.lab.process import wait_gone

    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    pids = json.loads((tmp_path / "lab.json").read_text())["pids"]
    os.kill(pids["proxy"], signal.SIGKILL)
    assert wait_gone([pids["up"], pids["server"]], 15), "the lab did not stop after its proxy crashed"
    assert not (tmp_path / "lab.json").exists()
    assert "a lab process exited unexpectedly" in (tmp_path / "up.log").read_text()
    down = harness("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0 and "No lab is running" in down.stdout
    assert not any(_alive(p) for p in pids.values())


def test_down_after_a_crash_stops_a_hung_proxy(tmp_path):
    """'harness up' is killed while the proxy hangs (SIGSTOP): the server goes with its parent,
    the stopped proxy cannot act on that signal; 'harness down' still ends it, promptly."""
    from harness.lab.process import wait_gone

    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    pids = json.loads((tmp_path / "lab.json").read_text())["pids"]
    os.kill(pids["proxy"], signal.SIGSTOP)
    os.kill(pids["up"], signal.SIGKILL)
    assert wait_gone([pids["up"], pids["server"]], 10)
    assert _alive(pids["proxy"])  # stopped, with the parent-death SIGTERM pending
    start = time.monotonic()
    down = harness("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    assert "killed" not in down.stderr  # SIGTERM (with SIGCONT) was enough
    assert not any(_alive(p) for p in pids.values())
    assert time.monotonic() - start < 5


def test_down_never_signals_a_process_that_is_not_the_labs(tmp_path):
    """A stale lab.json whose pids now belong to someone else: 'harness down' leaves them alone."""
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        info = {"backend": "local", "state_dir": str(tmp_path), "lanes": 1, "proxies": {}, "server_connect": [],
                "proxy_admin": "", "server_admin": "", "pki": {}, "org_issuer_cn": "",
                "pids": {"up": bystander.pid, "proxy": bystander.pid, "server": bystander.pid}}
        (tmp_path / "lab.json").write_text(json.dumps(info))
        down = harness("down", "--state-dir", str(tmp_path))
        assert down.returncode == 0, down.stderr
        assert bystander.poll() is None, "harness down signalled an unrelated process"
        assert not (tmp_path / "lab.json").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_up_serves_the_everyday_policies_unless_asked(tmp_path):
    """'harness up' starts listeners for the policies of the default matrix (fast); --policies picks others."""
    proc = harness("up", "--detach", "--lanes", "1", "--policies", "inspect,tunnel", "--state-dir", str(tmp_path))
    try:
        assert proc.returncode == 0, proc.stderr
        info = json.loads((tmp_path / "lab.json").read_text())
        assert sorted(info["proxies"]) == ["inspect", "tunnel"]
        # The proxy it started before knowing its configuration read the one file the lab wrote.
        argv = Path(f"/proc/{info['pids']['proxy']}/cmdline").read_bytes().decode().split("\0")
        assert argv[argv.index("--config") + 1] == str(tmp_path / "proxy.json") and "--start-gate" in argv
        assert json.loads((tmp_path / "proxy.json").read_text())["confdir"].endswith("mitmproxy")
    finally:
        assert harness("down", "--state-dir", str(tmp_path)).returncode == 0
    bad = harness("up", "--policies", "inspect,nope", "--state-dir", str(tmp_path / "b"))
    assert_one_sentence_error(bad, 2)
    assert "unknown policy 'nope'" in bad.stderr
    assert not [p for p in _lab_pids_under(tmp_path / "b")], "a prespawned proxy was left behind"


def _lab_pids_under(state_dir):
    """Processes whose command line mentions ``state_dir`` (e.g. a prespawned proxy)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(state_dir) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return [p for p in pids if _alive(p)]


def test_base_port_already_in_use(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = harness("up", "--base-port", str(port), "--lanes", "1", "--state-dir", str(tmp_path))
    assert_one_sentence_error(proc, 1)
    assert (f"port {port} on 127.0.0.1 (proxy listener tunnel lane 0) is already in use; "
            "stop what uses it or choose another --base-port.") in proc.stderr


@pytest.mark.parametrize("value,says", [("70000", "is not a port number"), ("http", "is not a port number"),
                                        ("65530", "is outside 1-65535; choose a lower --base-port")])
def test_base_port_out_of_range(tmp_path, value, says):
    proc = harness("up", "--base-port", value, "--lanes", "2", "--state-dir", str(tmp_path))
    assert_one_sentence_error(proc, 2)
    assert says in proc.stderr


def free_port_range(count: int) -> int:
    """A base port below the ephemeral range with ``count`` free ports after it."""
    for base in range(20000, 32000, 97):
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no free range of ports below 32000")


@pytest.mark.slow
def test_base_port_fixes_every_port(tmp_path):
    from harness.model.policy import load_policies

    policies = list(load_policies())
    base = free_port_range(len(policies) + 3 + 40)  # + the hostile sites' ports, which follow
    proc = harness("up", "--detach", "--policies", "all", "--base-port", str(base), "--lanes", "1",
                   "--state-dir", str(tmp_path))
    try:
        assert proc.returncode == 0, proc.stderr
        info = json.loads((tmp_path / "lab.json").read_text())
        assert [info["proxies"][p][0] for p in policies] == [f"http://127.0.0.1:{base + i}" for i in range(len(policies))]
        assert info["server_connect"] == [f"127.0.0.1:{base + len(policies)}"]
        assert info["proxy_admin"] == f"http://127.0.0.1:{base + len(policies) + 1}"
        assert info["server_admin"] == f"http://127.0.0.1:{base + len(policies) + 2}"
        # A second lab on the same ports is refused with the sentence, not a proxy log line.
        again = harness("up", "--base-port", str(base), "--lanes", "1", "--state-dir", str(tmp_path / "second"))
        assert_one_sentence_error(again, 1)
        assert "already in use" in again.stderr
    finally:
        assert harness("down", "--state-dir", str(tmp_path)).returncode == 0
