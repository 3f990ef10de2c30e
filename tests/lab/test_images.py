"""Tests for harness.lab.images: the docker build command offline, and one real image build."""

from __future__ import annotations

import subprocess

import pytest

from harness.lab import docker, images

# --- the build command -------------------------------------------------------

def test_offline_build_has_no_network_and_the_offline_pip_switch():
    cmd = images.docker_build_command("t:1", "tls-lab-base:bookworm", offline=True, buildkit=False)
    assert cmd[:2] == ["docker", "build"]
    assert "BASE_IMAGE=tls-lab-base:bookworm" in cmd and "PIP_OFFLINE=1" in cmd
    assert cmd[cmd.index("--network") + 1] == "none"
    assert "--progress" not in cmd  # the legacy builder has no --progress


def test_online_build_keeps_the_network():
    cmd = images.docker_build_command("t:1", images.ONLINE_BASE, offline=False, buildkit=True)
    assert "PIP_OFFLINE=0" in cmd and "--network" not in cmd
    assert cmd[cmd.index("--progress") + 1] == "plain"


def test_build_progress_shows_steps_not_noise():
    assert images._build_progress("Step 3/14 : ARG PIP_OFFLINE=0")
    assert images._build_progress("#7 [build 2/3] COPY . /ctx/")
    assert images._build_progress("Successfully tagged tls-lab:latest")
    assert not images._build_progress(" ---> Running in 3f2a")
    assert not images._build_progress("Collecting h11")


# --- the real thing ----------------------------------------------------------

@pytest.mark.compose
@pytest.mark.slow
def test_the_lab_image_builds_and_imports_its_dependencies():
    if not docker.docker_available():
        pytest.skip("no Docker engine answers (docker info failed)")
    tag = images.build_image(progress=print)  # reuses tls-lab-base:bookworm when present
    check = "import mitmproxy.version, harness, cryptography, aiohttp; print(mitmproxy.version.VERSION)"
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", tag, "python", "-c", check],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    major = int(out.stdout.strip().split(".")[0])
    assert 11 <= major < 13
    whoami = subprocess.run(["docker", "run", "--rm", tag, "id", "-u"],
                            capture_output=True, text=True, timeout=60)
    assert whoami.stdout.strip() != "0", "the image should run as a non-root user"
