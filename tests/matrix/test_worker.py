"""Tests for harness.matrix.worker: the client worker's requests, run here as in a container.

The worker runs real clients: the reference clients in its own Python and
programs under test as real processes (sh, sleep, python), with
run_foreign's semantics.  No lab is needed: a reference client given a
missing pins file fails as it would in a cell, with its own exit code.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time

from harness.matrix import worker
from harness.matrix.execute import OUTPUT_LIMIT


def ask(*requests: dict) -> dict:
    """Answers by id, from ``serve`` fed ``requests`` (the input then ends)."""
    answers = io.StringIO()
    assert worker.serve(io.StringIO("".join(json.dumps(r) + "\n" for r in requests)), answers) == 0
    return {a["id"]: a for a in map(json.loads, answers.getvalue().splitlines())}


def test_hello_says_ready():
    answer = ask({"id": 1, "run": "hello"})[1]
    assert answer["ready"] is True and answer["pid"] == os.getpid()


def test_a_reference_client_runs_in_process_with_its_own_exit_code(tmp_path):
    argv = ["--url", "https://api.screenmeet.com/", "--pins", str(tmp_path / "missing.txt"), "--json", "--once",
            "--token", "t", "--no-proxy", "--connect-to", "127.0.0.1:9"]
    answer = ask({"id": 7, "run": "reference", "client": "beam", "argv": argv})[7]
    assert answer["code"] == 2, answer  # usage: a missing pins file, as the console script says it
    assert "missing.txt" in answer["output"]


def test_a_reference_client_runs_as_a_process_when_asked(tmp_path, monkeypatch):
    """``harness run --subprocess``: the worker starts the console script instead (one process per cell)."""
    started = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: started.append(argv) or real_run(argv, **kw))
    argv = ["--url", "https://api.screenmeet.com/", "--pins", str(tmp_path / "missing.txt"), "--json", "--once",
            "--token", "t", "--no-proxy", "--connect-to", "127.0.0.1:9"]
    answer = ask({"id": 1, "run": "reference", "client": "beam", "argv": argv, "in_process": False})[1]
    assert answer["code"] == 2 and "missing.txt" in answer["output"]
    assert started == [[sys.executable, "-m", "harness", "beam", *argv]]


def test_a_program_under_test_runs_as_a_process_with_env_and_stdin():
    code = "import os, sys; print(os.environ['LAB_X'], sys.stdin.read().strip()); sys.exit(3)"
    answer = ask({"id": 2, "run": "foreign", "argv": [sys.executable, "-c", code], "env": {"LAB_X": "from-env"},
                  "stdin": "from-stdin\n", "timeout": 60})[2]
    assert answer == {"id": 2, "code": 3, "output": "from-env from-stdin\n"}


def test_a_program_past_its_timeout_is_killed_with_its_group(tmp_path):
    marker = tmp_path / "child.pid"
    script = f"sleep 77 & echo $! > {marker}; sleep 60"
    answer = ask({"id": 3, "run": "foreign", "argv": ["sh", "-c", script], "env": {}, "timeout": 1})[3]
    assert answer["code"] == 124 and "did not finish within 1s" in answer["output"]
    child = int(marker.read_text())
    for _ in range(100):  # killed with SIGKILL: gone once reaped by init
        if not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read().split()[2]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the background child {child} outlived its cell")


def test_missing_program_and_output_limit():
    answers = ask({"id": 4, "run": "foreign", "argv": ["no-such-program-xyz"], "env": {}, "timeout": 10},
                  {"id": 5, "run": "foreign", "argv": ["sh", "-c", "head -c 5000 /dev/zero"], "env": {},
                   "timeout": 30, "limit": 1000})
    assert answers[4]["code"] == 127 and "no such program" in answers[4]["output"]
    assert answers[5]["code"] == 0 and "output cut: 4000 bytes" in answers[5]["output"]
    assert OUTPUT_LIMIT == 1024 * 1024  # the default a request without "limit" gets


def test_bad_requests_get_errors_and_do_not_stop_the_others():
    answers = io.StringIO()
    lines = "not json\n" + json.dumps({"id": 8, "run": "dance"}) + "\n" + \
        json.dumps({"id": 9, "run": "reference", "client": "nobody", "argv": []}) + "\n" + \
        json.dumps({"id": 10, "run": "hello"}) + "\n"
    worker.serve(io.StringIO(lines), answers)
    by_id = {a["id"]: a for a in map(json.loads, answers.getvalue().splitlines())}
    assert by_id[None] == {"id": None, "error": "a request is one JSON object"}
    assert by_id[8]["error"] == "unknown request 'dance'"
    assert "unknown reference client 'nobody'" in by_id[9]["error"]
    assert by_id[10]["ready"] is True


def test_a_client_that_exits_or_raises_still_gets_an_answer(monkeypatch):
    def handle(request):
        if request["run"] == "exit":
            raise SystemExit(request["code"])
        raise KeyboardInterrupt  # not an Exception: still answered, never left waiting

    monkeypatch.setattr(worker, "handle", handle)
    answers = ask({"id": 1, "run": "exit", "code": 3}, {"id": 2, "run": "exit", "code": "usage: x"},
                  {"id": 3, "run": "other"})
    assert answers[1] == {"id": 1, "code": 3, "output": ""}
    assert answers[2] == {"id": 2, "code": 1, "output": "usage: x\n"}
    assert answers[3] == {"id": 3, "error": "KeyboardInterrupt: "}
    assert worker.exit_answer(None) == {"code": 0, "output": ""}


def test_requests_run_concurrently():
    """A slow cell does not hold up another: the fast one's answer comes first."""
    r, w = os.pipe()
    answers = io.StringIO()
    with os.fdopen(r) as requests:
        thread = threading.Thread(target=worker.serve, args=(requests, answers))
        thread.start()
        with os.fdopen(w, "w") as feed:
            feed.write(json.dumps({"id": 1, "run": "foreign", "argv": ["sleep", "2"], "env": {}, "timeout": 30}) + "\n")
            feed.write(json.dumps({"id": 2, "run": "foreign", "argv": ["true"], "env": {}, "timeout": 30}) + "\n")
        thread.join(60)
    assert [json.loads(line)["id"] for line in answers.getvalue().splitlines()] == [2, 1]


def test_the_program_keeps_its_protocol_on_a_private_stdout():
    """``python -m harness.matrix.worker``: answers on stdout, anything printed while serving on stderr."""
    code = ("import harness.matrix.worker as w; h = w.handle; "
            "w.handle = lambda r: (print('noise'), h(r))[1]; raise SystemExit(w.main())")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps({"id": 1, "run": "hello"}) + "\n",
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    [line] = out.stdout.splitlines()
    assert json.loads(line)["id"] == 1 and json.loads(line)["ready"] is True
    assert "noise" in out.stderr
