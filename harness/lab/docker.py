"""Docker and the commands around it, for the image build and the compose lab.

* finding Docker (:func:`require_docker`) and the Compose command, v2
  ``docker compose`` or v1 ``docker-compose`` (:func:`compose_command`);
* asking the engine about images and builders (:func:`image_exists`,
  :func:`pull_image`, :func:`buildx_available`, :func:`use_buildkit`);
* running a short command for its answer (:func:`capture`) and a long one
  with its progress shown (:func:`stream`), where a failure is a
  :class:`~harness.errors.LabError` with one sentence for a person;
* :data:`REPO_ROOT`, the repository the builds work in (docker's build context,
  ``build/`` for what they make).
"""

from __future__ import annotations

import collections
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Mapping

from harness.errors import EnvironmentProblem, LabError

REPO_ROOT = Path(__file__).resolve().parents[2]

Progress = Callable[[str], None]


def shown(path: Path) -> str:
    """A path as a person wants to read it: relative to the repository when inside it."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def capture(cmd: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a short command and capture its output; a missing program gives exit 127."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return subprocess.CompletedProcess(cmd, 127, "", f"{cmd[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", f"{cmd[0]}: timed out after {timeout:g}s")


def stream(cmd: list[str], what: str, progress: Progress, show: Callable[[str], bool],
           *, env: Mapping[str, str] | None = None) -> None:
    """Run a long command, pass the lines ``show`` accepts to ``progress``, raise on failure."""
    tail: collections.deque[str] = collections.deque(maxlen=20)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=None if env is None else dict(env), bufsize=1)
    except FileNotFoundError:
        raise EnvironmentProblem(f"{what} needs {cmd[0]!r}, which is not installed.") from None
    assert proc.stdout is not None
    with proc:
        for raw in proc.stdout:
            line = raw.rstrip()
            if line:
                tail.append(line)
                if show(line):
                    progress(line)
    if proc.returncode != 0:
        # pip, apt and mmdebstrap put the cause first ("ERROR: ...", "E: ..."), docker last.
        why = next((t for t in tail if t.startswith(("ERROR", "E:"))), tail[-1] if tail else "")
        raise LabError(f"{what} failed (exit {proc.returncode}): "
                       f"{why.strip().rstrip('.') or 'no output'}.")


def docker_available() -> bool:
    """True when the docker CLI is installed and a Docker engine answers it."""
    return capture(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20).returncode == 0


def require_docker() -> None:
    """Raise EnvironmentProblem unless a Docker engine answers."""
    if shutil.which("docker") is None:
        raise EnvironmentProblem("the docker command is not installed; install Docker Engine "
                                 "or use --lab local.")
    if not docker_available():
        raise EnvironmentProblem("no Docker engine answers; start dockerd or use --lab local.")


def compose_command() -> list[str]:
    """The Compose command line: ``docker compose`` (v2) if it works, else ``docker-compose``."""
    if shutil.which("docker") and capture(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise EnvironmentProblem("neither 'docker compose' nor 'docker-compose' is available; "
                             "install Docker Compose (the plugin or docker-compose v1).")


def buildx_available() -> bool:
    """True when the docker CLI has the buildx plugin (BuildKit builds)."""
    return capture(["docker", "buildx", "version"]).returncode == 0


def use_buildkit(buildx: bool, environ: Mapping[str, str]) -> bool:
    """Whether ``docker build`` should use BuildKit: only with buildx, and not if the user said 0."""
    return buildx and environ.get("DOCKER_BUILDKIT", "1").strip() != "0"


def image_exists(tag: str) -> bool:
    """True when the local Docker engine has an image called ``tag``."""
    return capture(["docker", "image", "inspect", tag], timeout=20).returncode == 0


def pull_image(tag: str, timeout: float = 30) -> bool:
    """Try ``docker pull tag`` for at most ``timeout`` seconds; True when it worked."""
    return capture(["docker", "pull", "--quiet", tag], timeout=timeout).returncode == 0
