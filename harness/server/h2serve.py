"""HTTP/2 for the mock server: the same routes over h2, chosen per connection by ALPN.

The mock server offers ``h2`` and ``http/1.1`` (:func:`alpn_switch`): a TLS
connection that negotiated ``h2`` is served by :class:`H2Protocol` (the ``h2``
library, which mitmproxy itself uses), any other by aiohttp.  HTTP/2 requests
go to the same handlers as HTTP/1.1 ones (:meth:`MockScreenMeet.h2_dispatch
<harness.server.mock.MockScreenMeet.h2_dispatch>`) through :class:`H2Request`,
which offers what those handlers read, so both journal alike (``protocol``
tells them apart).  WebSockets stay on HTTP/1.1: the clients that open them
offer only ``http/1.1``.
"""

from __future__ import annotations

import asyncio
import json

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from aiohttp.http import HttpVersion
from multidict import CIMultiDict, CIMultiDictProxy

ALPN = ["h2", "http/1.1"]
HTTP2 = HttpVersion(2, 0)


class H2Request:
    """One HTTP/2 request, shaped as the mock's handlers read an aiohttp request."""

    def __init__(self, headers: list[tuple[str, str]], body: bytes, transport) -> None:
        pseudo = {k: v for k, v in headers if k.startswith(":")}
        plain = CIMultiDict((k, v) for k, v in headers if not k.startswith(":"))
        self.method = pseudo.get(":method", "GET")
        self.path = pseudo.get(":path", "/").split("?", 1)[0]  # a query string may carry a token
        self.host = pseudo.get(":authority") or plain.get("host", "")
        if "host" not in plain:
            plain["host"] = self.host  # journaled like an HTTP/1.1 request's headers
        self.headers = CIMultiDictProxy(plain)
        self.transport = transport
        self.version = HTTP2
        self._body = body

    async def json(self):
        """The body as JSON (ValueError when it is not, as aiohttp raises)."""
        return json.loads(self._body)


class H2Protocol(asyncio.Protocol):
    """Serves one HTTP/2 connection: every stream answered by ``dispatch(H2Request)``
    (an aiohttp ``web.Response``), bodies up to ``max_body`` bytes."""

    def __init__(self, dispatch, max_body: int) -> None:
        self.dispatch, self.max_body = dispatch, max_body
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.streams: dict[int, tuple[list, bytearray]] = {}
        self.tasks: set[asyncio.Task] = set()
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.conn.initiate_connection()
        self._flush()

    def connection_lost(self, exc) -> None:
        self.transport = None
        for task in self.tasks:
            task.cancel()

    def _flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()  # the GOAWAY h2 queued
            self.transport.close()
            return
        for event in events:
            self._event(event)
        self._flush()

    def _event(self, event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self.streams[event.stream_id] = (event.headers, bytearray())
            if event.stream_ended is not None:
                self._answer_later(event.stream_id)
        elif isinstance(event, h2.events.DataReceived):
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if event.stream_id in self.streams:
                body = self.streams[event.stream_id][1]
                body.extend(event.data)
                if len(body) > self.max_body:
                    del self.streams[event.stream_id]
                    self.conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            if event.stream_ended is not None:
                self._answer_later(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self.streams.pop(event.stream_id, None)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.transport.close()

    def _answer_later(self, stream_id: int) -> None:
        if stream_id not in self.streams:
            return
        headers, body = self.streams.pop(stream_id)
        task = asyncio.ensure_future(self._answer(stream_id, H2Request(headers, bytes(body), self.transport)))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, stream_id: int, request: H2Request) -> None:
        response = await self.dispatch(request)
        body = response.body or b""
        if self.transport is None:
            return
        try:
            self.conn.send_headers(stream_id, [(":status", str(response.status)),
                                               ("content-type", response.content_type),
                                               ("content-length", str(len(body)))])
            # The mock's answers are small JSON documents, well inside the initial flow-control window.
            self.conn.send_data(stream_id, body, end_stream=True)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return  # the client reset the stream meanwhile
        self._flush()


class _AlpnSwitch(asyncio.Protocol):
    """Hands a freshly established TLS connection to the protocol its ALPN chose."""

    def __init__(self, http1_factory, h2_factory) -> None:
        self.http1_factory, self.h2_factory = http1_factory, h2_factory

    def connection_made(self, transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        inner = self.h2_factory() if alpn == "h2" else self.http1_factory()
        transport.set_protocol(inner)
        inner.connection_made(transport)


def alpn_switch(http1_factory, h2_factory):
    """A protocol factory for ``loop.create_server``: h2 connections to ``h2_factory()``'s
    protocol, all others to ``http1_factory()``'s (aiohttp's request handler)."""
    return lambda: _AlpnSwitch(http1_factory, h2_factory)
