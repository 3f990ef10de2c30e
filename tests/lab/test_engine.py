"""Tests for harness.lab.engine (and the compose lab's rules built on it) that need no Docker engine:
reading back the ``docker exec`` prefixes the compose lab writes, and its readiness rule.  The calls
to a real engine run in the compose suite (tests/lab/test_compose.py)."""

from __future__ import annotations

import pytest

from harness.lab import engine
from harness.lab.compose import READY, client_machines, readiness_problem, worker_targets

CID = "0123456789ab" * 5 + "cdef"


@pytest.mark.parametrize("prefix, target", [
    (["docker", "exec", "-i", CID], (CID, "")),
    (["docker", "exec", "-i", "-u", "lab", CID], (CID, "lab")),
    (["docker", "exec", "--user", "lab", "--interactive", CID], (CID, "lab")),
    (["docker", "exec", CID], (CID, "")),
])
def test_docker_exec_prefixes_name_their_container_and_user(prefix, target):
    assert engine.exec_target(prefix) == target


@pytest.mark.parametrize("prefix", [
    [], ["ip", "netns", "exec", "tlslab-gw"], ["docker", "exec"], ["docker", "exec", "-i"],
    ["docker", "exec", "-e", "X=1", CID],  # an option the harness never writes: run as a command, as typed
    ["docker", "exec", "-u", "lab"], ["docker", "run", CID], ["sudo", "docker", "exec", CID],
    ["docker", "exec", CID, "extra"],
])
def test_other_prefixes_are_not_docker_targets(prefix):
    assert engine.exec_target(prefix) is None


def test_every_compose_machine_has_one_worker():
    machines = client_machines(lambda service: f"id-{service}")
    assert worker_targets(machines) == [("id-home", ""), ("id-attended", ""), ("id-beam", ""),
                                        ("id-attended-gw", "lab"), ("id-beam-gw", "lab")]


def test_project_containers_by_service(monkeypatch):
    class FakeAPI:
        def containers(self, all, filters):
            assert all is True and filters == {"label": "com.docker.compose.project=tlssdk"}
            label = lambda service, n: {"com.docker.compose.service": service,  # noqa: E731
                                        "com.docker.compose.container-number": str(n)}
            return [{"Id": "b2", "Labels": label("beam", 2)}, {"Id": "p1", "Labels": label("proxy", 1)},
                    {"Id": "b1", "Labels": label("beam", 1)}]

    monkeypatch.setattr(engine, "api", FakeAPI)
    assert {s: c["Id"] for s, c in engine.project_containers("tlssdk").items()} == {"beam": "b1", "proxy": "p1"}


def test_readiness_problems():
    running = {"Running": True, "Status": "running", "ExitCode": 0}
    assert readiness_problem("file", running) is None
    assert readiness_problem("file", {**running, "Health": {"Status": "starting"}}) is None
    assert readiness_problem("file", {**running, "Health": {"Status": "unhealthy"}}) == "is unhealthy"
    assert readiness_problem("log", {"Running": False, "Status": "exited", "ExitCode": 2}) == "exited (2)"
    # A one-shot: running or about to is fine; any exit that is not 0 is the problem (0 is ready).
    assert readiness_problem("exit 0", running) is None
    assert readiness_problem("exit 0", {"Running": False, "Status": "created", "ExitCode": 0}) is None
    assert readiness_problem("exit 0", {"Running": False, "Status": "exited", "ExitCode": 4}) == "exited with 4"
    assert set(READY) == {"screenmeet", "proxy", "gateway", "attended-gw", "beam-gw"}
