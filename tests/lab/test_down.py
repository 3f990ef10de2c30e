"""harness.lab.down: stopping a state directory's lab from outside, whatever state its records are in,
and never a process that is not the lab's.

A "lab" here is cheap and real: an owner process that locks the state
directory and spawns two children the way the lab does (own session, the
lab's token in their environment, no parent-death signal, so only ``down``
can end them), and writes lab.json.  Decoys are plain processes whose pids
(with their true start times) are written into lab.json.
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

from harness.lab.down import read_records, stop_lab
from harness.lab.identity import ProcessRecord, lab_environment, new_token, start_time
from harness.lab.lock import LOCK_FILE, acquire
from harness.lab.process import pid_alive

PY = sys.executable
SLEEP = "import time; time.sleep(120)"

OWNER = r"""
import json, sys, time
from dataclasses import asdict
from pathlib import Path
from harness.lab.identity import ProcessRecord, lab_environment
from harness.lab.lock import acquire
from harness.lab.process import spawn

state = Path(sys.argv[1])
lock = acquire(state, role=sys.argv[2])
env = lab_environment(lock.token, state)
children = [spawn(name, [sys.executable, "-c", "import time; time.sleep(120)"], state / f"{name}.log", env=env,
                  die_with_parent=False) for name in ("proxy", "server")]
processes = {c.name: asdict(c.record) for c in children}
processes["up"] = asdict(ProcessRecord.of(__import__("os").getpid()))
(state / "lab.json").write_text(json.dumps({"backend": "local", "state_dir": str(state), "processes": processes,
                                            "token": lock.token}))
print(json.dumps(processes), flush=True)
time.sleep(120)
"""


class FakeLab:
    def __init__(self, state: Path, role: str = "up") -> None:
        self.state = state
        self.owner = subprocess.Popen([PY, "-c", OWNER, str(state), role], stdout=subprocess.PIPE, text=True)
        line = self.owner.stdout.readline()
        assert line, "the fake lab did not start"
        self.processes = {role: p["pid"] for role, p in json.loads(line).items()}
        wait_exec([self.processes["proxy"], self.processes["server"]])

    @property
    def pids(self) -> list[int]:
        return list(self.processes.values())

    def alive(self) -> list[int]:
        return [p for p in self.pids if pid_alive(p)]

    def cleanup(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        self.owner.wait()


def wait_exec(pids: list[int]) -> None:
    """Until the children run their own program (before exec they still have the owner's environment)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(b"time.sleep(120)" in Path(f"/proc/{p}/cmdline").read_bytes() for p in pids):
            return
        time.sleep(0.01)
    raise AssertionError("the fake lab's children did not start")


@pytest.fixture
def lab(tmp_path):
    labs: list[FakeLab] = []

    def start(state: Path | None = None, role: str = "up") -> FakeLab:
        labs.append(FakeLab(state or tmp_path / "state", role))
        return labs[-1]

    yield start
    for fake in labs:
        fake.cleanup()


@pytest.fixture
def decoys():
    started: list[subprocess.Popen] = []

    def start(*argvs) -> list[int]:
        for argv in argvs:
            started.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL))
        time.sleep(0.2)  # exec'd
        return [p.pid for p in started[-len(argvs):]]

    yield start
    for p in started:
        p.kill()
        p.wait()


def test_stop_lab_stops_owner_and_children_by_their_records(lab):
    fake = lab()
    stopped = stop_lab(fake.state)
    assert sorted(stopped.signalled) == sorted(fake.pids)
    assert fake.alive() == [] and stopped.survivors == [] and stopped.ignored == [], (stopped, fake.processes)


CORRUPTIONS = {
    "truncated": lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2]),
    "empty": lambda p: p.write_text(""),
    "a list": lambda p: p.write_text("[1, 2, 3]"),
    "wrong types": lambda p: p.write_text(json.dumps({"processes": "proxy", "token": 5, "backend": ["local"]})),
    "old shape": lambda p: p.write_text(json.dumps({"pids": {"proxy": 1, "server": 2}})),
    "not UTF-8": lambda p: p.write_bytes(b"\xff\xfe{\x00"),
    "a directory": lambda p: (p.unlink(), p.mkdir()),
    "gone": lambda p: p.unlink(),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_a_broken_lab_json_still_lets_down_find_the_lab_by_its_token(lab, corrupt):
    fake = lab()
    CORRUPTIONS[corrupt](fake.state / "lab.json")
    stopped = stop_lab(fake.state)
    assert fake.alive() == [], f"lab processes survived down with a lab.json that is {corrupt}"
    assert sorted(stopped.signalled) == sorted(fake.pids)
    if corrupt != "gone":
        assert stopped.records.problem  # and down says what it could not read


def test_with_both_records_broken_the_state_marker_still_finds_the_children(lab):
    fake = lab()
    (fake.state / "lab.json").write_text("{")
    (fake.state / LOCK_FILE).write_text("garbage")
    stopped = stop_lab(fake.state)
    # The owner is recognised by its lock record only, which is gone: its children are found by marker.
    assert not pid_alive(fake.processes["proxy"]) and not pid_alive(fake.processes["server"]), (stopped, fake.processes)
    assert fake.processes["proxy"] in stopped.signalled


