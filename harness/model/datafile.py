"""The lab's data files (scenarios, policies, vendors, client definitions): where they are, reading them as TOML."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from harness.errors import BadFileError


def read_toml(path: str | Path, *, missing_hint: str) -> dict:
    """Parse a TOML file, or raise :class:`BadFileError` with one sentence.

    ``missing_hint`` finishes the sentence for a missing file, e.g.
    ``"pass an existing scenario file"``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise BadFileError(f"{path} does not exist; {missing_hint}.") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BadFileError(f"{path} is not valid TOML ({e}); fix the file.") from None


def fixtures_dir() -> Path:
    """Where the scenario data lives: ``$HARNESS_FIXTURES``, else the project's ``fixtures/``."""
    env = os.environ.get("HARNESS_FIXTURES")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "fixtures", Path.cwd() / "fixtures"]
    for c in candidates:
        if (c / "scenarios.toml").is_file():
            return c
    raise BadFileError(
        "cannot find the lab's fixtures (scenarios.toml); run from the project checkout or set HARNESS_FIXTURES."
    )
