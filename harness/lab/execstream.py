"""Long-lived programs in containers, spoken to in JSON lines over one Docker exec stream each.

:class:`ExecSession` starts ``argv`` in a container through the Docker API
(:func:`harness.lab.engine.api`; an exec with standard input attached, no TTY)
and keeps the connection: requests go to the program's standard input as JSON
lines, answers come back on its standard output, matched by ``id``, so many
requests can be in flight at once.  :func:`session` keeps one per (container,
user, program) in this process: the compose lab's client workers
(:mod:`harness.matrix.remote`).  What travels on the connection is the
engine's multiplexed stream (:class:`Frames`); the JSON-lines side of it is
:class:`Channel`, which works on any such socket.
"""

from __future__ import annotations

import collections
import itertools
import json
import socket
import struct
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from harness.errors import LabError
from harness.lab.engine import api

STDOUT, STDERR = 1, 2


class Frames:
    """Splits the engine's multiplexed stream (no TTY) into (stream, bytes): each frame is a
    header (1 byte stream: 1 stdout, 2 stderr; 3 zero bytes; 4 bytes big-endian size) and data."""

    HEADER = struct.Struct(">BxxxL")

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The frames ``data`` completes (a frame may arrive in pieces; the rest is kept)."""
        self.buffer += data
        frames = []
        while len(self.buffer) >= self.HEADER.size:
            kind, size = self.HEADER.unpack_from(self.buffer)
            if len(self.buffer) < self.HEADER.size + size:
                break
            frames.append((kind, bytes(self.buffer[self.HEADER.size:self.HEADER.size + size])))
            del self.buffer[:self.HEADER.size + size]
        return frames

    @classmethod
    def frame(cls, kind: int, data: bytes) -> bytes:
        """One frame, as the engine writes it."""
        return cls.HEADER.pack(kind, len(data)) + data


class SessionClosed(LabError):
    """The program at the other end has gone (or never came up)."""


class Channel:
    """JSON-lines requests and answers over ``sock``, a multiplexed stream to a program.

    Each request is a JSON object sent as one line, with an ``id`` added; the
    program answers with a line carrying the same ``id``, in any order.  The
    first request, ``{"run": "hello"}``, must be answered with ``"ready": true``
    (:meth:`greet`).  The program's standard error is kept (the last lines) for
    the message when it dies; a line of its standard output that is not an
    answer is kept there too.  :meth:`close` closes the program's standard
    input, which is how it knows to stop.
    """

    def __init__(self, sock: socket.socket, name: str) -> None:
        self._sock, self.name = sock, name
        self._ids = itertools.count(1)
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()  # _pending and _closed, and one writer at a time
        self._closed: str | None = None  # why, once it is
        self.stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._reader = threading.Thread(target=self._read, name=f"channel {name}", daemon=True)
        self._reader.start()

    def __repr__(self) -> str:
        return self.name

    @property
    def alive(self) -> bool:
        return self._closed is None

    def greet(self, timeout: float) -> dict:
        """Wait until the program answers hello (it has started); a failure closes the channel."""
        try:
            answer = self.request({"run": "hello"}, timeout)
            if answer.get("ready") is not True:
                raise SessionClosed(f"it answered {answer!r} instead of ready")
            return answer
        except (LabError, TimeoutError) as e:
            self.close()
            raise SessionClosed(f"{self.name} did not start: {e}") from None

    def request(self, message: dict, timeout: float) -> dict:
        """Send ``message`` and wait up to ``timeout`` seconds for its answer.

        Raises :class:`SessionClosed` when the program is gone and TimeoutError when it does not answer.
        """
        future: Future = Future()
        with self._lock:
            if self._closed is not None:
                raise SessionClosed(self._closed)
            rid = next(self._ids)
            self._pending[rid] = future
            try:
                self._sock.sendall(json.dumps({**message, "id": rid}).encode() + b"\n")
            except OSError as e:
                del self._pending[rid]
                raise SessionClosed(f"cannot write to {self.name}: {e}") from None
        try:
            return future.result(timeout)
        except FutureTimeout:
            raise TimeoutError(f"{self.name} did not answer within {timeout:g}s") from None
        finally:
            with self._lock:
                self._pending.pop(rid, None)

    def _read(self) -> None:
        frames, lines = Frames(), bytearray()
        why = "its output ended"
        try:
            while chunk := self._sock.recv(65536):
                for kind, data in frames.feed(chunk):
                    if kind == STDERR:
                        self.stderr.extend(data.decode(errors="replace").splitlines())
                        continue
                    lines += data
                    while (end := lines.find(b"\n")) >= 0:
                        self._answer(bytes(lines[:end]))
                        del lines[:end + 1]
        except OSError as e:
            why = str(e)
        last = next((line for line in reversed(self.stderr) if line.strip()), why)
        self._fail(f"{self.name} ended: {last.strip()}")

    def _answer(self, line: bytes) -> None:
        try:
            answer = json.loads(line)
            future = self._pending.get(answer.get("id"))
        except (ValueError, AttributeError):  # not a protocol line: keep it as a diagnostic
            self.stderr.append(line.decode(errors="replace"))
            return
        if future is not None and not future.done():
            future.set_result(answer)

    def _fail(self, why: str) -> None:
        with self._lock:
            self._closed = self._closed or why
            pending, self._pending = list(self._pending.values()), {}
        for future in pending:
            if not future.done():
                future.set_exception(SessionClosed(why))

    def close(self) -> None:
        """End the program (its standard input closes) and the connection."""
        self._fail(f"{self.name} was closed")
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class ExecSession(Channel):
    """``argv`` running as ``user`` in ``container`` for as long as this object lives (a :class:`Channel`)."""

    def __init__(self, container: str, argv: Sequence[str], *, user: str = "") -> None:
        self.container, self.argv, self.user = container, list(argv), user
        import docker

        client = api()
        try:
            exec_id = client.exec_create(container, self.argv, stdin=True, stdout=True, stderr=True, user=user)["Id"]
            self._raw = client.exec_start(exec_id, socket=True)  # keeps the HTTP response, so the connection
        except docker.errors.APIError as e:  # no such container, not running, no such user
            raise SessionClosed(f"cannot start {' '.join(self.argv)} in container {container[:12]}: "
                                f"{e.explanation or e}") from None
        sock = getattr(self._raw, "_sock", self._raw)  # the SDK hands a SocketIO on a Unix socket
        super().__init__(sock, f"{' '.join(self.argv)} in container {container[:12]}"
                               + (f" as {user}" if user else ""))

    def close(self) -> None:
        super().close()
        try:
            self._raw.close()
        except OSError:
            pass


# How long a program may take to start and answer hello (a Python start-up in a busy container).
START_TIMEOUT = 60.0

_sessions: dict[tuple[str, str, tuple[str, ...]], ExecSession] = {}
_sessions_lock = threading.Lock()
_starting: dict[tuple[str, str, tuple[str, ...]], threading.Lock] = collections.defaultdict(threading.Lock)


def session(container: str, argv: Sequence[str], *, user: str = "") -> ExecSession:
    """This process's session running ``argv`` as ``user`` in ``container``, greeted: started on
    first use, and again when the last one died (a container restarted, a crashed program).
    Raises :class:`SessionClosed` when it does not start."""
    key = (container, user, tuple(argv))
    with _sessions_lock:
        starting = _starting[key]
    with starting:  # one start per key at a time; other keys start in parallel
        with _sessions_lock:
            current = _sessions.get(key)
        if current is not None and current.alive:
            return current
        fresh = ExecSession(container, argv, user=user)
        fresh.greet(START_TIMEOUT)
        with _sessions_lock:
            _sessions[key] = fresh
        return fresh


def close_sessions(container: str | None = None) -> None:
    """Close this process's sessions (in ``container`` only, if given)."""
    with _sessions_lock:
        closing = [_sessions.pop(k) for k in list(_sessions) if container is None or k[0] == container]
    for s in closing:
        s.close()
