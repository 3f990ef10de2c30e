"""'harness up' and 'harness down' (harness.cli.up) as a user runs them: real subprocesses, real
processes to find and stop, fixed ports, nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.lab.identity import scan, start_time, state_marker
from harness.lab.process import pid_alive, wait_gone
from harness.net.journal import JournalReader
from tests.clihelpers import ROOT, alive, assert_one_sentence_error, harness, lab_pids_under

PY = sys.executable


def test_up_detach_then_down_leaves_no_process(tmp_path):
    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    assert "inspection CA" in proc.stdout and "curl --proxy" in proc.stdout
    info = json.loads((tmp_path / "lab.json").read_text())
    pids = [p["pid"] for p in info["processes"].values()]
    assert len(pids) == 3 and all(alive(p) for p in pids)
    # The lab really serves: Beam refuses through the inspect listener.
    beam = harness("beam", "--proxy", info["proxies"]["inspect"][0], "--trust", info["pki"]["trust_public_org"],
                   "--pins", info["pki"]["pins_file"], "--once")
    assert beam.returncode == 5, beam.stderr
    down = harness("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0
    assert not any(alive(p) for p in pids)
    assert not (tmp_path / "lab.json").exists()
    assert harness("down", "--state-dir", str(tmp_path)).returncode == 0  # idempotent


def test_killed_up_takes_its_children_along(tmp_path):
    """A crashed 'harness up' leaves no proxy or server behind (PR_SET_PDEATHSIG)."""
    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    pids = _pids(tmp_path)
    os.kill(pids["up"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(alive(pids[k]) for k in ("proxy", "server")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pids[k]) for k in ("proxy", "server"))
    assert harness("down", "--state-dir", str(tmp_path)).returncode == 0


def test_crashed_proxy_stops_the_lab_and_down_leaves_nothing(tmp_path):
    """The proxy dies (SIGKILL): 'harness up' notices, stops the server and removes lab.json;
    'harness down' afterwards has nothing left to stop."""
    from harness.lab.process import wait_gone

    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    pids = _pids(tmp_path)
    os.kill(pids["proxy"], signal.SIGKILL)
    assert wait_gone([pids["up"], pids["server"]], 15), "the lab did not stop after its proxy crashed"
    assert not (tmp_path / "lab.json").exists()
    assert "a lab process exited unexpectedly" in (tmp_path / "up.log").read_text()
    down = harness("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0 and "No lab is running" in down.stdout
    assert not any(alive(p) for p in pids.values())


def test_down_after_a_crash_stops_a_hung_proxy(tmp_path):
    """'harness up' is killed while the proxy hangs (SIGSTOP): the server goes with its parent,
    the stopped proxy cannot act on that signal; 'harness down' still ends it, promptly."""
    from harness.lab.process import wait_gone

    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    pids = _pids(tmp_path)
    os.kill(pids["proxy"], signal.SIGSTOP)
    os.kill(pids["up"], signal.SIGKILL)
    assert wait_gone([pids["up"], pids["server"]], 10)
    assert alive(pids["proxy"])  # stopped, with the parent-death SIGTERM pending
    start = time.monotonic()
    down = harness("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    assert "killed" not in down.stderr  # SIGTERM (with SIGCONT) was enough
    assert not any(alive(p) for p in pids.values())
    assert time.monotonic() - start < 5


def test_down_never_signals_a_process_that_is_not_the_labs(tmp_path):
    """A stale lab.json whose pids now belong to someone else: 'harness down' leaves them alone."""
    from harness.lab.identity import start_time

    bystander = subprocess.Popen(["sleep", "30"])
    try:
        info = {"backend": "local", "state_dir": str(tmp_path), "lanes": 1, "proxies": {}, "server_connect": [],
                "proxy_admin": "", "server_admin": "", "pki": {}, "org_issuer_cn": "",
                "processes": {role: {"pid": bystander.pid, "start": start_time(bystander.pid)}
                              for role in ("up", "proxy", "server")}, "token": "0" * 32}
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
        argv = Path(f"/proc/{info['processes']['proxy']['pid']}/cmdline").read_bytes().decode().split("\0")
        assert argv[argv.index("--config") + 1] == str(tmp_path / "proxy.json") and "--start-gate" in argv
        assert json.loads((tmp_path / "proxy.json").read_text())["confdir"].endswith("mitmproxy")
    finally:
        assert harness("down", "--state-dir", str(tmp_path)).returncode == 0
    bad = harness("up", "--policies", "inspect,nope", "--state-dir", str(tmp_path / "b"))
    assert_one_sentence_error(bad, 2)
    assert "unknown policy 'nope'" in bad.stderr
    assert not [p for p in lab_pids_under(tmp_path / "b")], "a prespawned proxy was left behind"


def test_base_port_already_in_use(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = harness("up", "--base-port", str(port), "--lanes", "1", "--state-dir", str(tmp_path))
    assert_one_sentence_error(proc, 2)
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
        assert_one_sentence_error(again, 2)
        assert "already in use" in again.stderr
    finally:
        assert harness("down", "--state-dir", str(tmp_path)).returncode == 0


def _pids(state_dir) -> dict[str, int]:
    """The lab's pids by role, from lab.json."""
    return {role: p["pid"] for role, p in json.loads((state_dir / "lab.json").read_text())["processes"].items()}


