"""Journals: the ground truth a scenario is judged from.

The proxy keeps one record per client connection, the mock server one per
request (and per WebSocket message).  Records are plain JSON-able dicts with a
sequence number ``seq`` and the ``lane`` they arrived on; a reader remembers the
last ``seq`` it saw, so "reset" is free and parallel scenarios on different
lanes never see each other's records.

A record can stay *open* while its connection lives (the proxy fills it in as
hooks fire); :meth:`Journal.settle` waits until a lane has no open record, so a
reader never judges a half-written connection and never has to sleep.

:class:`harness.net.admin.AdminEndpoint` serves a journal over HTTP (bound to
loopback or an internal network only, and holding under hostile clients);
:class:`JournalReader` reads it.  ``AdminEndpoint`` and ``start_admin`` are
importable from here too, where the proxy and the server have always found them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from harness.errors import LabError
from harness.net.admin import AdminEndpoint, start_admin

__all__ = ["AdminEndpoint", "Journal", "JournalReader", "announce_ready", "start_admin"]


class Journal:
    """An in-memory, append-only list of records, some of which may still be open."""

    def __init__(self, *, first_seq: int = 1) -> None:
        # A restarted component starts its journal above the old one's numbers
        # (``first_seq``), so readers' cursors stay valid across the restart.
        self._records: list[dict[str, Any]] = []
        self._open: dict[Any, dict[str, Any]] = {}
        self._seq = itertools.count(first_seq)
        self._changed = asyncio.Event() if _has_loop() else None

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append a finished record and return it (with its ``seq``)."""
        # The journal's own sequence number wins over any "seq" the caller passed.
        record = {**record, "seq": next(self._seq), "time": round(time.time(), 6)}
        self._records.append(record)
        return record

    def open(self, key: Any, record: dict[str, Any]) -> dict[str, Any]:
        """Append a record that stays open (mutable by the caller) until :meth:`close`."""
        record = self.add({**record, "open": True})
        self._open[key] = record
        return record

    def get_open(self, key: Any) -> dict[str, Any] | None:
        return self._open.get(key)

    def close(self, key: Any) -> None:
        record = self._open.pop(key, None)
        if record is not None:
            record["open"] = False
            record["closed"] = round(time.time(), 6)
            self._notify()

    def _notify(self) -> None:
        if self._changed is None and _has_loop():
            self._changed = asyncio.Event()
        if self._changed is not None:
            self._changed.set()

    @property
    def last_seq(self) -> int:
        return self._records[-1]["seq"] if self._records else 0

    def read(self, *, lane: int | None = None, after: int = 0) -> list[dict[str, Any]]:
        """Records with ``seq > after``, optionally only those of one lane."""
        # Records are appended in seq order, so the tail after the cursor is a slice.
        lo = 0
        hi = len(self._records)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._records[mid]["seq"] <= after:
                lo = mid + 1
            else:
                hi = mid
        return [r for r in self._records[lo:] if lane is None or r.get("lane") == lane]

    def open_count(self, lane: int | None = None) -> int:
        return sum(1 for r in self._open.values() if lane is None or r.get("lane") == lane)

    async def settle(self, lane: int | None, timeout: float) -> bool:
        """Wait until ``lane`` has no open record; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while self.open_count(lane):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._changed is None:
                self._changed = asyncio.Event()
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                return False
        return True


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def announce_ready(report: dict, fd: int | None, path: str | None = None) -> None:
    """Tell the lab launcher a component is up: one JSON line on ``fd`` (then closed) or stdout.

    A dedicated descriptor lets the launcher wait on readiness without sleeping
    and without parsing logs, while stdout and stderr go to log files.  With
    ``path`` the report is also written (atomically) to a file, which is what a
    container healthcheck looks for.
    """
    line = (json.dumps(report) + "\n").encode()
    if path:
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as f:
            f.write(line)
        os.replace(tmp, path)
    if fd is None:
        if not path:
            sys.stdout.write(line.decode())
            sys.stdout.flush()
        return
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class JournalReader:
    """Reads a journal from its admin endpoint (plain HTTP on loopback)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"JournalReader({self.base_url!r})"

    def _get(self, path: str, params: dict[str, Any], timeout: float) -> dict:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return json.load(resp)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise LabError(
                f"cannot read the journal at {self.base_url} ({e}); is the lab up? Start it with 'harness up'."
            ) from None

    def last_seq(self) -> int:
        """The current end of the journal: pass it as ``after`` to see only newer records."""
        return int(self._get("/journal", {"after": 1 << 62}, self.timeout)["last_seq"])

    def read(self, *, lane: int | None = None, after: int = 0, settle: float = 0.0) -> list[dict]:
        """Records after ``after``; with ``settle``, first wait for the lane's open records to close."""
        params: dict[str, Any] = {"after": after}
        if lane is not None:
            params["lane"] = lane
        if settle:
            params["settle"] = settle
        return self._get("/journal", params, self.timeout + settle)["records"]

    def healthy(self, timeout: float = 1.0) -> bool:
        try:
            return bool(self._get("/healthz", {}, timeout).get("ok"))
        except LabError:
            return False
