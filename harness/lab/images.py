"""Building the lab's container images, with or without a registry.

The repository's ``Dockerfile`` takes ``BASE_IMAGE`` (default
``python:3.11-slim-bookworm``) and ``PIP_OFFLINE``.  Where that base can be
found or pulled, :func:`build_image` builds on it as usual.  Where no registry
answers (an air-gapped lab), it builds the pieces on the host instead:

* :func:`ensure_base_image` – a Debian bookworm root file system made with
  mmdebstrap (or debootstrap) from the host's own apt mirror, ``docker import``-ed
  as ``tls-lab-base:bookworm``;
* :func:`build_wheelhouse` – cp311 wheels of the project and its dependencies
  in ``build/wheelhouse/``, so the image installs with ``pip --no-index`` and the
  build runs with ``--network none``.

Docker without buildx gets the legacy builder (``DOCKER_BUILDKIT=0``).  Every
failure is a :class:`~harness.errors.LabError` with one sentence for a person.

Command line (progress on stderr, prefixed ``[images]``)::

    python -m harness.lab.images build [--base-image IMAGE] [--offline] [--tag TAG]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Callable, Iterable, Mapping

from harness.errors import EnvironmentProblem, LabError

REPO_ROOT = Path(__file__).resolve().parents[2]
ONLINE_BASE = "python:3.11-slim-bookworm"
BASE_TAG = "tls-lab-base:bookworm"
IMAGE_TAG = "tls-lab:latest"
SUITE = "bookworm"
TARGET_PYTHON = (3, 11)  # Debian bookworm's python3
TARGET_GLIBC_MINOR = 36  # bookworm's glibc 2.36
BASE_PACKAGES = (
    "python3", "python3-venv", "python3-pip", "ca-certificates",
    "iproute2", "iptables", "curl", "procps",
)
# Leave out manuals, translations and most documentation (as Debian's slim images do).
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
STAMP_NAME = ".stamp"
PROJECT_WHEEL_GLOB = "tls_inspection_lab-*.whl"

Progress = Callable[[str], None]


def _shown(path: Path) -> str:
    """A path as a person wants to read it: relative to the repository when inside it."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _run(cmd: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a short command and capture its output; a missing program gives exit 127."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return subprocess.CompletedProcess(cmd, 127, "", f"{cmd[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", f"{cmd[0]}: timed out after {timeout:g}s")


def _stream(cmd: list[str], what: str, progress: Progress, show: Callable[[str], bool],
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


# --- Docker ------------------------------------------------------------------

def docker_available() -> bool:
    """True when the docker CLI is installed and a Docker engine answers it."""
    return _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20).returncode == 0


def require_docker() -> None:
    """Raise EnvironmentProblem unless a Docker engine answers."""
    if shutil.which("docker") is None:
        raise EnvironmentProblem("the docker command is not installed; install Docker Engine "
                                 "or use --lab local.")
    if not docker_available():
        raise EnvironmentProblem("no Docker engine answers; start dockerd or use --lab local.")


