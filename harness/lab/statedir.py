"""The lab's state directory (PKI, logs, ``lab.json``) and writable output directories."""

from __future__ import annotations

import os
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
        probe = p / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise EnvironmentProblem(
            f"the {what} {p} is not writable ({e.strerror or e}); pass {option} with a writable directory."
        ) from None
    return p


def run_state_dir(state_dir: str | Path, vendor: str | None = None) -> Path:
    """Where ``harness run``'s lab (``vendor``'s, with several) keeps its state, under ``state_dir``."""
    return Path(state_dir) / (f"run-{vendor}" if vendor else "run")
