"""Tests for harness.lab.images: the pure decisions offline, and one real image build."""

from __future__ import annotations

import subprocess

import pytest

from harness.lab import images
from harness.errors import EnvironmentProblem


def _fake_runner(ok: set[tuple[str, ...]]):
    """A stand-in for images._run: commands whose prefix is in ``ok`` succeed."""
    calls: list[list[str]] = []

    def run(cmd, *, timeout=60):
        calls.append(cmd)
        code = 0 if any(tuple(cmd[: len(p)]) == p for p in ok) else 1
        return subprocess.CompletedProcess(cmd, code, "", "")

    run.calls = calls
    return run


def _which(present: set[str]):
    return lambda name: f"/usr/bin/{name}" if name in present else None


# --- compose command ---------------------------------------------------------

def test_compose_v2_is_preferred(monkeypatch):
    monkeypatch.setattr(images.shutil, "which", _which({"docker", "docker-compose"}))
    monkeypatch.setattr(images, "_run", _fake_runner({("docker", "compose", "version")}))
    assert images.compose_command() == ["docker", "compose"]


def test_compose_v1_when_the_plugin_is_missing(monkeypatch):
    monkeypatch.setattr(images.shutil, "which", _which({"docker", "docker-compose"}))
    monkeypatch.setattr(images, "_run", _fake_runner(set()))
    assert images.compose_command() == ["docker-compose"]


def test_no_compose_at_all_says_what_to_install(monkeypatch):
    monkeypatch.setattr(images.shutil, "which", _which({"docker"}))
    monkeypatch.setattr(images, "_run", _fake_runner(set()))
    with pytest.raises(EnvironmentProblem, match="install Docker Compose"):
        images.compose_command()


def test_docker_absent_and_engine_down_are_told_apart(monkeypatch):
    monkeypatch.setattr(images.shutil, "which", _which(set()))
    with pytest.raises(EnvironmentProblem, match="docker command is not installed"):
        images.require_docker()
    monkeypatch.setattr(images.shutil, "which", _which({"docker"}))
    monkeypatch.setattr(images, "_run", _fake_runner(set()))
    with pytest.raises(EnvironmentProblem, match="no Docker engine answers; start dockerd"):
        images.require_docker()


def test_a_missing_program_is_exit_127_not_an_exception():
    assert images._run(["/nonexistent/tls-lab-test-program"]).returncode == 127


# --- BuildKit or the legacy builder ------------------------------------------

@pytest.mark.parametrize("buildx, environ, expected", [
    (True, {}, True),
    (False, {}, False),
    (False, {"DOCKER_BUILDKIT": "1"}, False),  # BuildKit without buildx fails: never ask for it
    (True, {"DOCKER_BUILDKIT": "0"}, False),
])
def test_buildkit_only_with_buildx_and_not_when_turned_off(buildx, environ, expected):
    assert images.use_buildkit(buildx, environ) is expected


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


# --- apt sources for the offline base ----------------------------------------

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main
"""


def test_debian_sources_from_deb822_keeps_the_suite_and_its_updates():
    assert images.debian_sources([("debian.sources", DEB822)]) == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main contrib",
    ]


def test_debian_sources_one_line_format_skips_other_repositories():
    text = ("deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
            "# deb http://m.example/debian bookworm-backports main\n"
            "deb https://packages.vendor.example/apt cloud-sdk-bookworm main\n"
            "deb http://m.example/debian trixie main\n")
    assert images.debian_sources([("sources.list", text)]) == [
        "deb http://m.example/debian bookworm main"]


def test_disabled_deb822_stanza_is_ignored():
    text = "Enabled: no\nTypes: deb\nURIs: http://m.example/debian\nSuites: bookworm\n"
    assert images.debian_sources([("x.sources", text)]) == []


def test_mmdebstrap_command_is_minbase_with_the_lab_packages(tmp_path):
    mirrors = ["deb http://m.example/debian bookworm main"]
    cmd = images.bootstrap_command("mmdebstrap", tmp_path / "b.tar", mirrors)
    assert cmd[0] == "mmdebstrap" and "--variant=minbase" in cmd
    include = next(a for a in cmd if a.startswith("--include="))
    assert {"python3", "python3-venv", "iptables", "ca-certificates"} <= set(include[10:].split(","))
    assert cmd[-2:] == [str(tmp_path / "b.tar"), mirrors[0]]


def test_debootstrap_takes_the_first_mirror_uri(tmp_path):
    cmd = images.bootstrap_command("debootstrap", tmp_path, ["deb http://m.example/debian bookworm main"])
    assert cmd[0] == "debootstrap" and cmd[-1] == "http://m.example/debian"


# --- wheelhouse stamp --------------------------------------------------------

def test_stamp_changes_with_pyproject_and_target_python():
    a = images.wheelhouse_stamp(b"[project]\nname='x'\n")
    assert a == images.wheelhouse_stamp(b"[project]\nname='x'\n")
    assert a != images.wheelhouse_stamp(b"[project]\nname='y'\n")
    assert a != images.wheelhouse_stamp(b"[project]\nname='x'\n", (3, 12))


def test_wheelhouse_is_current_needs_the_same_stamp_and_some_wheels(tmp_path):
    stamp = images.wheelhouse_stamp(b"deps")
    assert not images.wheelhouse_is_current(tmp_path, stamp)
    (tmp_path / images.STAMP_NAME).write_text(stamp + "\n")
    assert not images.wheelhouse_is_current(tmp_path, stamp)  # no wheels yet
    (tmp_path / "h11-0.14.0-py3-none-any.whl").write_bytes(b"")
    assert images.wheelhouse_is_current(tmp_path, stamp)
    assert not images.wheelhouse_is_current(tmp_path, images.wheelhouse_stamp(b"other deps"))


# --- the real thing ----------------------------------------------------------

@pytest.mark.compose
@pytest.mark.slow
def test_the_lab_image_builds_and_imports_its_dependencies():
    if not images.docker_available():
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
