"""Tests for harness.matrix.remote and execute's ``docker exec`` path, without a Docker engine.

The host side talks to a real client worker (harness.matrix.worker's ``serve``)
whose input and output are framed as the engine frames an exec stream, over a
socket pair standing in for the connection to the engine; the real stream into
a container is tested by the compose suite (tests/lab/test_compose.py).
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading

import pytest

from harness.errors import LabError
from harness.lab import execstream
from harness.lab.execstream import STDOUT, Channel, Frames
from harness.matrix import execute, remote, worker

CID = "c0ffee" * 10 + "abcd"
PREFIX = ["docker", "exec", "-i", CID]


class _FramedAnswers(io.TextIOBase):
    """The worker's standard output, framed onto the socket as the engine does."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, text: str) -> int:
        self.sock.sendall(Frames.frame(STDOUT, text.encode()))
        return len(text)


@pytest.fixture
def workers(monkeypatch):
    """execstream.session replaced by channels to real workers in threads; yields the started channels."""
    started: dict[tuple, Channel] = {}

    def session(container, argv, *, user=""):
        key = (container, user, tuple(argv))
        if key in started and started[key].alive:
            return started[key]
        ours, theirs = socket.socketpair()
        requests = ours.makefile("r", encoding="utf-8")
        threading.Thread(target=worker.serve, args=(requests, _FramedAnswers(ours)), daemon=True).start()
        channel = Channel(theirs, f"worker in {container[:12]}")
        channel.greet(30)
        started[key] = channel
        return channel

    monkeypatch.setattr(execstream, "session", session)
    yield started
    for channel in started.values():
        channel.close()


def test_a_client_under_test_runs_in_the_worker_with_run_foreigns_semantics(workers, monkeypatch):
    started, popen = [], subprocess.Popen

    def recording(argv, *a, **kw):  # the worker runs in this process here: its process is the client's own
        started.append(list(argv))
        return popen(argv, *a, **kw)

    argv = [sys.executable, "-c", "import os, sys; print(os.environ['K'], sys.stdin.read()); sys.exit(5)"]
    monkeypatch.setattr(execute.subprocess, "Popen", recording)
    assert execute.run_foreign(argv, {"K": "v"}, "in", 30, PREFIX) == execute.run_foreign(argv, {"K": "v"}, "in", 30)
    assert execute.run_foreign(argv, {"K": "v"}, "in", 30, PREFIX) == (5, "v in\n")
    assert started == [argv] * 3  # never a docker command, the environment not folded into argv
    assert list(workers) == [(CID, "", remote.WORKER)]


def test_a_reference_client_runs_in_the_worker(workers, monkeypatch, tmp_path):
    monkeypatch.setattr(execute.subprocess, "run", lambda *a, **kw: pytest.fail("no process per cell"))
    argv = ["--url", "https://api.screenmeet.com/", "--pins", str(tmp_path / "none.txt"), "--json", "--once",
            "--token", "t", "--no-proxy", "--connect-to", "127.0.0.1:9"]
    code, output = execute.run_reference(execute.REFERENCE_CLIENTS["beam"], argv, in_process=True,
                                         prefix=["docker", "exec", "-i", "-u", "lab", CID])
    assert code == 2 and "none.txt" in output
    assert list(workers) == [(CID, "lab", remote.WORKER)]


def test_timeouts_and_failures_of_the_worker(workers, monkeypatch):
    monkeypatch.setattr(remote, "ANSWER_GRACE", 0.0)
    # The worker kills the client at its timeout; the host gives it no grace here, so it reports the silence.
    code, output = remote.run_foreign((CID, ""), ["sleep", "5"], {}, None, 0.3, 1000)
    assert code == 124 and "did not answer within 0.3s" in output
    with pytest.raises(LabError, match="failed: unknown reference client 'nobody'"):
        remote.run_reference((CID, ""), "nobody", [], 10)
    # A worker that is gone: the cell fails with why, and the next request starts a fresh worker.
    first = workers[(CID, "", remote.WORKER)]
    first.close()
    code, output = remote.run_foreign((CID, ""), ["true"], {}, None, 10, 1000)
    assert code == 0 and workers[(CID, "", remote.WORKER)] is not first


def test_a_worker_that_cannot_start_says_what_to_do(monkeypatch):
    def session(container, argv, *, user=""):
        raise execstream.SessionClosed("python: No module named harness.matrix.worker")

    monkeypatch.setattr(execstream, "session", session)
    with pytest.raises(LabError, match=r"did not start \(python: No module named .*\); rebuild the lab image"):
        remote.run_foreign((CID, ""), ["true"], {}, None, 10, 1000)


def test_other_prefixes_still_run_as_commands():
    """The local lab's gateway prefix (ip netns exec ...) is a command, not a worker: here, ``env``."""
    code, output = execute.run_foreign(["sh", "-c", "echo $K"], {"K": "through env"}, None, 30, ["env"])
    assert (code, output) == (0, "through env\n")
