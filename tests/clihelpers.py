"""Helpers for the command-line tests: run ``python -m harness`` as a user does, check one-sentence errors."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def harness(*args, timeout=120, **kw):
    """Run ``python -m harness ARGS`` from the repository root; the completed process, output captured."""
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL, **kw)


def assert_one_sentence_error(proc, code):
    """The process exited with ``code`` and said why in one line of stderr, without a traceback."""
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    # Progress lines ("Starting the local lab...") may precede it; the error is one line.
    lines = [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith("Starting ")]
    assert len(lines) == 1, proc.stderr
