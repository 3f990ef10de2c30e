"""harness.clients.wire: HTTP/1.1 and WebSocket over a socket, against a peer that answers
what a test tells it to (a real socket pair; the protocol layer does not care about TLS)."""

from __future__ import annotations

import socket
import threading

import h11
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from harness.clients.wire import MAX_RESPONSE, WebSocket, http_request
from harness.errors import NetworkError, ProtocolError


def peer(answer):
    """A socket pair whose far end reads one request, runs ``answer(sock)``, then ends its side
    and waits for the client to close (so the client never writes into a closed socket)."""
    mine, theirs = socket.socketpair()
    mine.settimeout(5)
    theirs.settimeout(10)

    def serve():
        with theirs:
            theirs.recv(65536)
            answer(theirs)
            theirs.shutdown(socket.SHUT_WR)
            while theirs.recv(65536):
                pass

    threading.Thread(target=serve, daemon=True).start()
    return mine


def canned(raw: bytes):
    return lambda s: s.sendall(raw)


def test_json_answer():
    body = b'{"ok": true}'
    sock = peer(canned(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body)))
    r = http_request(sock, "POST", "api.screenmeet.com", "/api/v1/session", json_body={"code": "1"})
    assert (r.status, r.headers["content-type"], r.json()) == (200, "application/json", {"ok": True})


@pytest.mark.parametrize("raw,says", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "not JSON"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", "JSON that is not an object"),
])
def test_bodies_that_are_not_a_json_object(raw, says):
    r = http_request(peer(canned(raw)), "GET", "api.screenmeet.com", "/")
    with pytest.raises(ProtocolError, match=says):
        r.json()


@pytest.mark.parametrize("answer,says", [
    (canned(b""), "closed the connection without answering GET /"),
    (canned(b"HTTP/1.1 200 OK\r\nContent-Le"), "closed the connection before finishing its answer to GET /"),
    (canned(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"), "is not valid HTTP"),
    (lambda s: s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_RESPONSE + 10)
                         + b"x" * (MAX_RESPONSE + 10)), "is larger than"),
])
def test_broken_or_hostile_answers_are_protocol_errors(answer, says):
    with pytest.raises(ProtocolError, match=says):
        http_request(peer(answer), "GET", "api.screenmeet.com", "/")


def test_a_silent_server_is_a_timeout():
    mine, theirs = socket.socketpair()
    mine.settimeout(0.3)
    with theirs, pytest.raises(NetworkError, match="timed out waiting for the answer to GET /"):
        http_request(mine, "GET", "api.screenmeet.com", "/")


def ws_server(replies: list[str], close: bool = False):
    def answer(s):
        ws = WSConnection(ConnectionType.SERVER)
        ws.receive_data(first[0])
        out = b"".join(ws.send(AcceptConnection()) for e in ws.events() if isinstance(e, Request))
        out += b"".join(ws.send(TextMessage(data=text)) for text in replies)
        if close:
            out += ws.send(CloseConnection(code=1008, reason="policy"))
        s.sendall(out)  # one write: the answer and the messages arrive in one read

    first: list[bytes] = []
    mine, theirs = socket.socketpair()
    mine.settimeout(5)

    def serve():
        with theirs:
            first.append(theirs.recv(65536))
            answer(theirs)

    threading.Thread(target=serve, daemon=True).start()
    return mine


def test_websocket_handshake_and_messages():
    """The server speaks at once: its messages may share a read with the handshake's answer,
    and two messages may share one read; none is dropped."""
    ws = WebSocket(ws_server(["hello", "again"]), "beam.screenmeet.com", "/ws")
    assert ws.receive_text() == "hello" and ws.receive_text() == "again"


def test_websocket_closed_by_the_server_is_a_network_error():
    ws = WebSocket(ws_server([], close=True), "beam.screenmeet.com", "/ws")
    with pytest.raises(NetworkError, match="closed the WebSocket \\(1008 policy\\)"):
        ws.receive_text()


def test_websocket_rejected_with_http():
    def reject(s):
        conn = h11.Connection(h11.SERVER)
        s.sendall(conn.send(h11.Response(status_code=403, headers=[("Content-Length", "0")]))
                  + conn.send(h11.EndOfMessage()))

    with pytest.raises(ProtocolError, match="rejected the WebSocket /ws with HTTP 403"):
        WebSocket(peer(reject), "beam.screenmeet.com", "/ws")