def one_sentence(proc, code) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def lab_pids(state: Path) -> dict[str, int]:
    return {role: p["pid"] for role, p in json.loads((state / "lab.json").read_text())["processes"].items()}


def marked(state: Path) -> set[int]:
    """Every running process that carries a lab token for ``state``."""
    return {r.pid for r in scan(state=state_marker(state))}


@pytest.fixture
def up(tmp_path):
    """``up(state)`` starts a detached lab there (one lane); every lab is stopped after the test."""
    states: list[Path] = []

    def start(state: Path | None = None, *extra) -> subprocess.CompletedProcess:
        state = state or tmp_path / "state"
        states.append(state)
        return harness("up", "--detach", "--lanes", "1", "--state-dir", str(state), *extra)

    yield start
    for state in states:
        if state.is_dir():
            harness("down", "--state-dir", str(state))
        for pid in marked(state):  # whatever a failed test left: never leave a lab running
            os.kill(pid, 9)


def test_a_second_up_in_the_same_directory_exits_2_and_changes_nothing(up, tmp_path):
    state = tmp_path / "state"
    assert up(state).returncode == 0
    before = {name: (state / name).read_bytes() for name in ("lab.json", "pki/org-ca.pem", "pki/server.pem")}
    pids = lab_pids(state)
    for second in (up(state), harness("up", "--lanes", "1", "--state-dir", str(state))):  # detached and foreground
        line = one_sentence(second, 2)
        assert f"pid {pids['up']}" in line and "started" in line
        assert f"'harness down --state-dir {state}'" in line and "--replace" in line
    # The running lab is untouched: same files, same processes, still serving.
    assert {name: (state / name).read_bytes() for name in before} == before
    assert all(pid_alive(p) for p in pids.values()) and marked(state) == set(pids.values())
    info = json.loads((state / "lab.json").read_text())
    assert JournalReader(info["proxy_admin"]).healthy(timeout=5)
    down = harness("down", "--state-dir", str(state))
    assert down.returncode == 0 and "stopped" in down.stdout
    assert wait_gone(list(pids.values()), 5) and marked(state) == set()


