"""harness.net.admin: the admin endpoint under hostile clients.

The pure rules (deadline arithmetic, admission at the cap, which Host values
pass) without sockets; then the endpoint on real sockets with a short
deadline: slowloris tricklers and silent connections are cut, a flood beyond
the cap does not keep a normal reader out, a rebinding Host gets 421; and the
proxy's and the server's endpoints of a running lab answer a foreign Host with 421.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from harness.net.admin import (
    AdminEndpoint,
    Admission,
    Deadline,
    allowed_hosts,
    host_allowed,
    start_admin,
)
from harness.net.journal import Journal, JournalReader

# -- Deadline ------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_deadline_counts_down_from_its_start_and_stops_at_zero():
    clock = FakeClock()
    d = Deadline(1.0, clock=clock)
    assert d.remaining() == 1.0 and not d.expired
    clock.now += 0.25
    assert d.remaining() == pytest.approx(0.75)
    clock.now += 0.75
    assert d.remaining() == 0.0 and d.expired
    clock.now += 50  # long past: still 0, never negative (a negative wait_for timeout is an error elsewhere)
    assert d.remaining() == 0.0


def test_deadline_is_for_the_whole_request_not_per_read():
    """Many small gaps each shorter than the limit still add up to the limit (the slowloris case)."""
    clock = FakeClock(0.0)
    d = Deadline(1.0, clock=clock)
    for _ in range(4):
        clock.now += 0.3  # a byte every 0.3 s
    assert d.expired


def test_deadline_with_an_explicit_start():
    clock = FakeClock(10.0)
    assert Deadline(5.0, clock=clock, start=8.0).remaining() == 3.0


# -- Admission -----------------------------------------------------------------------------------


def test_admission_below_the_cap_admits_everyone():
    a = Admission(3)
    assert [a.admit(c) for c in "xyz"] == [(True, None)] * 3
    assert len(a) == 3


def test_admission_at_the_cap_evicts_the_oldest_reading_connection():
    a = Admission(3)
    for c in "xyz":
        a.admit(c)
    a.answering("x")  # x's request is complete: never evicted
    assert a.admit("n1") == (True, "y")
    assert a.admit("n2") == (True, "z")
    assert a.admit("n3") == (True, "n1")
    assert len(a) == 3


def test_admission_refuses_when_every_connection_is_answering():
    a = Admission(2)
    for c in "xy":
        a.admit(c)
        a.answering(c)
    assert a.admit("late") == (False, None)
    a.leave("x")
    assert a.admit("late") == (True, None)


def test_admission_an_evicted_connection_does_not_come_back_as_answering():
    a = Admission(1)
    a.admit("old")
    assert a.admit("new") == (True, "old")
    a.answering("old")  # its coroutine finished reading just as it was evicted
    assert len(a) == 1
    a.leave("old")
    assert len(a) == 1


@pytest.mark.parametrize("cap", [0, -1])
def test_admission_needs_a_cap_of_one_or_more(cap):
    with pytest.raises(ValueError, match="cap must be 1 or more"):
        Admission(cap)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_endpoint_rejects_a_meaningless_request_timeout(timeout):
    with pytest.raises(ValueError, match="request timeout"):
        AdminEndpoint(Journal(), name="x", request_timeout=timeout)


# -- which Host values pass ------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1:4000", "localhost:4000", "LOCALHOST:4000", " 127.0.0.1:4000 "])
def test_host_of_a_loopback_endpoint_passes(host):
    assert host_allowed([host.encode()], allowed_hosts("127.0.0.1", 4000))


@pytest.mark.parametrize("hosts", [
    [b"evil.example:4000"],            # a rebinding page's own name
    [b"evil.example"],
    [b"127.0.0.1:4001"],               # another port
    [b"127.0.0.1"],                    # port left out, not 80
    [b"127.0.0.1:4000.evil.example"],
    [b"127.0.0.2:4000"],
    [b""],
    [],                                # no Host at all (HTTP/1.0)
    [b"127.0.0.1:4000", b"127.0.0.1:4000"],  # two Host headers
])
def test_foreign_host_of_a_loopback_endpoint_fails(hosts):
    assert not host_allowed(hosts, allowed_hosts("127.0.0.1", 4000))


def test_host_of_a_compose_endpoint_is_its_address_or_a_named_service():
    allowed = allowed_hosts("172.18.0.2", 9000, names=["screenmeet", "0.0.0.0"])
    assert host_allowed(["172.18.0.2:9000"], allowed)
    assert host_allowed(["screenmeet:9000"], allowed)
    assert host_allowed(["0.0.0.0:9000"], allowed)
    assert not host_allowed(["localhost:9000"], allowed)  # not loopback: localhost is somebody else
    assert not host_allowed(["screenmeet.com:9000"], allowed)
    assert not host_allowed(["screenmeet:9001"], allowed)


def test_host_of_ipv6_and_dual_stack_endpoints():
    assert host_allowed(["[::1]:4000"], allowed_hosts("::1", 4000))
    assert host_allowed(["localhost:4000"], allowed_hosts("::1", 4000))
    assert not host_allowed(["::1:4000"], allowed_hosts("::1", 4000))
    mapped = allowed_hosts("::ffff:127.0.0.1", 4000)
    assert host_allowed(["127.0.0.1:4000"], mapped) and host_allowed(["localhost:4000"], mapped)


def test_port_80_may_be_left_out():
    allowed = allowed_hosts("10.1.2.3", 80)
    assert host_allowed(["10.1.2.3"], allowed) and host_allowed(["10.1.2.3:80"], allowed)
    assert not host_allowed(["10.1.2.3:8080"], allowed)


# -- real sockets --------------------------------------------------------------------------------


@contextlib.contextmanager
def endpoint_in_thread(journal: Journal, **rules):
    """An AdminEndpoint on 127.0.0.1 in a loop of its own thread: yields (endpoint, port, loop)."""
    loop = asyncio.new_event_loop()
    started: dict = {}
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)

        async def go():
            endpoint, url = await start_admin(journal, "127.0.0.1", 0, name="proxy", **rules)
            started.update(endpoint=endpoint, port=int(url.rsplit(":", 1)[1]))
            ready.set()

        loop.run_until_complete(go())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield started["endpoint"], started["port"], loop
    finally:
        asyncio.run_coroutine_threadsafe(started["endpoint"].close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    return s


def closed_by_peer(s: socket.socket) -> bool:
    try:
        return s.recv(65536) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def wait_all_closed(socks: list[socket.socket], timeout: float) -> float:
    """Seconds until the peer closed every socket; raises AssertionError after ``timeout``."""
    start = time.monotonic()
    pending = list(socks)
    while pending:
        left = start + timeout - time.monotonic()
        assert left > 0, f"{len(pending)} of {len(socks)} connections still open after {timeout}s"
        readable, _, _ = select.select(pending, [], [], left)
        pending = [s for s in pending if not (s in readable and closed_by_peer(s))]
    return time.monotonic() - start


def raw_get(port: int, path: str = "/healthz", host: str | None = None, version: str = "1.1") -> tuple[int, dict]:
    host = f"127.0.0.1:{port}" if host is None else host
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = f"GET {path} HTTP/{version}\r\n" + (f"Host: {host}\r\n" if host else "") + "\r\n"
        s.sendall(head.encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1])


def test_a_trickling_slowloris_is_cut_at_the_whole_request_deadline():
    """Each byte comes well within the deadline (0.3 s < 1 s), the request never completes:
    cut after ~1 s all the same."""
    with endpoint_in_thread(Journal(), request_timeout=1.0) as (endpoint, port, _):
        socks = [connect(port) for _ in range(5)]
        start = time.monotonic()
        request = b"GET /journal HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
        sent = 0
        cut = set()
        while len(cut) < len(socks) and time.monotonic() - start < 5:
            for s in socks:
                if s not in cut:
                    try:
                        s.send(request[sent:sent + 1])
                    except OSError:
                        cut.add(s)
                    if closed_by_peer(s):
                        cut.add(s)
            sent += 1
            time.sleep(0.3)
        elapsed = time.monotonic() - start
        for s in socks:
            s.close()
    assert len(cut) == len(socks), "a trickling connection outlived the request deadline"
    assert 0.9 <= elapsed < 2.5, elapsed


def test_a_silent_connection_is_cut_at_the_deadline():
    with endpoint_in_thread(Journal(), request_timeout=1.0) as (endpoint, port, _):
        s = connect(port)
        assert 0.9 <= wait_all_closed([s], 5) < 2.5
        s.close()


def test_two_hundred_slow_connections_are_cut_and_a_reader_still_gets_its_answer():
    """The issue's flood, scaled: 200 connections that each sent one byte, against a cap of 64
    and a 1 s deadline.  Those over the cap make room by evicting the oldest at once; a normal
    reader in the middle of the flood gets its answer; every slow one is gone within ~1 s."""
    j = Journal()
    j.add({"lane": 0, "note": "ground truth"})
    with endpoint_in_thread(j, request_timeout=1.0, max_connections=64) as (endpoint, port, loop):
        socks = []
        for _ in range(200):
            s = connect(port)
            s.send(b"G")
            socks.append(s)
        start = time.monotonic()
        records = JournalReader(f"http://127.0.0.1:{port}", timeout=5).read()
        assert [r["note"] for r in records] == ["ground truth"]
        wait_all_closed(socks, 3)
        assert time.monotonic() - start < 3
        for s in socks:
            s.close()
        count = len(endpoint.admission)
    assert count == 0


def test_at_the_cap_the_oldest_slow_connection_makes_room_at_once():
    with endpoint_in_thread(Journal(), request_timeout=30.0, max_connections=4) as (endpoint, port, _):
        slow = []
        for _ in range(4):
            slow.append(connect(port))
            slow[-1].send(b"GET /healthz HTTP/1.1\r\n")
            time.sleep(0.05)  # a definite age order
        assert raw_get(port) == (200, {"ok": True, "name": "proxy"})
        assert wait_all_closed(slow[:1], 2) < 1.0  # the oldest was evicted for the reader
        time.sleep(0.2)
        assert not any(closed_by_peer(s) for s in slow[1:])  # the others still wait (30 s deadline)
        for s in slow:
            s.close()


def test_at_the_cap_with_every_slot_answering_a_newcomer_is_closed_at_once():
    j = Journal()
    j.open("c1", {"lane": 0})
    with endpoint_in_thread(j, request_timeout=30.0, max_connections=2) as (endpoint, port, loop):
        polls = []
        for _ in range(2):  # two long polls, waiting for lane 0 to settle: both are being answered
            polls.append(connect(port))
            polls[-1].send(f"GET /journal?lane=0&settle=20 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        time.sleep(0.3)
        late = connect(port)
        assert wait_all_closed([late], 2) < 1.0
        late.close()
        loop.call_soon_threadsafe(j.close, "c1")  # the long polls get their answers
        for s in polls:
            s.setblocking(True)
            s.settimeout(10)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200") and b'"settled": true' in data
            s.close()


def test_a_reader_that_never_reads_its_answer_is_dropped():
    j = Journal()
    for i in range(300):
        j.add({"lane": 0, "blob": "x" * 65536})  # ~20 MB: more than the socket buffers hold
    with endpoint_in_thread(j, request_timeout=1.0) as (endpoint, port, loop):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET /journal HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        deadline = time.monotonic() + 5
        count = 1
        while count and time.monotonic() < deadline:
            time.sleep(0.2)
            count = len(endpoint.admission)
        s.close()
    assert count == 0, "the endpoint still holds a connection whose reader stopped reading"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost.evil.example:{port}"])
def test_a_rebinding_host_gets_421_over_the_wire(host):
    with endpoint_in_thread(Journal(), request_timeout=5.0) as (endpoint, port, _):
        status, body = raw_get(port, "/journal", host=host.format(port=port))
        assert status == 421 and "Host" in body["error"] and "records" not in body
        assert raw_get(port, "/healthz", host=f"localhost:{port}")[0] == 200
        assert raw_get(port, "/healthz")[0] == 200


def test_no_host_at_all_gets_421():
    with endpoint_in_thread(Journal(), request_timeout=5.0) as (endpoint, port, _):
        assert raw_get(port, host="", version="1.0")[0] == 421


# -- the lab's own endpoints ---------------------------------------------------------------------


def test_the_labs_proxy_and_server_endpoints_refuse_a_rebinding_host(tls_lab):
    for url in (tls_lab.proxy_admin, tls_lab.server_admin):
        port = int(url.rsplit(":", 1)[1])
        assert raw_get(port, "/journal?after=0", host=f"rebind.attacker.example:{port}")[0] == 421
        assert JournalReader(url).healthy(timeout=5)  # the lab's own reader, by the announced URL
        request = urllib.request.Request(url + "/healthz", headers={"Host": f"attacker.example:{port}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 421
