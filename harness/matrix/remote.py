"""Running clients in a compose lab's containers through their client workers.

A cell of the compose lab runs on a machine named by a ``docker exec`` prefix
(``lab.json``'s ``machines``; what a person types to rerun it).  Instead of a
``docker exec`` process per cell, this process keeps one client worker per
container and user (:mod:`harness.matrix.worker`, started over the Docker API by
:func:`harness.lab.execstream.session`) and sends it each cell: the reference
clients run in the worker's Python, already imported, and clients under test
as real processes in the container, as before.
"""

from __future__ import annotations

from harness.errors import LabError
from harness.lab import execstream
from harness.lab.compose import CLIENT_WORKER

# The program; compose.yaml's client containers have it (the lab image), and the compose lab starts
# it in each of them as it comes up (harness.lab.compose.CLIENT_WORKER, the same command).
WORKER = CLIENT_WORKER
# A client under test is killed at its own timeout in the container; the answer may take this much longer.
ANSWER_GRACE = 30.0


def worker(target: tuple[str, str]) -> execstream.ExecSession:
    """The running worker in ``target`` (container, user), started if need be."""
    container, user = target
    try:
        return execstream.session(container, WORKER, user=user)
    except execstream.SessionClosed as e:
        raise LabError(f"the client worker in container {container[:12]} did not start ({e}); "
                       "rebuild the lab image (harness images build) if it predates the worker.") from None


def _ask(target: tuple[str, str], message: dict, timeout: float) -> tuple[int, str]:
    container = target[0][:12]
    try:
        answer = worker(target).request(message, timeout)
    except TimeoutError:
        return 124, f"\n[harness] the client worker in container {container} did not answer within {timeout:g}s.\n"
    except execstream.SessionClosed as e:
        raise LabError(f"the client worker in container {container} is gone: {e}") from None
    if "error" in answer:
        raise LabError(f"the client worker in container {container} failed: {answer['error']}.")
    return int(answer["code"]), str(answer["output"])


def run_reference(target: tuple[str, str], client: str, argv: list[str], timeout: float, *,
                  in_process: bool = True) -> tuple[int, str]:
    """Run the reference ``client`` with ``argv`` in ``target``'s worker: (exit code, output);
    ``in_process=False``: as a process the worker starts (``harness run --subprocess``)."""
    message = {"run": "reference", "client": client, "argv": argv, "in_process": in_process}
    return _ask(target, message, timeout)


def run_foreign(target: tuple[str, str], argv: list[str], env: dict[str, str], stdin: str | None,
                timeout: float, limit: int) -> tuple[int, str]:
    """Run a client under test as a process in ``target``'s container: (exit code, output)."""
    message = {"run": "foreign", "argv": argv, "env": env, "stdin": stdin, "timeout": timeout, "limit": limit}
    return _ask(target, message, timeout + ANSWER_GRACE)
