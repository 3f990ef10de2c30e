"""Stopping the lab of a state directory from another process: ``harness down`` and ``up --replace``.

The lab is found from every record it left, none of them trusted alone:

* ``lab.lock``'s holder (:mod:`harness.lab.lock`): the owner, recognised by its
  start time and by really holding the lock; its token;
* ``lab.json``: the processes by role with their start times, and the token;
* /proc: every process carrying that token, or a lab token for this state
  directory (:mod:`harness.lab.identity`), which is how a lab whose
  ``lab.json`` is truncated, empty, of the wrong shape or a directory is
  still found, and one whose state directory was replaced by a file.

Only processes recognised that way are signalled (:func:`harness.lab.process.terminate`):
a stale or crafted pid in ``lab.json`` is left alone and reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.lab.identity import (
    TOKEN_ENV,
    ProcessRecord,
    carries,
    environment_of,
    matches,
    procfs_available,
    scan,
    start_time,
    state_marker,
)
from harness.lab.lock import Holder, is_locked, lock_path, read_holder
from harness.lab.process import Target, terminate
from harness.lab.statedir import read_state_file


@dataclass
class LabRecords:
    """What a state directory says about its lab (each part None where it says nothing usable)."""

    holder: Holder | None = None
    token: str | None = None  # lab.json's
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    backend: str | None = None
    problem: str | None = None  # why lab.json could not be read, if it exists


@dataclass
class Stopped:
    """What :func:`stop_lab` did."""

    records: LabRecords
    signalled: list[int] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)  # needed SIGKILL
    survivors: list[int] = field(default_factory=list)  # still alive after SIGKILL
    ignored: list[int] = field(default_factory=list)  # named by lab.json, alive, not the lab's
    owner_left: Holder | None = None  # a 'harness run' or plugin owner: its lab's processes are stopped, it is not


def read_records(state_dir: Path) -> LabRecords:
    """The lock holder and lab.json, read leniently: each broken part is skipped and described."""
    records = LabRecords(holder=read_holder(state_dir) if state_dir.is_dir() else None)
    path = state_dir / "lab.json"
    try:
        data = json.loads(read_state_file(path))
    except FileNotFoundError:
        return records
    except NotADirectoryError:
        records.problem = f"{state_dir} is a file, not a state directory"
        return records
    except IsADirectoryError:
        records.problem = f"{path} is a directory"
        return records
    except OSError as e:
        records.problem = f"{path} cannot be read ({e.strerror or e})"
        return records
    except ValueError:
        records.problem = f"{path} is not JSON (empty or truncated?)"
        return records
    if not isinstance(data, dict):
        records.problem = f"{path} holds a {type(data).__name__}, not a lab description"
        return records
    if isinstance(data.get("token"), str):
        records.token = data["token"]
    if isinstance(data.get("backend"), str):
        records.backend = data["backend"]
    for role, entry in (data.get("processes") or {}).items() if isinstance(data.get("processes"), dict) else ():
        try:
            records.processes[str(role)] = ProcessRecord.from_dict(entry)
        except TypeError:
            records.problem = f"{path} has a malformed process entry {role!r}"
    if records.token is None and records.backend != "compose":
        records.problem = records.problem or f"{path} names no lab token"
    return records


def find_targets(state_dir: Path, records: LabRecords, stopped: Stopped) -> list[Target]:
    """Every process of the lab in ``state_dir`` that may be signalled, each recognised twice."""
    lock = lock_path(state_dir)
    tokens = [t for t in {records.token, records.holder.token if records.holder else None} if t]
    targets: dict[int, Target] = {}
    if records.holder is not None:
        owner = ProcessRecord(records.holder.pid, records.holder.start)
        if matches(owner, lock=lock):
            if records.holder.role == "up":
                targets[owner.pid] = Target(owner, lock=lock)  # the process alone: it stops its lab itself
            else:
                stopped.owner_left = records.holder
    for role, record in records.processes.items():
        token = next((t for t in tokens if matches(record, token=t)), None)
        if token is not None:
            targets.setdefault(record.pid, Target(record, token=token, group=True))
        elif matches(record, lock=lock):  # the owner, as lab.json names it
            if not (stopped.owner_left and record.pid == stopped.owner_left.pid):
                targets.setdefault(record.pid, Target(record, lock=lock))
        elif _alive(record.pid):
            stopped.ignored.append(record.pid)
    found = [*(r for t in tokens for r in scan(token=t)), *scan(state=state_marker(state_dir))]
    for record in found:
        token = next((t for t in tokens if carries(record.pid, token=t)), None)
        if token is None:  # an earlier lab of this state directory, or one whose token is lost
            token = _token_of(record.pid)
        if token is not None and not (stopped.owner_left and record.pid == stopped.owner_left.pid):
            targets.setdefault(record.pid, Target(record, token=token, group=True))
    # A lab process lab.json names with a stale start time was found by its token all the same.
    stopped.ignored = [pid for pid in stopped.ignored if pid not in targets]
    return list(targets.values())


def _alive(pid: int) -> bool:
    return start_time(pid) is not None


def _token_of(pid: int) -> str | None:
    value = (environment_of(pid) or {}).get(TOKEN_ENV.encode())
    return value.decode(errors="replace") if value else None


def stop_lab(state_dir: str | Path, timeout: float = 5.0) -> Stopped:
    """Stop every process of the lab in ``state_dir`` that can be recognised as its own."""
    state = Path(state_dir)
    records = read_records(state)
    stopped = Stopped(records)
    if not procfs_available():
        return stopped
    targets = find_targets(state, records, stopped)
    stopped.signalled = [t.pid for t in targets]
    stopped.killed, stopped.survivors = terminate(targets, timeout)
    return stopped


def lab_still_running(state_dir: str | Path) -> bool:
    """True if the state directory's lock is held or a process carries a lab token for it."""
    state = Path(state_dir)
    return (state.is_dir() and is_locked(state)) or bool(scan(state=state_marker(state)))