def test_a_state_dir_replaced_by_a_file_still_finds_the_labs_children(lab, tmp_path):
    fake = lab()
    shutil.move(fake.state, tmp_path / "moved-away")
    fake.state.write_text("I am a file now")
    stopped = stop_lab(fake.state)
    assert "is a file" in stopped.records.problem
    assert not pid_alive(fake.processes["proxy"]) and not pid_alive(fake.processes["server"]), (stopped, fake.processes)


def test_decoys_named_in_lab_json_survive(lab, decoys):
    """A crafted lab.json naming a sleep, a 'python ... harness' lookalike and another lab's process,
    each with its true start time, and even a token of its own: none of them is signalled."""
    fake = lab()
    other_lab = subprocess.Popen([PY, "-c", SLEEP], env=lab_environment(new_token(), fake.state.parent / "other"))
    sleep, lookalike = decoys(["sleep", "120"], [PY, "-c", SLEEP, "-m", "harness", "up"])
    try:
        time.sleep(0.2)
        victims = {"up": sleep, "proxy": lookalike, "server": other_lab.pid, "extra": fake.processes["proxy"]}
        crafted = {"backend": "local", "token": new_token(),
                   "processes": {role: {"pid": pid, "start": start_time(pid)} for role, pid in victims.items()}}
        (fake.state / "lab.json").write_text(json.dumps(crafted))
        stopped = stop_lab(fake.state)
        assert pid_alive(sleep) and pid_alive(lookalike) and pid_alive(other_lab.pid)
        assert sorted(stopped.ignored) == sorted([sleep, lookalike, other_lab.pid])
        assert fake.alive() == []  # the real lab, found through its lock and token, is stopped
    finally:
        other_lab.kill()
        other_lab.wait()


def test_a_tail_of_the_lock_file_named_as_the_owner_survives(lab, decoys, tmp_path):
    fake = lab()
    (tail,) = decoys(["tail", "-F", str(fake.state / LOCK_FILE)])
    crafted = {"token": new_token(), "processes": {"up": {"pid": tail, "start": start_time(tail)}}}
    (fake.state / "lab.json").write_text(json.dumps(crafted))
    stopped = stop_lab(fake.state)
    assert pid_alive(tail) and fake.alive() == [], (stopped, fake.processes)


def test_no_lab_at_all(tmp_path):
    stopped = stop_lab(tmp_path / "never-used")
    assert stopped.signalled == [] and stopped.records.problem is None
    assert read_records(tmp_path / "never-used").holder is None


def test_a_run_or_plugin_owner_is_left_running_its_processes_are_stopped(lab):
    fake = lab(role="lab")
    stopped = stop_lab(fake.state)
    assert stopped.owner_left is not None and stopped.owner_left.pid == fake.owner.pid
    assert pid_alive(fake.owner.pid)
    assert not pid_alive(fake.processes["proxy"]) and not pid_alive(fake.processes["server"]), (stopped, fake.processes)


def test_a_process_of_this_directory_from_a_crashed_earlier_lab_is_stopped_too(tmp_path, decoys):
    """A leftover carrying an older token of the same state directory (its lab died without it)."""
    state = tmp_path / "state"
    state.mkdir()
    orphan = subprocess.Popen([PY, "-c", SLEEP], env=lab_environment(new_token(), state), start_new_session=True)
    try:
        time.sleep(0.3)
        with acquire(state, role="up"):
            pass  # a later lab came and went: lab.lock now names another token
        stopped = stop_lab(state)
        assert stopped.signalled == [orphan.pid]
        assert orphan.wait(5) is not None
    finally:
        orphan.kill()
        orphan.wait()


def test_the_records_survive_one_part_breaking(lab):
    fake = lab()
    records = read_records(fake.state)
    assert records.token == records.holder.token and records.problem is None
    assert records.processes["proxy"] == ProcessRecord.of(fake.processes["proxy"])
    (fake.state / "lab.json").write_text(json.dumps({"token": records.token, "processes": {"proxy": {"pid": "x"}}}))
    broken = read_records(fake.state)
    assert broken.token == records.token and "malformed process entry 'proxy'" in broken.problem


def _fifo(p: Path) -> None:
    p.unlink()
    os.mkfifo(p)


def _zero_link(p: Path) -> None:
    p.unlink()
    p.symlink_to("/dev/zero")


def _huge(p: Path) -> None:
    with open(p, "wb") as f:
        f.truncate(64 << 20)  # sparse: 64 MiB of zeros


@pytest.mark.parametrize("make", [_fifo, _zero_link, _huge], ids=["a FIFO", "a link to /dev/zero", "64 MiB"])
@pytest.mark.parametrize("name", ["lab.json", LOCK_FILE])
def test_records_that_would_hang_or_flood_a_reader_are_skipped_at_once(lab, name, make):
    fake = lab()
    make(fake.state / name)
    start = time.monotonic()
    stopped = stop_lab(fake.state)
    assert time.monotonic() - start < 10
    assert not pid_alive(fake.processes["proxy"]) and not pid_alive(fake.processes["server"]), (stopped, fake.processes)
    if name == "lab.json":
        assert stopped.records.problem and "cannot be read" in stopped.records.problem
