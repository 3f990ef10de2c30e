"""HTTP/1.1 (h11) and WebSocket (wsproto) over an established TLS socket.

Only called after the pin check has passed (or the person chose to continue):
this is where the first application byte is written.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from harness.clients.transport import Deadline
from harness.errors import NetworkError, ProtocolError

MAX_RESPONSE = 1 << 20  # an answer larger than this is a broken or hostile server


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        try:
            data = json.loads(self.body)
        except ValueError:
            raise ProtocolError(f"the server answered {self.status} with a body that is not JSON") from None
        if not isinstance(data, dict):
            raise ProtocolError(f"the server answered {self.status} with JSON that is not an object")
        return data


# Every request of the reference clients names them (the mock server compares the TLS fingerprint
# with this client's own: harness.server.detect).
USER_AGENT = "tls-lab-reference-client/1"

def http_request(
    sock: socket.socket,
    method: str,
    host: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    json_body: dict | None = None,
) -> HttpResponse:
    """Send one request and read its response (the connection is then closed by the caller)."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
    body = json.dumps(json_body).encode() if json_body is not None else b""
    hdrs = [("Host", host), ("User-Agent", USER_AGENT), ("Connection", "close")]
    if json_body is not None:
        hdrs += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    hdrs += list((headers or {}).items())
    try:
        sock.sendall(conn.send(h11.Request(method=method, target=path, headers=hdrs)))
        if body:
            sock.sendall(conn.send(h11.Data(data=body)))
        sock.sendall(conn.send(h11.EndOfMessage()))
    except OSError as e:
        raise NetworkError(f"connection broke while sending {method} {path} ({e})") from None
    response: h11.Response | None = None
    chunks: list[bytes] = []
    size = 0
    what = f"the answer to {method} {path}"
    deadline = Deadline(sock, what)
    received = 0
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = deadline.recv()
                if not data and response is None:
                    how = "before finishing its answer to" if received else "without answering"
                    raise ProtocolError(f"the server closed the connection {how} {method} {path}")
                received += len(data)
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_RESPONSE:
                    raise ProtocolError(f"{what} is larger than {MAX_RESPONSE} bytes; the server is broken or hostile")
                chunks.append(bytes(event.data))
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
    except h11.RemoteProtocolError as e:
        raise ProtocolError(f"the server's answer to {method} {path} is not valid HTTP ({e})") from None
    if response is None:
        raise ProtocolError(f"the server closed the connection without answering {method} {path}")
    return HttpResponse(
        response.status_code,
        {k.decode().lower(): v.decode("latin-1") for k, v in response.headers},
        b"".join(chunks),
    )


class WebSocket:
    """A client WebSocket over an established (TLS) socket, driven by wsproto."""

    def __init__(self, sock: socket.socket, host: str, path: str, *, headers: dict[str, str] | None = None):
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        # Events that arrived with the handshake's answer (a server may speak at once): kept for
        # receive_text(), not dropped with the rest of that read.
        self._backlog: list = []
        # The User-Agent on the upgrade too: the server judges every request by the client it names.
        extra = [(k.encode(), v.encode()) for k, v in {"User-Agent": USER_AGENT, **(headers or {})}.items()]
        self._send(self.ws.send(Request(host=host, target=path, extra_headers=extra)))
        deadline = Deadline(sock, f"the WebSocket handshake for {path}")
        while True:
            events = list(self._events(deadline))
            for i, event in enumerate(events):
                if isinstance(event, AcceptConnection):
                    self._backlog = events[i + 1:]
                    return
                if isinstance(event, RejectConnection):
                    raise ProtocolError(f"the server rejected the WebSocket {path} with HTTP {event.status_code}")

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise NetworkError(f"WebSocket connection broke while sending ({e})") from None

    def _events(self, deadline: Deadline):
        what = deadline.what
        data = deadline.recv()
        if not data:
            raise NetworkError(f"the connection closed while waiting for {what}")
        try:
            self.ws.receive_data(data)
            yield from self.ws.events()
        except Exception as e:  # wsproto raises its own RemoteProtocolError family
            raise ProtocolError(f"invalid WebSocket data while waiting for {what} ({e})") from None

    def send_text(self, text: str) -> None:
        self._send(self.ws.send(Message(data=text)))

    def receive_text(self) -> str:
        """The next complete text message (pings are answered on the way).  One read may carry
        several messages: the ones after this message wait in the backlog for the next call."""
        parts: list[str] = []
        deadline = Deadline(self.sock, "a WebSocket message")
        while True:
            if not self._backlog:
                self._backlog = list(self._events(deadline))
            while self._backlog:
                event = self._backlog.pop(0)
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        return "".join(parts)
                elif isinstance(event, Ping):
                    self._send(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    raise NetworkError(f"the server closed the WebSocket ({event.code} {event.reason})")

    def close(self) -> None:
        try:
            self._send(self.ws.send(CloseConnection(code=1000)))
        except Exception:
            pass
