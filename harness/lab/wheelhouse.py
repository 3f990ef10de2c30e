"""The host-built wheelhouse: the project and its dependencies as wheels for the image's Python.

:func:`build_wheelhouse` fills ``build/wheelhouse/`` with cp311 linux x86_64
wheels, so the image installs with ``pip --no-index`` and its build runs with
``--network none``.  The dependencies are collected again only when
``pyproject.toml`` or the target Python changes (:func:`wheelhouse_stamp`); the
project's own wheel is rebuilt every time, byte-identical for identical sources.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Callable

from harness.errors import EnvironmentProblem, LabError
from harness.lab.docker import REPO_ROOT, Progress, shown, stream

TARGET_PYTHON = (3, 11)  # Debian bookworm's python3
TARGET_GLIBC_MINOR = 36  # bookworm's glibc 2.36
STAMP_NAME = ".stamp"
PROJECT_WHEEL_GLOB = "tls_inspection_lab-*.whl"


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
    # fixtures/ too: pyproject.toml maps it into the wheel as harness/fixtures.
    for name in ("harness", "fixtures"):
        shutil.copytree(REPO_ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return src


def _collect_dependency_wheels(dest: Path, reqs: list[str], progress: Progress,
                               show: Callable[[str], bool]) -> None:
    """Put cp311 manylinux x86_64 wheels for ``reqs`` and everything they need into ``dest``."""
    python = (sys.executable if sys.version_info[:2] == TARGET_PYTHON
              else shutil.which("python%d.%d" % TARGET_PYTHON))
    if python and sys.platform == "linux" and platform.machine() == "x86_64":
        # This host's wheels are the image's: cp311, glibc (Debian here and there), x86_64.
        stream([python, "-m", "pip", "wheel", "--wheel-dir", str(dest), *reqs],
               "collecting the dependency wheels", progress, show)
        return
    progress(f"no Python {TARGET_PYTHON[0]}.{TARGET_PYTHON[1]} here: downloading binary wheels for it")
    # pip does not widen --platform to older manylinux tags: list them all.
    platforms = [f"manylinux_2_{m}_x86_64" for m in range(TARGET_GLIBC_MINOR, 4, -1)]
    try:
        stream([sys.executable, "-m", "pip", "download", "--dest", str(dest), "--only-binary=:all:",
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
        progress(f"dependency wheels in {shown(dest)} are up to date")
    else:
        for old in dest.glob("*.whl"):
            old.unlink()
        progress(f"collecting wheels for {len(deps)} dependencies into {shown(dest)}")
        _collect_dependency_wheels(dest, [*deps, *build_reqs], progress, show)
        (dest / STAMP_NAME).write_text(stamp + "\n")
    # The project's own wheel changes with every edit: rebuild it from a clean copy,
    # offline, from the build requirements in the wheelhouse.  A fixed
    # SOURCE_DATE_EPOCH makes it byte-identical for identical sources, and an
    # unchanged wheel is left in place (mtime included) so docker's cache still hits.
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "out")
        stream([*pip, "wheel", "--no-deps", "--no-index", "--find-links", str(dest),
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
