"""Tests for harness.lab.docker: finding docker and compose, and running commands (no engine needed)."""

from __future__ import annotations

import subprocess

import pytest

from harness.errors import EnvironmentProblem
from harness.lab import docker


def _fake_runner(ok: set[tuple[str, ...]]):
    """A stand-in for docker.capture: commands whose prefix is in ``ok`` succeed."""
    calls: list[list[str]] = []

    def run(cmd, *, timeout=60):
        calls.append(cmd)
        code = 0 if any(tuple(cmd[: len(p)]) == p for p in ok) else 1
        return subprocess.CompletedProcess(cmd, code, "", "")

    run.calls = calls
    return run


def _which(present: set[str]):
    return lambda name: f"/usr/bin/{name}" if name in present else None


# --- docker and compose ------------------------------------------------------

def test_compose_v2_is_preferred(monkeypatch):
    monkeypatch.setattr(docker.shutil, "which", _which({"docker", "docker-compose"}))
    monkeypatch.setattr(docker, "capture", _fake_runner({("docker", "compose", "version")}))
    assert docker.compose_command() == ["docker", "compose"]


def test_compose_v1_when_the_plugin_is_missing(monkeypatch):
    monkeypatch.setattr(docker.shutil, "which", _which({"docker", "docker-compose"}))
    monkeypatch.setattr(docker, "capture", _fake_runner(set()))
    assert docker.compose_command() == ["docker-compose"]


def test_no_compose_at_all_says_what_to_install(monkeypatch):
    monkeypatch.setattr(docker.shutil, "which", _which({"docker"}))
    monkeypatch.setattr(docker, "capture", _fake_runner(set()))
    with pytest.raises(EnvironmentProblem, match="install Docker Compose"):
        docker.compose_command()


def test_docker_absent_and_engine_down_are_told_apart(monkeypatch):
    monkeypatch.setattr(docker.shutil, "which", _which(set()))
    with pytest.raises(EnvironmentProblem, match="docker command is not installed"):
        docker.require_docker()
    monkeypatch.setattr(docker.shutil, "which", _which({"docker"}))
    monkeypatch.setattr(docker, "capture", _fake_runner(set()))
    with pytest.raises(EnvironmentProblem, match="no Docker engine answers; start dockerd"):
        docker.require_docker()


def test_a_missing_program_is_exit_127_not_an_exception():
    assert docker.capture(["/nonexistent/tls-lab-test-program"]).returncode == 127


@pytest.mark.parametrize("buildx, environ, expected", [
    (True, {}, True),
    (False, {}, False),
    (False, {"DOCKER_BUILDKIT": "1"}, False),  # BuildKit without buildx fails: never ask for it
    (True, {"DOCKER_BUILDKIT": "0"}, False),
])
def test_buildkit_only_with_buildx_and_not_when_turned_off(buildx, environ, expected):
    assert docker.use_buildkit(buildx, environ) is expected