def compose_command() -> list[str]:
    """The Compose command line: ``docker compose`` (v2) if it works, else ``docker-compose``."""
    if shutil.which("docker") and _run(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise EnvironmentProblem("neither 'docker compose' nor 'docker-compose' is available; "
                             "install Docker Compose (the plugin or docker-compose v1).")


def buildx_available() -> bool:
    """True when the docker CLI has the buildx plugin (BuildKit builds)."""
    return _run(["docker", "buildx", "version"]).returncode == 0


def use_buildkit(buildx: bool, environ: Mapping[str, str]) -> bool:
    """Whether ``docker build`` should use BuildKit: only with buildx, and not if the user said 0."""
    return buildx and environ.get("DOCKER_BUILDKIT", "1").strip() != "0"


def image_exists(tag: str) -> bool:
    """True when the local Docker engine has an image called ``tag``."""
    return _run(["docker", "image", "inspect", tag], timeout=20).returncode == 0


def pull_image(tag: str, timeout: float = 30) -> bool:
    """Try ``docker pull tag`` for at most ``timeout`` seconds; True when it worked."""
    return _run(["docker", "pull", "--quiet", tag], timeout=timeout).returncode == 0


# --- the offline Debian base image -------------------------------------------

def debian_sources(files: Iterable[tuple[str, str]], suite: str = SUITE) -> list[str]:
    """One-line apt entries (``deb URI SUITE COMPONENTS``) for ``suite`` and its
    -updates/-security suites, parsed from ``(file name, text)`` pairs in either
    the one-line (``.list``) or the deb822 (``.sources``) format."""
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    entries: list[str] = []

    def add(types: list[str], uris: list[str], suites: list[str], comps: list[str]) -> None:
        for uri in uris:
            for s in suites:
                line = f"deb {uri} {s} {' '.join(comps or ['main'])}"
                if "deb" in types and s in wanted and line not in entries:
                    entries.append(line)

    for name, text in files:
        # Whole-line comments go (a blank line would split a deb822 stanza).
        lines = [ln.rstrip() for ln in text.splitlines() if not ln.lstrip().startswith("#")]
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", "\n".join(lines)):
                fields = dict(re.findall(r"^(\S+):[ \t]*(.*)$", stanza, re.M))
                if fields.get("Enabled", "yes").strip().lower() == "no":
                    continue
                add(*(fields.get(k, "").split() for k in ("Types", "URIs", "Suites", "Components")))
        else:
            for ln in lines:
                words = re.sub(r"\[[^]]*\]", "", ln).split()  # drop [options]
                if len(words) >= 3:
                    add([words[0]], [words[1]], [words[2]], words[3:])
    return entries


def host_debian_sources(suite: str = SUITE) -> list[str]:
    """The host's configured Debian mirrors for ``suite`` (as apt reads them)."""
    paths = [Path("/etc/apt/sources.list")]
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        paths += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    files = [(p.name, p.read_text(errors="replace")) for p in paths if p.is_file()]
    return debian_sources(files, suite)


def bootstrap_command(tool: str, target: Path, mirrors: list[str], suite: str = SUITE) -> list[str]:
    """The mmdebstrap (tarball ``target``) or debootstrap (directory ``target``) command line."""
    include = "--include=" + ",".join(BASE_PACKAGES)
    if tool == "mmdebstrap":
        return ["mmdebstrap", "--variant=minbase", "--format=tar", include,
                *(f"--dpkgopt={o}" for o in SLIM_DPKG_OPTIONS),
                # Docker provides these at run time; the host's copies would leak in.
                '--customize-hook=rm -f "$1/etc/resolv.conf" "$1/etc/hostname"',
                suite, str(target), *mirrors]
    mirror = mirrors[0].split()[1] if mirrors else "http://deb.debian.org/debian"
    return ["debootstrap", "--variant=minbase", include, suite, str(target), mirror]


def _bootstrap_tool(progress: Progress) -> str:
    """mmdebstrap or debootstrap, installing mmdebstrap with apt-get when neither is there."""
    for tool in ("mmdebstrap", "debootstrap"):
        if shutil.which(tool):
            return tool
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise EnvironmentProblem("building the offline base image needs mmdebstrap or debootstrap; "
                                 "install one (apt-get install mmdebstrap) and retry as root.")
    progress("installing mmdebstrap with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "mmdebstrap"]):
        _stream(step, " ".join(step[:2]), progress, lambda _: False, env=env)
    return "mmdebstrap"


def _rootfs_tarball(progress: Progress) -> Path:
    """Build (or reuse) build/base/<suite>-<hash>.tar, a slim Debian root file system."""
    mirrors = host_debian_sources()
    key = hashlib.sha256(repr((SUITE, BASE_PACKAGES, SLIM_DPKG_OPTIONS, mirrors)).encode()).hexdigest()
    tarball = REPO_ROOT / "build" / "base" / f"{SUITE}-{key[:12]}.tar"
    if tarball.exists():
        progress(f"reusing root file system {_shown(tarball)}")
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    tool = _bootstrap_tool(progress)
    progress(f"bootstrapping Debian {SUITE} with {tool} from "
             f"{', '.join(sorted({m.split()[1] for m in mirrors})) or 'the default mirror'}")
    partial = tarball.with_suffix(".partial.tar")
    partial.unlink(missing_ok=True)  # left by an interrupted run
    show = lambda line: line.startswith(("I: running", "I: downloading", "I: creating", "I: success",
                                         "I: Retrieving", "I: Base system", "E:", "W:"))
    if tool == "mmdebstrap":
        _stream(bootstrap_command(tool, partial, mirrors), "mmdebstrap", progress, show)
    else:
        with tempfile.TemporaryDirectory(dir=tarball.parent) as root:
            _stream(bootstrap_command(tool, Path(root), mirrors), "debootstrap", progress, show)
            for name in ("etc/resolv.conf", "etc/hostname"):
                Path(root, name).unlink(missing_ok=True)
            shutil.rmtree(Path(root, "var/cache/apt/archives"), ignore_errors=True)
            _stream(["tar", "-C", root, "--exclude=./dev/*", "-cf", str(partial), "."],
                    "packing the root file system", progress, lambda _: False)
    partial.replace(tarball)
    return tarball


def ensure_base_image(tag: str = BASE_TAG, progress: Progress = print) -> str:
    """Make sure the offline Debian base image ``tag`` exists locally and return its tag.

    An existing image is reused.  Otherwise a bookworm root file system with
    python3, python3-venv, python3-pip, ca-certificates, iproute2, iptables, curl
    and procps is bootstrapped from the host's apt mirror and ``docker import``-ed.
    """
    require_docker()
    if image_exists(tag):
        progress(f"reusing base image {tag}")
        return tag
    started = time.monotonic()
    tarball = _rootfs_tarball(progress)
    progress(f"importing {tarball.name} as {tag}")
    changes = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]']
    _stream(["docker", "import", *(a for c in changes for a in ("--change", c)), str(tarball), tag],
            "docker import", progress, lambda _: False)
    progress(f"base image {tag} ready in {time.monotonic() - started:.0f}s")
    return tag


# --- the wheelhouse ----------------------------------------------------------

def wheelhouse_stamp(pyproject: bytes, python: tuple[int, int] = TARGET_PYTHON) -> str:
    """The identity of a dependency set: pyproject.toml's bytes and the target Python."""
    return hashlib.sha256(pyproject + f"\ncp{python[0]}{python[1]}".encode()).hexdigest()


def wheelhouse_is_current(dest: Path, stamp: str) -> bool:
    """True when ``dest`` holds wheels built for exactly this ``stamp``."""
    f = dest / STAMP_NAME
    return f.is_file() and f.read_text().strip() == stamp and any(dest.glob("*.whl"))


def _project_source(tmp: Path) -> Path:
    """A clean copy of what the project's wheel is built from (no stale build/ leftovers)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO_ROOT / name).is_file():
            shutil.copy2(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "harness", src / "harness",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return src


def _collect_dependency_wheels(dest: Path, reqs: list[str], progress: Progress,
                               show: Callable[[str], bool]) -> None:
    """Put cp311 manylinux x86_64 wheels for ``reqs`` and everything they need into ``dest``."""
    python = (sys.executable if sys.version_info[:2] == TARGET_PYTHON
              else shutil.which("python%d.%d" % TARGET_PYTHON))
    if python and sys.platform == "linux" and platform.machine() == "x86_64":
        # This host's wheels are the image's: cp311, glibc (Debian here and there), x86_64.
        _stream([python, "-m", "pip", "wheel", "--wheel-dir", str(dest), *reqs],
                "collecting the dependency wheels", progress, show)
        return
    progress(f"no Python {TARGET_PYTHON[0]}.{TARGET_PYTHON[1]} here: downloading binary wheels for it")
    # pip does not widen --platform to older manylinux tags: list them all.
    platforms = [f"manylinux_2_{m}_x86_64" for m in range(TARGET_GLIBC_MINOR, 4, -1)]
    try:
        _stream([sys.executable, "-m", "pip", "download", "--dest", str(dest), "--only-binary=:all:",
                 "--python-version", "%d.%d" % TARGET_PYTHON, "--implementation", "cp",
                 "--abi", "cp%d%d" % TARGET_PYTHON, *(a for p in platforms for a in ("--platform", p)),
                 *reqs], "downloading the dependency wheels", progress, show)
    except LabError as exc:
        # pip cannot build an sdist-only dependency (mitmproxy 11 pins pyperclip 1.9.0) for
        # another interpreter; a real 3.11 can.
        raise EnvironmentProblem(f"{str(exc).rstrip('.')}; a dependency may exist only as source, so install "
                                 "python3.11 (Debian: apt-get install python3.11 python3-pip) "
                                 "and retry.") from None


def build_wheelhouse(dest: str | Path = "build/wheelhouse", progress: Progress = print) -> Path:
    """Fill ``dest`` (relative to the repository) with cp311 linux x86_64 wheels of the
    project and all its dependencies; the dependencies are skipped when up to date."""
    dest = Path(dest) if Path(dest).is_absolute() else REPO_ROOT / dest
    dest.mkdir(parents=True, exist_ok=True)
    pyproject = (REPO_ROOT / "pyproject.toml").read_bytes()
    meta = tomllib.loads(pyproject.decode())
    deps = list(meta["project"].get("dependencies", []))
    build_reqs = list(meta.get("build-system", {}).get("requires", ["setuptools", "wheel"]))
    stamp = wheelhouse_stamp(pyproject)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    show = lambda line: line.startswith(("Collecting", "Building wheel", "ERROR"))
    started = time.monotonic()
    if wheelhouse_is_current(dest, stamp):
        progress(f"dependency wheels in {_shown(dest)} are up to date")
    else:
        for old in dest.glob("*.whl"):
            old.unlink()
        progress(f"collecting wheels for {len(deps)} dependencies into {_shown(dest)}")
        _collect_dependency_wheels(dest, [*deps, *build_reqs], progress, show)
        (dest / STAMP_NAME).write_text(stamp + "\n")
    # The project's own wheel changes with every edit: rebuild it from a clean copy,
    # offline, from the build requirements in the wheelhouse.  A fixed
    # SOURCE_DATE_EPOCH makes it byte-identical for identical sources, and an
    # unchanged wheel is left in place (mtime included) so docker's cache still hits.
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "out")
        _stream([*pip, "wheel", "--no-deps", "--no-index", "--find-links", str(dest),
                 "--wheel-dir", str(out), str(_project_source(Path(tmp)))],
                "building the project's wheel", progress, show, env=env)
        (new,) = out.glob(PROJECT_WHEEL_GLOB)
        old = list(dest.glob(PROJECT_WHEEL_GLOB))
        if [p.read_bytes() for p in old] != [new.read_bytes()]:
            for p in old:
                p.unlink()
            shutil.copy2(new, dest / new.name)
    progress(f"wheelhouse ready: {len(list(dest.glob('*.whl')))} wheels "
             f"in {time.monotonic() - started:.0f}s")
    return dest


# --- the lab image -----------------------------------------------------------

def docker_build_command(tag: str, base_image: str, *, offline: bool, buildkit: bool,
                         context: Path = REPO_ROOT) -> list[str]:
    """The ``docker build`` command line; offline builds get no network at all."""
    cmd = ["docker", "build", "--tag", tag, "--build-arg", f"BASE_IMAGE={base_image}",
           "--build-arg", f"PIP_OFFLINE={1 if offline else 0}"]
    if offline:
        cmd += ["--network", "none"]
    if buildkit:
        cmd += ["--progress", "plain"]
    return [*cmd, str(context)]


def _build_progress(line: str) -> bool:
    """Lines of ``docker build`` output worth showing: the steps and the result."""
    return bool(re.match(r"(Step \d+/\d+ :|#\d+ \[|Successfully (built|tagged)|ERROR|naming to)", line))


def _base_available(image: str, progress: Progress) -> bool:
    if image_exists(image):
        return True
    progress(f"trying to pull {image}")
    return pull_image(image)


def build_image(tag: str = IMAGE_TAG, base_image: str | None = None, offline: bool | None = None,
                progress: Progress = print) -> str:
    """Build the lab image ``tag`` and return it.

    ``offline=None`` uses the online base (``base_image`` or python:3.11-slim-bookworm)
    when it is local or can be pulled, and otherwise goes offline; ``offline=True``
    always installs from the wheelhouse onto ``base_image`` or the offline base.
    """
    require_docker()
    if offline is None or offline is False:
        online_base = base_image or ONLINE_BASE
        if _base_available(online_base, progress):
            base, offline = online_base, False
        elif offline is False or base_image is not None:
            raise EnvironmentProblem(f"base image {online_base} is neither local nor pullable; "
                                     "build without --base-image to use the offline Debian base.")
        else:
            progress(f"{online_base} cannot be pulled; building offline")
            offline = True
    if offline:
        base = base_image or ensure_base_image(progress=progress)
        build_wheelhouse(progress=progress)
    else:
        (REPO_ROOT / "build" / "wheelhouse").mkdir(parents=True, exist_ok=True)
    buildkit = use_buildkit(buildx_available(), os.environ)
    env = {**os.environ, "DOCKER_BUILDKIT": "1" if buildkit else "0"}
    progress(f"building {tag} on {base} ({'offline wheelhouse' if offline else 'online'}, "
             f"{'BuildKit' if buildkit else 'legacy builder'})")
    started = time.monotonic()
    _stream(docker_build_command(tag, base, offline=offline, buildkit=buildkit),
            "docker build", progress, _build_progress, env=env)
    progress(f"image {tag} built in {time.monotonic() - started:.0f}s")
    return tag


# --- command line ------------------------------------------------------------

def _stderr_progress(line: str) -> None:
    print(f"[images] {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.lab.images build [--base-image X] [--offline] [--tag T]``."""
    parser = argparse.ArgumentParser(prog="python -m harness.lab.images",
                                     description="Build the lab's container images.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the lab image, offline if no registry answers")
    build.add_argument("--tag", default=IMAGE_TAG, help=f"image tag (default {IMAGE_TAG})")
    build.add_argument("--base-image", help=f"base image (default {ONLINE_BASE}, else {BASE_TAG})")
    build.add_argument("--offline", action="store_true", default=None,
                       help="install from the host-built wheelhouse without trying a registry")
    args = parser.parse_args(argv)
    try:
        build_image(tag=args.tag, base_image=args.base_image, offline=args.offline,
                    progress=_stderr_progress)
    except LabError as exc:
        _stderr_progress(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _stderr_progress("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
