"""Reading a connection's ClientHello before the TLS handshake, without taking it from the handshake.

The mock server accepts each TCP connection itself, *peeks* at the socket
(``MSG_PEEK``: the bytes stay in the kernel's buffer) until a whole ClientHello
is there, then hands the untouched socket to asyncio's TLS server
(``loop.connect_accepted_socket(..., ssl=...)``), which reads the same bytes
again.  The ClientHello is cut out of its records by mitmproxy's own
``get_client_hello`` and parsed by :class:`mitmproxy.tls.ClientHello`, as
mitmproxy's TLS layer does (``mitmproxy/proxy/layers/tls.py``).

:class:`PeekingServer` is the listener; ``on_hello(peer, hello)`` receives the
client's ``HOST:PORT`` and the parsed hello (``None`` for a connection that sent
no ClientHello) before the handshake starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mitmproxy.tls import ClientHello

MAX_HELLO = 64 * 1024  # a ClientHello is at most a few KiB; more is not one
PEEK_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 30.0


@functools.cache
def parser():
    """mitmproxy's ``(get_client_hello, ClientHello)``, imported on first use: its TLS layer takes
    ~0.1 s to import, which the server's start-up does not wait for (:func:`warm_up`)."""
    from mitmproxy.proxy.layers.tls import get_client_hello
    from mitmproxy.tls import ClientHello

    return get_client_hello, ClientHello


def warm_up() -> None:
    """Import the parser now, off the event loop (``loop.run_in_executor(None, warm_up)`` once
    the server is ready), so the first connection does not pay for it."""
    parser()


async def peek_client_hello(sock: socket.socket, timeout: float = PEEK_TIMEOUT) -> ClientHello | None:
    """The ClientHello waiting on ``sock`` (non-blocking), read with ``MSG_PEEK``; None when the
    peer sent something else, closed, or did not finish one within ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        ready = loop.create_future()
        loop.add_reader(sock.fileno(), lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            return None
        finally:
            loop.remove_reader(sock.fileno())
        try:
            data = sock.recv(MAX_HELLO, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            return None
        if not data:
            return None
        get_client_hello, client_hello = parser()
        try:
            raw = get_client_hello(data)
            if raw is not None:
                return client_hello(raw[4:])  # without the handshake header, as mitmproxy parses it
        except Exception:  # noqa: BLE001 - not TLS (ValueError), or garbage kaitai cannot parse (its own errors)
            return None
        if len(data) >= MAX_HELLO:
            return None
        if len(data) == seen:
            # Readable but nothing new: the rest of the hello is still on its way. Peeking does not
            # consume, so the socket stays readable; wait a little instead of spinning.
            await asyncio.sleep(0.005)
        seen = len(data)
    return None


class PeekingServer:
    """A TLS listener that peeks at every ClientHello before serving the connection with
    ``protocol_factory`` (as ``loop.create_server(protocol_factory, ssl=context)`` would)."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, protocol_factory,
                 on_hello: Callable[[str, ClientHello | None], None]) -> None:
        self.sock, self.context, self.factory, self.on_hello = sock, context, protocol_factory, on_hello
        self.tasks: set[asyncio.Task] = set()
        self._accepting: asyncio.Task | None = None

    @classmethod
    async def start(cls, host: str, port: int, context: ssl.SSLContext, protocol_factory, on_hello) -> PeekingServer:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=128, reuse_port=False)
        sock.setblocking(False)
        server = cls(sock, context, protocol_factory, on_hello)
        server._accepting = asyncio.ensure_future(server._accept())
        return server

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self.sock)
            except (ConnectionAbortedError, InterruptedError):
                continue
            except OSError:
                return  # the listener was closed
            task = asyncio.ensure_future(self._serve(conn))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        try:
            host, port = conn.getpeername()[:2]
        except OSError:
            conn.close()
            return
        hello = await peek_client_hello(conn)
        self.on_hello(f"{host}:{port}", hello)
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                self.factory, conn, ssl=self.context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError):
            # A failed handshake (an untrusting client, a scanner): what create_server would log and drop.
            conn.close()

    def close(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(OSError):
            self.sock.close()
