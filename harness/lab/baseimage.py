"""The offline Debian base image, for building the lab image where no registry answers.

:func:`ensure_base_image` makes ``tls-lab-base:bookworm``: a slim Debian
bookworm root file system bootstrapped with mmdebstrap (or debootstrap) from
the host's own apt mirror (:func:`host_debian_sources`), kept as a tarball in
``build/base/`` and ``docker import``-ed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable

from harness.errors import EnvironmentProblem
from harness.lab.docker import REPO_ROOT, Progress, image_exists, require_docker, shown, stream

BASE_TAG = "tls-lab-base:bookworm"
SUITE = "bookworm"
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
    # Wait for another apt run (unattended upgrades, a CI step) instead of failing on its lock.
    wait = ["-o", "DPkg::Lock::Timeout=300"]
    for step in (["apt-get", *wait, "update", "-q"], ["apt-get", *wait, "install", "-y", "-q", "mmdebstrap"]):
        stream(step, " ".join(step[:2]), progress, lambda _: False, env=env)
    return "mmdebstrap"


def _rootfs_tarball(progress: Progress) -> Path:
    """Build (or reuse) build/base/<suite>-<hash>.tar, a slim Debian root file system."""
    mirrors = host_debian_sources()
    key = hashlib.sha256(repr((SUITE, BASE_PACKAGES, SLIM_DPKG_OPTIONS, mirrors)).encode()).hexdigest()
    tarball = REPO_ROOT / "build" / "base" / f"{SUITE}-{key[:12]}.tar"
    if tarball.exists():
        progress(f"reusing root file system {shown(tarball)}")
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
        stream(bootstrap_command(tool, partial, mirrors), "mmdebstrap", progress, show)
    else:
        with tempfile.TemporaryDirectory(dir=tarball.parent) as root:
            stream(bootstrap_command(tool, Path(root), mirrors), "debootstrap", progress, show)
            for name in ("etc/resolv.conf", "etc/hostname"):
                Path(root, name).unlink(missing_ok=True)
            shutil.rmtree(Path(root, "var/cache/apt/archives"), ignore_errors=True)
            stream(["tar", "-C", root, "--exclude=./dev/*", "-cf", str(partial), "."],
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
    stream(["docker", "import", *(a for c in changes for a in ("--change", c)), str(tarball), tag],
           "docker import", progress, lambda _: False)
    progress(f"base image {tag} ready in {time.monotonic() - started:.0f}s")
    return tag
