"""Tests for harness.lab.execstream: the engine's multiplexed frames and the JSON-lines channel.

The channel is tested over a socket pair whose other end frames its answers as
the Docker engine does (stdout and stderr frames); the real exec stream into a
container is tested by the compose suite (tests/lab/test_compose.py).
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from harness.lab.execstream import STDERR, STDOUT, Channel, Frames, SessionClosed


def test_frames_split_as_the_engine_writes_them():
    stream = Frames.frame(STDOUT, b'{"id": 1}\n') + Frames.frame(STDERR, b"warn\n") + Frames.frame(STDOUT, b"")
    decoder = Frames()
    got = []
    for i in range(0, len(stream), 3):  # in pieces that cut headers and data anywhere
        got += decoder.feed(stream[i:i + 3])
    assert got == [(STDOUT, b'{"id": 1}\n'), (STDERR, b"warn\n"), (STDOUT, b"")]
    assert decoder.buffer == b""
    # A header announcing more than has come yet keeps everything until the rest arrives.
    assert Frames().feed(Frames.frame(STDOUT, b"abcdef")[:-1]) == []


class Peer:
    """The program's end: reads request lines, answers through ``respond(request) -> list of frames``."""

    def __init__(self, respond) -> None:
        self.ours, theirs = socket.socketpair()
        self.channel = Channel(theirs, "test peer")
        self.respond = respond
        self.requests: list[dict] = []
        self.eof = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        buffer = b""
        while chunk := self.ours.recv(65536):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                self.requests.append(request)
                for frame in self.respond(request):
                    self.ours.sendall(frame)
        self.eof.set()

    def hang_up(self, last_words: bytes = b"") -> None:
        if last_words:
            self.ours.sendall(Frames.frame(STDERR, last_words))
        self.ours.shutdown(socket.SHUT_RDWR)  # a close alone waits for the recv of _serve


def ready(request):
    if request.get("run") == "hello":
        return [Frames.frame(STDOUT, json.dumps({"id": request["id"], "ready": True}).encode() + b"\n")]
    return []


def test_greet_then_answers_match_their_requests_in_any_order():
    held: list[dict] = []

    def respond(request):
        if request.get("run") == "hello":
            return ready(request)
        held.append(request)
        if len(held) < 2:
            return []
        # Both answers at once, the second request's first, split over frames mid-line.
        text = b"".join(json.dumps({"id": r["id"], "echo": r["n"]}).encode() + b"\n" for r in reversed(held))
        return [Frames.frame(STDOUT, text[:7]), Frames.frame(STDERR, b"a note\n"), Frames.frame(STDOUT, text[7:])]

    peer = Peer(respond)
    assert peer.channel.greet(10)["ready"] is True
    results = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, peer.channel.request({"n": n}, 10)))
               for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert {n: r["echo"] for n, r in results.items()} == {1: 1, 2: 2}
    assert "a note" in peer.channel.stderr
    assert all("id" in r for r in peer.requests)


def test_a_peer_that_dies_fails_what_waits_and_what_comes_after_with_its_last_words():
    peer = Peer(ready)
    peer.channel.greet(10)
    waiting = {}
    t = threading.Thread(target=lambda: waiting.setdefault("error", _raises(peer.channel, {"run": "x"}, 30)))
    t.start()
    while len(peer.requests) < 2:
        threading.Event().wait(0.01)
    peer.hang_up(b"Traceback ...\nMemoryError: out of memory\n")
    t.join(20)
    assert isinstance(waiting["error"], SessionClosed) and "MemoryError: out of memory" in str(waiting["error"])
    assert not peer.channel.alive
    with pytest.raises(SessionClosed, match="out of memory"):
        peer.channel.request({"run": "y"}, 5)


def _raises(channel, message, timeout):
    try:
        channel.request(message, timeout)
    except Exception as e:
        return e
    return None


def test_a_program_that_is_not_ready_is_closed():
    peer = Peer(lambda r: [Frames.frame(STDOUT, json.dumps({"id": r["id"], "error": "no"}).encode() + b"\n")])
    with pytest.raises(SessionClosed, match="did not start: it answered .* instead of ready"):
        peer.channel.greet(10)
    assert not peer.channel.alive
    assert peer.eof.wait(10)  # close() ended the program's input


def test_no_answer_is_a_timeout_and_a_stray_line_a_diagnostic():
    peer = Peer(lambda r: [Frames.frame(STDOUT, b"Traceback (not json)\n")])
    with pytest.raises(TimeoutError, match="did not answer within 0.2s"):
        peer.channel.request({"run": "hello"}, 0.2)
    assert "Traceback (not json)" in peer.channel.stderr
    assert peer.channel.alive  # a slow answer is not a dead program
    peer.channel.close()
    assert peer.eof.wait(10)
