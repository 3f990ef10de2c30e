"""Run a reference client in a thread of this process and watch its ``--json`` events live.

For tests and benchmarks that must act *while* a client runs (kill the proxy
after the first WebSocket message, switch a policy once Beam has refused)
without sleeping: :class:`EventTap` is the client's stdout and stderr; it
timestamps every event, can call ``on_event`` in the client's own thread
(before the client goes on, so "mid-session" is exact), and lets other threads
wait for an event with a deadline.

::

    agent = ClientThread("beam", ["--proxy", url, ..., "--json"])
    agent.start()
    agent.tap.wait_for(lambda e: e["event"] == "refused", timeout=10)
    ...
    assert agent.result(timeout=30) == 0
"""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Callable

from harness.clients import attended, beam

GATE_TIMEOUT = 60.0


class EventTap(io.TextIOBase):
    """A text stream that parses one JSON event per line (other lines are kept as text)."""

    def __init__(self, on_event: Callable[[dict], None] | None = None) -> None:
        super().__init__()
        self.events: list[dict] = []  # each with "_t": time.monotonic() when it was written
        self.lines: list[str] = []  # every line, JSON or not, in order
        self.on_event = on_event
        self._buffer = ""
        self._changed = threading.Condition()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        with self._changed:
            self.lines.append(line)
            if isinstance(event, dict):
                event["_t"] = time.monotonic()
                self.events.append(event)
            self._changed.notify_all()
        if isinstance(event, dict) and self.on_event is not None:
            self.on_event(event)

    def named(self, name: str) -> list[dict]:
        """Every event called ``name`` so far."""
        with self._changed:
            return [e for e in self.events if e.get("event") == name]

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float, *, what: str = "the event") -> dict:
        """The first event (already seen or still to come) for which ``predicate`` is true.

        Raises :class:`TimeoutError` naming ``what`` and the events seen so far.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((e for e in self.events if predicate(e)), None)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [e.get("event") for e in self.events]
                    last = [{k: v for k, v in e.items() if k != "chain_pins"} for e in self.events[-3:]]
                    raise TimeoutError(f"{what} did not come within {timeout:g}s; events so far: {seen}; "
                                       f"the last ones: {last}")
                self._changed.wait(remaining)

    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)


class ClientThread(threading.Thread):
    """``harness <client> ARGV`` in a daemon thread, its output going to :attr:`tap`."""

    def __init__(self, client: str, argv: list[str], *, on_event: Callable[[dict], None] | None = None,
                 gate: threading.Event | None = None) -> None:
        super().__init__(name=f"{client}-client", daemon=True)
        self.gate = gate  # if given, the client starts only once it is set (many clients "at once")
        self.started_at: float | None = None
        self.program = {"attended": attended, "beam": beam}[client]
        self.argv = list(argv)
        self.tap = EventTap(on_event)
        self.exit_code: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        if self.gate is not None and not self.gate.wait(GATE_TIMEOUT):
            self.error = TimeoutError(f"the start gate of the {self.name} stayed shut for {GATE_TIMEOUT}s")
            return
        self.started_at = time.monotonic()
        try:
            self.exit_code = self.program.main(self.argv, stdout=self.tap, stderr=self.tap, stdin=io.StringIO())
        except BaseException as e:  # re-raised in the waiting thread by result()
            self.error = e

    def result(self, timeout: float) -> int:
        """The client's exit code; raises :class:`TimeoutError` if it still runs after ``timeout``."""
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError(f"the {self.name} still runs after {timeout:g}s; output so far:\n{self.tap.text()}")
        if self.error is not None:
            raise self.error
        return int(self.exit_code)
