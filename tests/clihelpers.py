"""Helpers for the command-line tests: run ``python -m harness`` as a user does, check one-sentence errors."""

import os
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


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def lab_pids_under(state_dir):
    """Processes whose command line mentions ``state_dir`` (e.g. a prespawned proxy)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(state_dir) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return [p for p in pids if alive(p)]
