"""One lab per state directory: an exclusive ``flock`` on ``<state>/lab.lock``, held for the lab's life.

The process that owns a lab holds the lock: ``harness up`` (when detached, the
parent takes it and hands the open descriptor to the child, so there is no
moment in which a second ``up`` could slip in), ``harness run`` and the pytest
plugin for their own labs' state directories (:class:`harness.lab.local.LocalLab`
takes it on start).  The kernel drops the lock when the owner exits, however it
exits, so a crashed lab never blocks the next one.  A second lab in the same
directory gets :class:`LabBusy`: one sentence naming the running lab and how to
stop it.

The lock file also holds a small JSON record of its holder (pid, start time,
token, command, when): ``harness down`` finds the lab's processes from it when
``lab.json`` is gone or corrupt (:mod:`harness.lab.identity`).  The file is
never deleted (deleting a lock file lets two processes each lock "the" file).

Within one process the lock is re-entrant: ``harness up`` holds it, and the
early proxy and the lab it starts take it again, sharing one token; it is
released when the last holder releases it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import stat
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.lab.identity import ProcessRecord, new_token, state_marker
from harness.lab.statedir import prepare_state_dir, read_state_file

LOCK_FILE = "lab.lock"
# A busy lock is tried again this long: another 'harness down' may be probing it for an instant.
BUSY_RETRY = 0.2


@dataclass(frozen=True)
class Holder:
    """What the lock file says about the process holding it."""

    pid: int
    start: int | None
    token: str
    role: str  # "up" (stopped by 'harness down') or "lab" (harness run, the pytest plugin, a script)
    command: str
    since: float  # time.time() when it took the lock

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid}, '{self.command}', started {when}"


class LabBusy(UsageError):
    """Another process holds the state directory's lock."""

    def __init__(self, state_dir: Path, holder: Holder | None) -> None:
        self.state_dir, self.holder = state_dir, holder
        where = shlex.quote(str(state_dir))
        if holder is None:
            who = "another process is starting a lab there"
        else:
            who = f"a lab is running there ({holder.describe()})"
        if holder is not None and holder.role != "up":
            fix = f"it stops when that command ends; 'harness down --state-dir {where}' stops its processes"
        else:
            fix = f"stop it with 'harness down --state-dir {where}', or pass --replace"
        super().__init__(f"the state directory {state_dir} is in use: {who}; {fix}, or use another --state-dir.")


class _Hold:
    def __init__(self, fd: int, holder: Holder) -> None:
        self.fd, self.holder, self.count = fd, holder, 1


_held: dict[str, _Hold] = {}
_guard = threading.Lock()


class LabLock:
    """A reference to the state directory's lock; :meth:`release` it once (``with`` does)."""

    def __init__(self, state_dir: Path, key: str, hold: _Hold) -> None:
        self.state_dir, self._key, self._hold = state_dir, key, hold
        self.released = False

    def __repr__(self) -> str:
        return f"LabLock({str(self.state_dir)!r}, pid={self.holder.pid}, released={self.released})"

    @property
    def holder(self) -> Holder:
        return self._hold.holder

    @property
    def token(self) -> str:
        return self._hold.holder.token

    @property
    def fd(self) -> int:
        """The locked descriptor: pass it to a child that takes the lab over (``harness up --detach``)."""
        return self._hold.fd

    def release(self) -> None:
        """Drop this reference; the last one closes the descriptor, which frees the lock (unless a
        child it was handed to still has it open).  Never ``LOCK_UN``: that would unlock the child too."""
        with _guard:
            if self.released:
                return
            self.released = True
            self._hold.count -= 1
            if self._hold.count == 0:
                del _held[self._key]
                os.close(self._hold.fd)

    def __enter__(self) -> "LabLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / LOCK_FILE


# Descriptors one harness process hands another: not what a person typed.
_PLUMBING = ("--lock-fd", "--ready-fd")


