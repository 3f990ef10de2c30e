"""The client worker: runs clients inside a compose lab's client container, on request.

``python -m harness.matrix.worker`` reads requests as JSON lines on standard
input and answers each with one JSON line on standard output, carrying the
request's ``id``; requests run concurrently (one thread each), like a matrix's
lanes.  The host starts one worker per container (and user) through one
Docker API exec stream (:mod:`harness.matrix.remote`), so a cell costs no
``docker exec`` process, no exec in the engine and no Python start-up::

    {"id": 1, "run": "hello"}                                -> {"id": 1, "ready": true, "version": ...}
    {"id": 2, "run": "reference", "client": "beam", "argv": [...], "in_process": true}
    {"id": 3, "run": "foreign", "argv": [...], "env": {...}, "stdin": "...", "timeout": 20, "limit": 1048576}
                                                             -> {"id": N, "code": 0, "output": "..."}

A reference client runs in this process, as the local lab runs it
(:func:`harness.matrix.execute.run_reference`; with ``"in_process": false`` as
a process, for ``harness run --subprocess``); a client under test runs as a
real process of this container with :func:`harness.matrix.execute.run_foreign`'s
semantics (its own process group, killed at exit or timeout, output capped).
A request that fails gets ``{"id": N, "error": "..."}``.  At the end of its
input the worker lets running requests finish and exits.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import TextIO


def handle(request: dict) -> dict:
    """The answer to one request (without its id)."""
    from harness import __version__
    from harness.matrix.execute import OUTPUT_LIMIT, REFERENCE_CLIENTS, run_foreign, run_reference

    kind = request.get("run")
    if kind == "hello":
        return {"ready": True, "version": __version__, "pid": os.getpid()}
    if kind == "reference":
        client = REFERENCE_CLIENTS.get(request.get("client", ""))
        if client is None:
            return {"error": f"unknown reference client {request.get('client')!r}"}
        code, output = run_reference(client, list(request["argv"]), in_process=request.get("in_process", True) is not False)
        return {"code": code, "output": output}
    if kind == "foreign":
        code, output = run_foreign(list(request["argv"]), dict(request.get("env") or {}), request.get("stdin"),
                                   float(request["timeout"]), limit=int(request.get("limit", OUTPUT_LIMIT)))
        return {"code": code, "output": output}
    return {"error": f"unknown request {kind!r}"}


def exit_answer(code) -> dict:
    """The answer for ``sys.exit(code)`` in a client, as its process would have ended."""
    if code is None:
        return {"code": 0, "output": ""}
    if isinstance(code, int):
        return {"code": code, "output": ""}
    return {"code": 1, "output": f"{code}\n"}


def serve(requests: TextIO, answers: TextIO) -> int:
    """Answer every request line of ``requests`` on ``answers``; returns when the input ends
    and every request was answered."""
    lock = threading.Lock()
    threads = []

    def work(line: str) -> None:
        try:
            request = json.loads(line)
            rid = request.get("id")
        except (ValueError, AttributeError):
            request, rid = None, None
        try:
            answer = handle(request) if isinstance(request, dict) else {"error": "a request is one JSON object"}
        except SystemExit as e:  # a client that exits: what its process would have said
            answer = exit_answer(e.code)
        except BaseException as e:  # one bad request must neither end the worker nor go unanswered
            answer = {"error": f"{type(e).__name__}: {e}"}
        with lock:
            answers.write(json.dumps({**answer, "id": rid}) + "\n")
            answers.flush()

    for line in requests:
        if line.strip():
            thread = threading.Thread(target=work, args=(line,), daemon=True)
            thread.start()
            threads.append(thread)
            threads = [t for t in threads if t.is_alive()]
    for thread in threads:
        thread.join()
    return 0


def main() -> int:
    # Answers go to a copy of the real standard output; file descriptor 1 and sys.stdout become
    # standard error, so nothing a client or a library prints can break a protocol line.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return serve(sys.stdin, answers)


if __name__ == "__main__":
    raise SystemExit(main())
