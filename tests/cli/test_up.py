"""``harness up`` / ``harness down`` end to end, as a user runs them: real labs in real processes.

One lab per state directory (a second ``up`` exits 2 naming the running lab;
two at the same instant: exactly one wins; ``--replace``), and ``down`` stops
exactly the lab's processes whatever state ``lab.json`` is in, and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.lab.identity import scan, start_time, state_marker
from harness.lab.process import pid_alive, wait_gone
from harness.net.journal import JournalReader

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def harness(*args, timeout=120):
    return subprocess.run([PY, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          stdin=subprocess.DEVNULL)


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
