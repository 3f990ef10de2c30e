"""The admin endpoint: a journal over plain HTTP/1.1, made to hold under hostile clients.

It runs inside the proxy and the mock server, bound to loopback (local lab) or
an internal network (compose), and only ever answers ``GET /healthz`` and
``GET /journal``.  Three rules keep a hostile client from hurting it; each is a
pure object here, tested without sockets:

* :class:`Deadline` -- a whole request (accept to last header byte) has
  ``request_timeout`` seconds; a slowloris that trickles a byte now and then is
  cut when that runs out, whatever the gap between its bytes.  Writing the
  answer has the same budget again (a reader that never reads is dropped).
* :class:`Admission` -- at most ``max_connections`` at once.  A newcomer at the
  cap takes the place of the oldest connection still sending its request (the
  slow ones); if every connection is being answered it is closed at once.
  So a flood of slow connections cannot keep a normal reader out.
* :func:`allowed_hosts` / :func:`host_allowed` -- the ``Host`` header must name
  the address the client reached (the socket's own address and port), or
  ``localhost`` on a loopback endpoint, or a name given in ``names`` (a compose
  service name).  A DNS-rebinding page reaches the endpoint under its own
  domain name and gets 421.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import h11

if TYPE_CHECKING:  # the endpoint reads any object with Journal's methods; no import at run time
    from harness.net.journal import Journal

REQUEST_TIMEOUT = 10.0  # seconds for a whole request, accept to the last header byte
MAX_CONNECTIONS = 128  # the lab's readers use a few per lane; a flood beyond this is cut
MAX_SETTLE = 30.0  # a reader may wait this long for open records to close (a long poll)


# -- the pure rules ---------------------------------------------------------------------------

class Deadline:
    """``limit`` seconds from ``start`` (``clock()`` by default); ``remaining()`` never goes below 0."""

    def __init__(self, limit: float, *, clock: Callable[[], float] = time.monotonic, start: float | None = None):
        self.limit = limit
        self.clock = clock
        self.ends = (clock() if start is None else start) + limit

    def remaining(self) -> float:
        return max(0.0, self.ends - self.clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0


class Admission:
    """Which connections the endpoint keeps: at most ``cap``; reading ones are evicted oldest first.

    Connections are any hashable keys.  :meth:`admit` returns ``(accepted,
    evicted)``; :meth:`answering` marks a connection whose request is complete
    (it is never evicted); :meth:`leave` forgets one.
    """

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"the connection cap must be 1 or more, not {cap}")
        self.cap = cap
        self._reading: dict[object, None] = {}  # insertion order = age
        self._answering: set[object] = set()

    def __len__(self) -> int:
        return len(self._reading) + len(self._answering)

    def admit(self, conn: object) -> tuple[bool, object | None]:
        evicted = None
        if len(self) >= self.cap:
            if not self._reading:
                return False, None
            evicted = next(iter(self._reading))
            del self._reading[evicted]
        self._reading[conn] = None
        return True, evicted

    def answering(self, conn: object) -> None:
        if conn in self._reading:  # (an evicted connection stays out)
            del self._reading[conn]
            self._answering.add(conn)

    def leave(self, conn: object) -> None:
        self._reading.pop(conn, None)
        self._answering.discard(conn)


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def allowed_hosts(local_address: str, port: int, names: Iterable[str] = ()) -> frozenset[str]:
    """The ``Host`` values an endpoint reached at ``local_address:port`` accepts (lower case).

    ``names`` are further host names or addresses it is announced under (the
    address it was bound to, a compose service name); all with ``port``.
    """
    hosts = {local_address.lower(), *(n.lower() for n in names)}
    try:
        address = ipaddress.ip_address(local_address.split("%")[0])
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # an IPv4 client of a dual-stack socket writes the IPv4 form
        hosts.add(str(address))
    if address is not None and address.is_loopback:
        # A browser sends "localhost" only for a page loaded from localhost: not a rebinding.
        hosts.add("localhost")
    allowed = {_authority(h, port) for h in hosts}
    if port == 80:  # the default port may be left out of Host
        allowed |= {f"[{h}]" if ":" in h else h for h in hosts}
    return frozenset(allowed)


def host_allowed(hosts: list[bytes] | list[str], allowed: frozenset[str]) -> bool:
    """True if a request's ``Host`` headers (all of them) are exactly one value of ``allowed``."""
    if len(hosts) != 1:
        return False  # none (HTTP/1.0), or several: which one the client meant is unknown
    host = hosts[0].decode("latin-1") if isinstance(hosts[0], bytes) else hosts[0]
    return host.strip().lower() in allowed


# -- the endpoint -----------------------------------------------------------------------------