def _command() -> str:
    """This process's command line as a person would recognise it (shortened)."""
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"]
    args = iter(sys.argv[1:])
    for a in args:
        if a in _PLUMBING:
            next(args, None)
        else:
            argv.append(a)
    if argv[0] in ("__main__.py", "-m", "-c"):
        argv[0] = "harness"
    return " ".join(argv)[:120]


def _write_holder(fd: int, holder: Holder) -> None:
    data = json.dumps(asdict(holder)).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def read_holder(state_dir: str | Path) -> Holder | None:
    """The record in the lock file, or None (no file, empty, not a record)."""
    try:
        data = json.loads(read_state_file(lock_path(state_dir), limit=4096))
        holder = Holder(**data)
    except (OSError, ValueError, TypeError):
        return None
    ok = (type(holder.pid) is int and (holder.start is None or type(holder.start) is int)
          and all(isinstance(v, str) for v in (holder.token, holder.role, holder.command))
          and isinstance(holder.since, (int, float)))
    return holder if ok else None


def _flock(fd: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)  # flock has no timeout of its own; short retries, bounded by `wait`


def acquire(state_dir: str | Path, *, role: str = "lab", token: str | None = None,
            wait: float = BUSY_RETRY) -> LabLock:
    """Lock ``state_dir`` (created 0700 if missing) for a lab; raises :class:`LabBusy` if another
    process holds it after ``wait`` seconds.  Re-entrant within this process (same token)."""
    state = prepare_state_dir(state_dir)
    key = state_marker(state)
    with _guard:
        if key in _held:
            _held[key].count += 1
            return LabLock(state, key, _held[key])
        try:
            fd = os.open(lock_path(state), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise OSError(errno.EINVAL, "not a regular file")
        except OSError as e:
            raise UsageError(f"cannot open the lock file {lock_path(state)} ({e.strerror or e}); "
                             f"pass --state-dir with a directory of your own.") from None
        if not _flock(fd, wait):
            os.close(fd)
            raise LabBusy(state, _busy_holder(state))
        me = ProcessRecord.of(os.getpid())
        holder = Holder(pid=me.pid, start=me.start, token=token or new_token(), role=role,
                        command=_command(), since=time.time())
        _write_holder(fd, holder)
        _held[key] = _Hold(fd, holder)
        return LabLock(state, key, _held[key])


def adopt(fd: int, state_dir: str | Path, *, token: str, role: str = "up") -> LabLock:
    """Take over the lock a parent handed down as descriptor ``fd`` (``harness up --detach``);
    records this process as the holder.  A descriptor that is not ``state_dir``'s lock is a usage error."""
    state = Path(state_dir)
    key = state_marker(state)
    if not token:
        raise UsageError("--lock-fd is for 'harness up --detach' only (no lab token in the environment).")
    try:
        mine, theirs = os.fstat(fd), os.stat(lock_path(state))
        same = (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)
        # The same open file description already holds the lock: this succeeds at once, or it is not ours.
        same = same and _flock(fd, 0)
    except OSError:
        same = False
    if not same:
        raise UsageError(f"descriptor {fd} is not the lock of {state}; --lock-fd is for 'harness up --detach' only.")
    os.set_inheritable(fd, False)
    me = ProcessRecord.of(os.getpid())
    holder = Holder(pid=me.pid, start=me.start, token=token, role=role, command=_command(), since=time.time())
    _write_holder(fd, holder)
    with _guard:
        _held[key] = _Hold(fd, holder)
        return LabLock(state, key, _held[key])


def _busy_holder(state: Path) -> Holder | None:
    """The holder's record; it may be a moment late when two labs start at the same instant."""
    deadline = time.monotonic() + 1.0
    while (holder := read_holder(state)) is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the winner writes its record right after locking
    return holder


def is_locked(state_dir: str | Path) -> bool:
    """True if some process holds the state directory's lock (probed without keeping it)."""
    try:
        fd = os.open(lock_path(state_dir), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's shared lock
