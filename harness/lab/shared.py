"""One lab for several processes: the first starts it, the others attach, the last one out stops it.

pytest-xdist runs a session's tests in worker processes, and each would start a
lab of its own (its own proxy, PKI and ports) where one does.  :func:`shared_lab`
follows pytest-xdist's documented recipe for session-wide data: a file lock in a
directory every worker of the session shares, and a registry file beside it::

    ROOT/tls-lab.lock    an fcntl lock, held while the registry is read or changed
    ROOT/tls-lab.json    the running lab (its LabInfo), the process that started it,
                         and the processes attached to it, each with its slot

A *slot* is an attached process's share of the lab: lanes of its own
(:func:`slot_lanes`).  A lane's journal records after a cursor are one cell's
ground truth only while no other cell runs on that lane, so processes do not
borrow each other's lanes; giving each a fixed block needs no lock per cell.

The processes of a local lab die with the process that started them, so that
process stops the lab last: when its own work is done it waits until every other
holder has detached (or died), then stops the lab while holding the lock, so a
late process starts a fresh lab only after the old one is gone.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import EnvironmentProblem
from harness.lab.info import LabInfo
from harness.lab.process import pid_alive

LOCK_NAME, REGISTRY_NAME = "tls-lab.lock", "tls-lab.json"


@dataclass(frozen=True)
class Attachment:
    """A process's hold on the shared lab: the lab, its slot, and whether it started the lab."""

    info: LabInfo
    slot: int
    started: bool


def slot_lanes(slot: int, per_slot: int) -> range:
    """The lanes of ``slot`` when each slot has ``per_slot``: slot i has lanes i*per_slot ... (i+1)*per_slot - 1."""
    return range(slot * per_slot, (slot + 1) * per_slot)


def free_slot(holders: dict[int, int], slots: int) -> int | None:
    """The lowest of ``slots`` slots that no holder (pid -> slot) has, or None."""
    taken = set(holders.values())
    return next((s for s in range(slots) if s not in taken), None)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    with open(root / LOCK_NAME, "a") as f:  # "a": create it if needed, never truncate another's
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read(root: Path) -> dict | None:
    try:
        reg = json.loads((root / REGISTRY_NAME).read_text())
    except FileNotFoundError:
        return None
    reg["holders"] = {int(pid): slot for pid, slot in reg["holders"].items()}
    return reg


def _write(root: Path, reg: dict) -> None:
    tmp = root / (REGISTRY_NAME + ".tmp")
    tmp.write_text(json.dumps({**reg, "holders": {str(p): s for p, s in reg["holders"].items()}}))
    os.replace(tmp, root / REGISTRY_NAME)


def _live(holders: dict[int, int]) -> dict[int, int]:
    return {pid: slot for pid, slot in holders.items() if pid_alive(pid)}


@contextmanager
def shared_lab(root: str | Path, start: Callable[[], AbstractContextManager[LabInfo]], *, slots: int,
               poll: float = 0.2) -> Iterator[Attachment]:
    """Attach to the lab registered in ``root``, or start it with ``start()`` if there is none.

    ``start`` returns a context manager that starts the lab on entry (yielding its
    :class:`LabInfo`) and stops it on exit, e.g. ``lambda: open_lab(options)``.
    ``slots`` is how many processes may hold the lab at once; each gets the lowest
    free slot.  On exit a process detaches; the one that started the lab waits
    (polling every ``poll`` seconds) until it is the last holder, then stops it.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    lab = None
    with _locked(root):
        reg = _read(root)
        if reg is not None and not pid_alive(reg["owner"]):
            reg = None  # its starter died, and the lab's processes with it
        if reg is None:
            lab = start()
            info = lab.__enter__()  # under the lock: the others wait here, then attach
            reg = {"owner": me, "lab": asdict(info), "holders": {}}
        else:
            info = LabInfo.from_dict(reg["lab"])
        try:
            holders = _live(reg["holders"])
            slot = free_slot(holders, slots)
            if slot is None:
                raise EnvironmentProblem(
                    f"the shared lab in {root} has {slots} slot(s), all held by running processes "
                    f"{sorted(holders)}; run fewer workers or give each its own lab.")
            reg["holders"] = {**holders, me: slot}
            _write(root, reg)
        except BaseException:
            if lab is not None:
                lab.__exit__(None, None, None)
            raise
    try:
        yield Attachment(info, slot, started=lab is not None)
    finally:
        if lab is None:
            _detach(root, me)
        else:
            _stop_when_last(root, me, lab, poll)


def _detach(root: Path, me: int) -> None:
    with _locked(root):
        reg = _read(root)
        if reg is not None and me in reg["holders"]:
            del reg["holders"][me]
            _write(root, reg)


def _stop_when_last(root: Path, me: int, lab: AbstractContextManager, poll: float) -> None:
    while True:
        with _locked(root):
            reg = _read(root)
            others = [pid for pid in _live(reg["holders"] if reg else {}) if pid != me]
            if not others:
                (root / REGISTRY_NAME).unlink(missing_ok=True)
                lab.__exit__(None, None, None)
                return
        time.sleep(poll)
