"""The lab's state directory (PKI, logs, ``lab.json``) and writable output directories."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from harness.errors import EnvironmentProblem

DEFAULT_STATE_DIR = ".lab"


def default_state_dir() -> Path:
    """``$HARNESS_STATE_DIR``, else ``.lab`` in the working directory."""
    return Path(os.environ.get("HARNESS_STATE_DIR", DEFAULT_STATE_DIR))


def prepare_state_dir(state_dir: str | Path) -> Path:
    """Create the state directory (0700), or say in one sentence why it cannot be used."""
    return writable_dir(state_dir, what="state directory", option="--state-dir", mode=0o700)


def writable_dir(path: str | Path, *, what: str, option: str, mode: int = 0o777) -> Path:
    """Create ``path`` and prove it writable, or raise EnvironmentProblem naming ``option``."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True, mode=mode)
        # A probe file of this call's own: two labs started at the same instant once shared one
        # name, and the second unlink failed ("not writable: No such file") instead of LabBusy.
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise EnvironmentProblem(
            f"the {what} {p} is not writable ({e.strerror or e}); pass {option} with a writable directory."
        ) from None
    return p


def run_state_dir(state_dir: str | Path, vendor: str | None = None) -> Path:
    """Where ``harness run``'s lab (``vendor``'s, with several) keeps its state, under ``state_dir``."""
    return Path(state_dir) / (f"run-{vendor}" if vendor else "run")


def read_state_file(path: str | Path, limit: int = 1 << 20) -> bytes:
    """The bytes of a small file the lab wrote into its state directory (``lab.json``, ``lab.lock``).

    Whatever is found there instead (a FIFO, a device, a symlink, a directory, a
    file larger than ``limit``) raises :class:`OSError` at once with the reason,
    never blocks and never reads without bound.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a symbolic link, not a file the lab wrote", str(path)) from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "a directory", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes")
        chunks, size = [], 0
        while chunk := os.read(fd, min(65536, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise OSError(errno.EFBIG, f"larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
