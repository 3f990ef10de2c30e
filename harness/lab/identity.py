"""Which processes are a lab's: a token in their environment and their start time, read from /proc.

A pid alone says nothing: after a crash and a while, the pid ``lab.json``
names may belong to ``tail -F``, an editor or another lab.  So every process a
lab spawns carries two variables no stranger has::

    HARNESS_LAB_TOKEN=<random, per lab>     HARNESS_LAB_STATE=<the state directory, absolute>

and the lab records ``(pid, start)`` at spawn, ``start`` being the process's
start time in clock ticks since boot (``/proc/PID/stat`` field 22), which a
reused pid does not repeat.  :func:`matches` checks both before anything is
signalled; :func:`scan` finds a lab's processes when ``lab.json`` is gone or
corrupt.  The lab's owner (a foreground ``harness up``, whose environment the
lab did not choose) is recognised instead by holding the state directory's
lock (:func:`holds_flock`).

Linux /proc is required to tell; without it nothing is recognised, and the
callers say so.  A process of another user is not readable, so not recognised.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "HARNESS_LAB_TOKEN"
STATE_ENV = "HARNESS_LAB_STATE"
PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessRecord:
    """A process as the lab recorded it at spawn: pid and start time (None without /proc)."""

    pid: int
    start: int | None

    @classmethod
    def of(cls, pid: int) -> "ProcessRecord":
        return cls(pid, start_time(pid))

    @classmethod
    def from_dict(cls, data: object) -> "ProcessRecord":
        """The inverse of ``asdict``; raises TypeError for anything but ``{"pid": int, "start": int|None}``."""
        if not isinstance(data, dict) or set(data) != {"pid", "start"}:
            raise TypeError(f"a process is {{pid, start}}, not {data!r:.60}")
        pid, start = data["pid"], data["start"]
        if type(pid) is not int or pid < 1 or not (start is None or (type(start) is int and start >= 0)):
            raise TypeError(f"a process has a positive integer pid and start, not {data!r:.60}")
        return cls(pid, start)


def new_token() -> str:
    """A fresh lab token: 128 random bits, hex."""
    return secrets.token_hex(16)


def state_marker(state_dir: str | Path) -> str:
    """The state directory as every lab process carries it: absolute, symlinks resolved."""
    return os.path.realpath(os.path.abspath(state_dir))


def lab_environment(token: str, state_dir: str | Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) plus the lab's two variables."""
    env = dict(os.environ if base is None else base)
    env[TOKEN_ENV] = token
    env[STATE_ENV] = state_marker(state_dir)
    return env


def procfs_available() -> bool:
    return (PROC / "self" / "stat").exists()


def start_time(pid: int) -> int | None:
    """Clock ticks after boot at which ``pid`` started, or None (gone, or no /proc)."""
    try:
        stat = (PROC / str(pid) / "stat").read_bytes()
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        return int(stat.rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def environment_of(pid: int) -> dict[bytes, bytes] | None:
    """The environment ``pid`` was started with, or None (gone, another user's, no /proc)."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep:
            env[name] = value
    return env


def carries(pid: int, *, token: str | None = None, state: str | None = None) -> bool:
    """True if ``pid``'s environment has the lab ``token`` (or, with ``state``, a lab token for
    that state directory)."""
    env = environment_of(pid)
    if not env or TOKEN_ENV.encode() not in env:
        return False
    if token is not None and env[TOKEN_ENV.encode()] != token.encode():
        return False
    return state is None or env.get(STATE_ENV.encode()) == state.encode()


def holds_flock(pid: int, path: str | Path) -> bool:
    """True if ``pid`` holds an exclusive flock on ``path`` (not merely has it open, as ``tail -F`` would)."""
    try:
        target = os.stat(path)
        fds = os.listdir(PROC / str(pid) / "fd")
    except OSError:
        return False
    for fd in fds:
        try:
            st = os.stat(PROC / str(pid) / "fd" / fd)
            if (st.st_dev, st.st_ino) != (target.st_dev, target.st_ino):
                continue
            # fdinfo lists the locks this open file description itself owns.
            info = (PROC / str(pid) / "fdinfo" / fd).read_text()
        except OSError:
            continue
        if any(line.startswith("lock:") and " FLOCK " in line and " WRITE " in line for line in info.splitlines()):
            return True
    return False


def matches(record: ProcessRecord, *, token: str | None = None, lock: str | Path | None = None) -> bool:
    """True if the process ``record`` names still runs, started when recorded, and is the lab's:
    it carries ``token``, or holds the flock on ``lock`` (the lab's owner)."""
    if record.start is None or start_time(record.pid) != record.start:
        return False
    return bool((token and carries(record.pid, token=token)) or (lock and holds_flock(record.pid, lock)))


def scan(*, token: str | None = None, state: str | None = None) -> list[ProcessRecord]:
    """Every process (but this one) carrying ``token``, or a lab token for ``state``."""
    if token is None and state is None:
        raise ValueError("scan needs a token or a state directory")
    found = []
    for entry in PROC.iterdir() if procfs_available() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        if (token and carries(pid, token=token)) or (state and carries(pid, state=state)):
            record = ProcessRecord.of(pid)
            if record.start is not None:
                found.append(record)
    return found