def test_two_ups_at_the_same_instant_one_wins_the_other_says_why_and_leaves_nothing(tmp_path):
    state = tmp_path / "state"
    r, w = os.pipe()
    # Both interpreters start, then wait at the pipe; one write releases them together.
    gate = f"import os, runpy, sys; os.read({r}, 1); sys.argv = ['harness', *sys.argv[1:]]; runpy.run_module('harness', run_name='__main__')"
    argv = [PY, "-c", gate, "up", "--detach", "--lanes", "1", "--state-dir", str(state)]
    procs = [subprocess.Popen(argv, pass_fds=(r,), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    os.close(r)
    time.sleep(1.5)
    os.write(w, b"xx")
    os.close(w)
    results = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    try:
        assert codes == [0, 2], results
        loser = results[[p.returncode for p in procs].index(2)]
        assert "Traceback" not in loser[1] and len(loser[1].strip().splitlines()) == 1, loser[1]
        assert "is in use: a lab is running there (pid" in loser[1]
        # Nothing of the loser is left: exactly the winner's three processes carry the directory's token.
        pids = lab_pids(state)
        assert marked(state) == set(pids.values()) and len(pids) == 3
        assert JournalReader(json.loads((state / "lab.json").read_text())["server_admin"]).healthy(timeout=5)
    finally:
        harness("down", "--state-dir", str(state))
        leftovers = marked(state)
        for pid in leftovers:
            os.kill(pid, 9)
    assert leftovers == set()


def test_replace_stops_the_running_lab_first(up, tmp_path):
    state = tmp_path / "state"
    assert up(state).returncode == 0
    old = lab_pids(state)
    old_token = json.loads((state / "lab.json").read_text())["token"]
    again = up(state, "--replace")
    assert again.returncode == 0, again.stderr
    assert wait_gone(list(old.values()), 5), "the replaced lab is still running"
    new = json.loads((state / "lab.json").read_text())
    assert new["token"] != old_token and marked(state) == {p["pid"] for p in new["processes"].values()}


def test_a_foreground_up_is_stopped_by_down_through_its_lock(tmp_path):
    """The foreground owner's environment is not the lab's: down recognises it by the lock it holds."""
    state = tmp_path / "state"
    r, w = os.pipe()
    proc = subprocess.Popen([PY, "-m", "harness", "up", "--lanes", "1", "--state-dir", str(state), "--ready-fd", str(w)],
                            pass_fds=(w,), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    os.close(w)
    try:
        assert os.read(r, 65536), "harness up did not become ready"
        pids = lab_pids(state)
        assert pids["up"] == proc.pid
        down = harness("down", "--state-dir", str(state))
        assert down.returncode == 0 and "stopped" in down.stdout, down.stderr
        assert proc.wait(10) == 0 and "Lab stopped." in proc.stderr.read()
        assert wait_gone(list(pids.values()), 5)
    finally:
        os.close(r)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _decoy_lab_json(state: Path, decoys: list[int]) -> None:
    info = json.loads((state / "lab.json").read_text())
    info["processes"].update({f"decoy{i}": {"pid": pid, "start": start_time(pid)} for i, pid in enumerate(decoys)})
    (state / "lab.json").write_text(json.dumps(info))


def test_down_stops_the_lab_and_not_the_decoys_named_in_its_lab_json(up, tmp_path):
    """lab.json names a sleep, a 'python -m harness' lookalike and 'tail -F' of the lab's log, each
    with its true start time: the lab stops, they all live on."""
    state = tmp_path / "state"
    assert up(state).returncode == 0
    pids = lab_pids(state)
    decoys = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL) for argv in (
        ["sleep", "60"],
        [PY, "-c", "import time; time.sleep(60)", "-m", "harness", "up", "--state-dir", str(state)],
        ["tail", "-F", str(state / "up.log")],
    )]
    try:
        time.sleep(0.3)
        _decoy_lab_json(state, [d.pid for d in decoys])
        down = harness("down", "--state-dir", str(state))
        assert down.returncode == 0, down.stderr
        assert all(d.poll() is None for d in decoys), "harness down signalled a process that is not the lab's"
        assert all(f"pid {d.pid} named in lab.json is not a process of this lab" in down.stderr for d in decoys)
        assert wait_gone(list(pids.values()), 5) and marked(state) == set()
    finally:
        for d in decoys:
            d.kill()
            d.wait()


def _truncate(p: Path) -> None:
    p.write_text(p.read_text()[:40])


def _directory(p: Path) -> None:
    p.unlink()
    p.mkdir()


BROKEN = {
    "truncated": _truncate,
    "empty": lambda p: p.write_text(""),
    "wrong-typed": lambda p: p.write_text(json.dumps({"processes": [1, 2], "token": {"x": 1}, "backend": 3})),
    "a directory": _directory,
}


@pytest.mark.parametrize("how", BROKEN, ids=list(BROKEN))
def test_down_with_a_broken_lab_json_still_stops_the_lab(up, tmp_path, how):
    state = tmp_path / "state"
    assert up(state).returncode == 0
    pids = lab_pids(state)
    BROKEN[how](state / "lab.json")
    down = harness("down", "--state-dir", str(state))
    assert down.returncode == 0 and "Traceback" not in down.stderr, down.stderr
    assert "found the lab's processes by its token instead" in down.stderr
    assert wait_gone(list(pids.values()), 5) and marked(state) == set()
    # And again: nothing to stop, one line, exit 0.
    again = harness("down", "--state-dir", str(state))
    assert again.returncode == 0 and "No lab is running" in again.stdout and "Traceback" not in again.stderr


def test_down_when_the_state_dir_became_a_file(up, tmp_path):
    state = tmp_path / "state"
    assert up(state).returncode == 0
    pids = lab_pids(state)
    shutil.move(state, tmp_path / "elsewhere")
    state.write_text("not a directory")
    try:
        down = harness("down", "--state-dir", str(state))
        assert down.returncode == 0 and "stopped" in down.stdout, down.stderr
        assert wait_gone(list(pids.values()), 5)
        # With nothing running, a file given as the state directory is a usage error.
        assert "is a file, not a lab's state directory" in one_sentence(harness("down", "--state-dir", str(state)), 2)
    finally:
        for pid in marked(tmp_path / "elsewhere") | marked(state):
            os.kill(pid, 9)


def test_down_on_a_directory_that_never_had_a_lab(tmp_path):
    down = harness("down", "--state-dir", str(tmp_path / "nothing-here"))
    assert down.returncode == 0 and "No lab is running" in down.stdout and down.stderr == ""


def test_up_with_a_lock_fd_of_its_own_making_is_one_sentence(tmp_path):
    line = one_sentence(harness("up", "--lanes", "1", "--state-dir", str(tmp_path), "--lock-fd", "99"), 2)
    assert "--lock-fd is for 'harness up --detach' only" in line


def test_up_where_the_lock_file_is_a_symlink_is_one_sentence_and_touches_nothing(tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep me")
    state = tmp_path / "state"
    state.mkdir()
    (state / "lab.lock").symlink_to(target)
    line = one_sentence(harness("up", "--lanes", "1", "--state-dir", str(state)), 2)
    assert "cannot open the lock file" in line
    assert target.read_text() == "keep me" and sorted(p.name for p in state.iterdir()) == ["lab.lock"]


# -- --listen: the proxy listeners on a device-reachable address (real devices) --------------------

def test_listen_on_an_address_this_machine_lacks_is_one_sentence_and_leaves_nothing(tmp_path):
    proc = harness("up", "--listen", "192.0.2.1", "--lanes", "1", "--state-dir", str(tmp_path))  # TEST-NET-1
    assert_one_sentence_error(proc, 2)
    assert ("192.0.2.1 is not an address of this machine; choose one that 'ip -brief address' lists, "
            "on the interface the device reaches.") in proc.stderr
    assert not lab_pids_under(tmp_path), "a prespawned proxy was left behind"
    assert not (tmp_path / "lab.json").exists()


@pytest.mark.parametrize("value,says", [("0.0.0.0", "would listen on every interface"), ("::", "would listen on every"),
                                        ("lan", "is not an IP address"), ("224.0.0.1", "is a multicast address")])
def test_listen_takes_one_address(tmp_path, value, says):
    proc = harness("up", "--listen", value, "--state-dir", str(tmp_path))
    assert_one_sentence_error(proc, 2)
    assert says in proc.stderr


def test_listen_port_in_use_on_that_address_is_one_sentence_and_leaves_nothing(tmp_path):
    # 127.0.0.2 is this machine's (all of 127/8 is) but not 127.0.0.1: the port is free on
    # the journals' address and taken on the listen address, which is the one that counts.
    base = free_port_range(20)
    with socket.create_server(("127.0.0.2", base + 1)):
        proc = harness("up", "--listen", "127.0.0.2", "--policies", "tunnel,inspect", "--base-port", str(base),
                       "--lanes", "1", "--state-dir", str(tmp_path))
    assert_one_sentence_error(proc, 2)
    assert (f"port {base + 1} on 127.0.0.2 (proxy listener inspect lane 0) is already in use; "
            "stop what uses it or choose another --base-port.") in proc.stderr
    assert not lab_pids_under(tmp_path), "a prespawned proxy was left behind"


def test_listen_puts_proxies_and_pac_there_and_journals_on_loopback(tmp_path):
    proc = harness("up", "--detach", "--listen", "127.0.0.2", "--policies", "tunnel,inspect", "--lanes", "1",
                   "--state-dir", str(tmp_path))
    try:
        assert proc.returncode == 0, proc.stderr
        info = json.loads((tmp_path / "lab.json").read_text())
        assert all(urls[0].startswith("http://127.0.0.2:") for urls in info["proxies"].values())
        assert info["device_proxies"] == {p: urls[0].removeprefix("http://") for p, urls in info["proxies"].items()}
        assert info["pac"]["inspect"].startswith("http://127.0.0.2:") and info["wpad"].endswith("/wpad.dat")
        assert info["proxy_admin"].startswith("http://127.0.0.1:") and info["server_admin"].startswith("http://127.0.0.1:")
        # Bound there, and only there: the proxy process's own listening sockets (ss), not a connect to
        # 127.0.0.1:PORT, which another lab of this run may hold (the proxy's ports are the kernel's choice).
        proxy_pid = info["processes"]["proxy"]["pid"]
        ss = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, timeout=30).stdout
        bound = {line.split()[3] for line in ss.splitlines() if f"pid={proxy_pid}," in line}
        for policy, address in info["device_proxies"].items():
            with socket.create_connection(tuple(address.rsplit(":", 1)), timeout=10):
                pass
            port = address.rsplit(":", 1)[1]
            assert {b for b in bound if b.endswith(f":{port}")} == {address}, (policy, sorted(bound))
        assert not {b for b in bound if b.startswith(("127.0.0.1:", "0.0.0.0:", "*:", "[::]:"))} - {
            info["proxy_admin"].removeprefix("http://")}, sorted(bound)
        assert "real device" in proc.stdout and "!!!" not in proc.stdout  # loopback: nothing exposed
    finally:
        assert harness("down", "--state-dir", str(tmp_path)).returncode == 0
