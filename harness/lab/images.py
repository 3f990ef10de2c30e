"""Building the lab's container image, with or without a registry.

The repository's ``Dockerfile`` takes ``BASE_IMAGE`` (default
``python:3.11-slim-bookworm``) and ``PIP_OFFLINE``.  Where that base can be
found or pulled, :func:`build_image` builds on it as usual.  Where no registry
answers (an air-gapped lab), it builds the pieces on the host instead:

* :func:`harness.lab.baseimage.ensure_base_image` – a Debian bookworm root file
  system made with mmdebstrap (or debootstrap) from the host's own apt mirror,
  ``docker import``-ed as ``tls-lab-base:bookworm``;
* :func:`harness.lab.wheelhouse.build_wheelhouse` – cp311 wheels of the project
  and its dependencies in ``build/wheelhouse/``, so the image installs with
  ``pip --no-index`` and the build runs with ``--network none``.

Docker without buildx gets the legacy builder (``DOCKER_BUILDKIT=0``); finding
Docker and running the commands is :mod:`harness.lab.docker`.  Every failure is
a :class:`~harness.errors.LabError` with one sentence for a person.

Command line (progress on stderr, prefixed ``[images]``)::

    harness images build [--base-image IMAGE] [--offline] [--tag TAG]   (or python -m harness.lab.images)
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from harness.errors import ArgumentParser, EnvironmentProblem, LabError, UsageError
from harness.lab.baseimage import BASE_TAG, ensure_base_image
from harness.lab.composeenv import DEFAULT_IMAGE, image_tag
from harness.lab.docker import (
    REPO_ROOT,
    Progress,
    buildx_available,
    image_exists,
    pull_image,
    require_docker,
    stream,
    use_buildkit,
)
from harness.lab.wheelhouse import build_wheelhouse

ONLINE_BASE = "python:3.11-slim-bookworm"
IMAGE_TAG = DEFAULT_IMAGE


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


def build_image(tag: str | None = None, base_image: str | None = None, offline: bool | None = None,
                progress: Progress = print) -> str:
    """Build the lab image ``tag`` and return it.

    ``offline=None`` uses the online base (``base_image`` or python:3.11-slim-bookworm)
    when it is local or can be pulled, and otherwise goes offline; ``offline=True``
    always installs from the wheelhouse onto ``base_image`` or the offline base.
    ``tag=None`` is the image compose.yaml runs: ``$LAB_IMAGE`` or tls-lab:latest.
    """
    tag = tag or image_tag()
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
    stream(docker_build_command(tag, base, offline=offline, buildkit=buildkit),
           "docker build", progress, _build_progress, env=env)
    progress(f"image {tag} built in {time.monotonic() - started:.0f}s")
    return tag


# --- command line ------------------------------------------------------------

def _stderr_progress(line: str) -> None:
    print(f"[images] {line}", file=sys.stderr, flush=True)


def build_parser(prog: str = "harness images") -> ArgumentParser:
    """The command line of ``harness images`` (also ``python -m harness.lab.images``)."""
    parser = ArgumentParser(prog=prog, description="Build the compose lab's container image: on the python base "
                            "image where a registry answers, else offline (a Debian base made with mmdebstrap "
                            "and a wheelhouse).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=ArgumentParser)
    build = sub.add_parser("build", help="build the lab image, offline if no registry answers",
                           description="Build the lab image ($LAB_IMAGE or tls-lab:latest), offline if no registry answers.")
    build.add_argument("--tag", help=f"image tag (default $LAB_IMAGE, else {IMAGE_TAG}: the image compose.yaml runs)")
    build.add_argument("--base-image", help=f"base image (default {ONLINE_BASE}, else {BASE_TAG})")
    build.add_argument("--offline", action="store_true", default=None,
                       help="install from the host-built wheelhouse without trying a registry")
    return parser


def main(argv: list[str] | None = None, *, prog: str = "harness images") -> int:
    """``harness images build [--base-image X] [--offline] [--tag T]``; a mistake is one sentence, exit 2."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_code
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
    sys.exit(main(prog="python -m harness.lab.images"))
