"""Tests for harness.lab.shared: the slot rule, and real processes sharing one (stand-in) lab.

The lab here is a context manager that logs its start and stop: what is under
test is who starts, who attaches and who stops, across processes.
"""

import json
import multiprocessing
import os
import threading
import time
from contextlib import contextmanager

import pytest

from harness.errors import EnvironmentProblem
from harness.lab.info import LabInfo
from harness.lab.shared import REGISTRY_NAME, free_slot, shared_lab, slot_lanes

FORK = multiprocessing.get_context("fork")


def test_slot_lanes_are_disjoint_blocks():
    assert list(slot_lanes(0, 2)) == [0, 1]
    assert list(slot_lanes(1, 2)) == [2, 3]
    blocks = [set(slot_lanes(s, 3)) for s in range(4)]
    assert set().union(*blocks) == set(range(12)) and sum(map(len, blocks)) == 12


def test_free_slot_is_the_lowest_untaken():
    assert free_slot({}, 2) == 0
    assert free_slot({101: 0}, 2) == 1
    assert free_slot({101: 1}, 2) == 0
    assert free_slot({101: 0, 102: 1}, 2) is None


def log(root, *event):
    with open(root / "events.jsonl", "a") as f:
        f.write(json.dumps([*event]) + "\n")


def events(root):
    path = root / "events.jsonl"
    return [tuple(json.loads(line)) for line in path.read_text().splitlines()] if path.exists() else []


def fake_start(root):
    """A stand-in for open_lab(...): logs 'start' and 'stop' with the pid that did it."""
    @contextmanager
    def lab():
        log(root, "start", os.getpid())
        yield LabInfo(backend="local", state_dir=str(root), lanes=4, proxies={}, server_connect=[],
                      proxy_admin="", server_admin="", pki={}, org_issuer_cn=f"started by {os.getpid()}")
        log(root, "stop", os.getpid())
    return lab


def attach_and_wait(root, attached, go, exit_code=None):
    """A second process: attach, say so, wait for 'go', then detach (or die without detaching)."""
    with shared_lab(root, fake_start(root), slots=2, poll=0.05) as hold:
        log(root, "attached", os.getpid(), hold.slot, hold.started, hold.info.org_issuer_cn)
        attached.set()
        go.wait(30)
        if exit_code is not None:
            os._exit(exit_code)  # a crashed worker: no detach
    log(root, "detached", os.getpid())


def test_first_starts_the_other_attaches_and_the_starter_stops_it_last(tmp_path):
    attached, go = FORK.Event(), FORK.Event()
    ctx = shared_lab(tmp_path, fake_start(tmp_path), slots=2, poll=0.05)
    hold = ctx.__enter__()
    assert (hold.slot, hold.started) == (0, True)
    other = FORK.Process(target=attach_and_wait, args=(tmp_path, attached, go))
    other.start()
    assert attached.wait(30)
    me = os.getpid()
    assert events(tmp_path) == [("start", me), ("attached", other.pid, 1, False, f"started by {me}")]

    # The starter's work is done first; it must not stop the lab under the other process.
    leaving = threading.Thread(target=ctx.__exit__, args=(None, None, None))
    leaving.start()
    time.sleep(0.5)
    assert leaving.is_alive() and ("stop", me) not in events(tmp_path)
    go.set()
    other.join(30)
    leaving.join(30)
    assert not leaving.is_alive()
    assert events(tmp_path)[2:] == [("detached", other.pid), ("stop", me)]
    assert not (tmp_path / REGISTRY_NAME).exists()


def test_a_holder_that_dies_without_detaching_does_not_keep_the_lab_up(tmp_path):
    attached, go = FORK.Event(), FORK.Event()
    with shared_lab(tmp_path, fake_start(tmp_path), slots=2, poll=0.05):
        other = FORK.Process(target=attach_and_wait, args=(tmp_path, attached, go, 3))
        other.start()
        assert attached.wait(30)
        go.set()
        other.join(30)
        assert other.exitcode == 3
    assert events(tmp_path)[-1] == ("stop", os.getpid())


def test_a_registry_left_by_a_dead_starter_is_replaced(tmp_path):
    dead = FORK.Process(target=os._exit, args=(0,))
    dead.start()
    dead.join()
    (tmp_path / REGISTRY_NAME).write_text(json.dumps({"owner": dead.pid, "lab": {}, "holders": {str(dead.pid): 0}}))
    with shared_lab(tmp_path, fake_start(tmp_path), slots=1) as hold:
        assert (hold.slot, hold.started) == (0, True)
    assert [e[0] for e in events(tmp_path)] == ["start", "stop"]


def test_no_free_slot_is_one_sentence_and_leaves_the_lab_to_its_holders(tmp_path):
    attached, go = FORK.Event(), FORK.Event()
    other = FORK.Process(target=attach_and_wait, args=(tmp_path, attached, go))
    other.start()
    try:
        assert attached.wait(30)  # the other process started the lab and holds its only slot
        with pytest.raises(EnvironmentProblem, match=r"has 1 slot\(s\), all held by running processes"):
            with shared_lab(tmp_path, fake_start(tmp_path), slots=1):
                pass
    finally:
        go.set()
        other.join(30)
    assert [e[0] for e in events(tmp_path)] == ["start", "attached", "stop", "detached"]