class AdminEndpoint:
    """The journal over plain HTTP/1.1 (h11 on asyncio streams; read-only).

    ``GET /healthz`` and ``GET /journal?lane=N&after=SEQ&settle=SECONDS``, the
    latter answering ``{"last_seq": ..., "settled": bool, "records": [...]}``.
    It is deliberately tiny: it runs inside the proxy process, whose start-up
    time is benchmarked, so it costs no web framework import.  ``request_timeout``,
    ``max_connections`` and ``names`` are the rules of the module docstring.
    """

    def __init__(self, journal: "Journal", *, name: str, request_timeout: float = REQUEST_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS, names: Iterable[str] = ()) -> None:
        if not (math.isfinite(request_timeout) and request_timeout > 0):
            raise ValueError(f"the request timeout must be a number of seconds above 0, not {request_timeout}")
        self.journal = journal
        self.name = name
        self.request_timeout = request_timeout
        self.names = tuple(names)  # plus the address start() binds: the endpoint's own announced host
        self.admission = Admission(max_connections)
        self._writers: dict[object, asyncio.StreamWriter] = {}
        self.server: asyncio.AbstractServer | None = None

    def __repr__(self) -> str:
        return (f"AdminEndpoint(name={self.name!r}, request_timeout={self.request_timeout}, "
                f"max_connections={self.admission.cap}, names={self.names})")

    async def start(self, host: str, port: int) -> str:
        self.server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        actual = self.server.sockets[0].getsockname()[1]
        self.names = (*self.names, host)  # what the URL below announces
        return f"http://{_url_host(host)}:{actual}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self._writers.values()):
                writer.close()
            await self.server.wait_closed()

    async def answer(self, method: str, target: str) -> tuple[int, dict]:
        """The response (status, JSON body) for one request; no I/O here but waiting to settle."""
        url = urllib.parse.urlsplit(target)
        if method != "GET":
            return 405, {"error": "only GET is served"}
        if url.path == "/healthz":
            return 200, {"ok": True, "name": self.name}
        if url.path != "/journal":
            return 404, {"error": "try /journal or /healthz"}
        q = dict(urllib.parse.parse_qsl(url.query))
        try:
            lane = int(q["lane"]) if "lane" in q else None
            after = int(q.get("after", 0))
            settle = float(q.get("settle", 0))
        except ValueError:
            return 400, {"error": "lane, after and settle must be numbers"}
        settle = min(settle, MAX_SETTLE) if settle == settle else 0.0  # NaN waits not at all
        if settle > 0:
            settled = await self.journal.settle(lane, settle)
        else:
            settled = self.journal.open_count(lane) == 0
        return 200, {"last_seq": self.journal.last_seq, "settled": settled,
                     "records": self.journal.read(lane=lane, after=after)}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        key = object()
        accepted, evicted = self.admission.admit(key)
        if evicted is not None and evicted in self._writers:
            self._writers.pop(evicted).close()  # the oldest slow request makes room
        if not accepted:
            writer.close()  # every slot is answering a reader: this one waits for none of them
            return
        self._writers[key] = writer
        try:
            await self._exchange(key, reader, writer)
        except (h11.RemoteProtocolError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            self.admission.leave(key)
            self._writers.pop(key, None)
            writer.close()

    async def _exchange(self, key: object, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        deadline = Deadline(self.request_timeout)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if deadline.expired:
                    return
                data = await asyncio.wait_for(reader.read(65536), deadline.remaining())
                conn.receive_data(data)
                if not data:
                    return
                continue
            if isinstance(event, h11.Request):
                break
            return  # ConnectionClosed, or anything but a request
        self.admission.answering(key)
        local = writer.get_extra_info("sockname")
        allowed = allowed_hosts(local[0], local[1], self.names) if isinstance(local, tuple) else frozenset()
        if not host_allowed([v for k, v in event.headers if k == b"host"], allowed):
            status, body = 421, {"error": "this endpoint answers only to its own address in the Host header"}
        else:
            status, body = await self.answer(event.method.decode(), event.target.decode())
        payload = json.dumps(body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                   ("Connection", "close")]
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
        writer.write(conn.send(h11.Data(data=payload)))
        writer.write(conn.send(h11.EndOfMessage()))
        # A reader that stops reading gets the same budget for the answer as for its request.
        await asyncio.wait_for(writer.drain(), self.request_timeout)


async def start_admin(journal: "Journal", host: str, port: int, *, name: str, **rules) -> tuple[AdminEndpoint, str]:
    """Start the admin endpoint; returns ``(endpoint, "http://host:port")``.

    ``rules`` are :class:`AdminEndpoint`'s ``request_timeout``, ``max_connections`` and ``names``.
    """
    endpoint = AdminEndpoint(journal, name=name, **rules)
    return endpoint, await endpoint.start(host, port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
