"""Fuzzing with hypothesis, bounded (max_examples, deadline) so the suite stays fast.

* pins: parsing files of arbitrary bytes, matching arbitrary presented chains;
* exception patterns and policies: arbitrary hosts and tables, against a model;
* the mock server: arbitrary requests and raw bytes (aiohttp test server, and
  over real TLS to the lab's server), arbitrary WebSocket frames; it never
  answers 5xx, never dies, and its journal stays consistent;
* the journal endpoint: arbitrary query strings and raw bytes.

tests/model/test_pins.py, test_policy.py and test_journal.py hold the example-based
tests and a few properties; these add the adversarial inputs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
import ssl
import string
import tempfile
import urllib.parse
from pathlib import Path

import pytest
from aiohttp.http_exceptions import HttpProcessingError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.errors import BadFileError
from harness.model.pins import check_pins, load_pins, parse_pin
from harness.model.policy import INTERCEPT, PASS_THROUGH, HostPattern, Policy, is_lab_host, normalize_host
from harness.net.journal import AdminEndpoint, Journal, JournalReader, start_admin
from harness.server.mock import MockScreenMeet

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NETWORK = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

DIGEST = st.binary(min_size=32, max_size=32)


def b64(d: bytes) -> str:
    return base64.b64encode(d).decode()


# -- pins ---------------------------------------------------------------------------------

def parsed_or_none(text: str) -> bytes | None:
    try:
        return parse_pin(text)
    except ValueError:
        return None


@FAST
@given(pins=st.lists(DIGEST, min_size=1, max_size=3),
       presented=st.lists(st.one_of(st.text(max_size=60), DIGEST.map(lambda d: "sha256/" + b64(d)),
                                    DIGEST.map(lambda d: "sha256//" + b64(d))), max_size=5),
       include=st.booleans())
def test_check_pins_matches_exactly_when_a_presented_digest_is_pinned(pins, presented, include):
    if include:
        presented = [*presented, "sha256/" + b64(pins[-1])]
    result = check_pins(presented, pins)
    assert result.matched == any(parsed_or_none(p) in pins for p in presented)
    assert (result.matched_pin is not None) == result.matched
    assert result.describe()  # a sentence either way, whatever was presented


@FAST
@given(st.one_of(st.binary(max_size=300),
                 st.lists(st.one_of(DIGEST.map(lambda d: "sha256/" + b64(d)), st.text(max_size=50)), max_size=6)
                 .map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))))
@example(b"\xef\xbb\xbfsha256/" + b64(b"\x01" * 32).encode())  # a BOM before the first pin
@example(b"sha256/" + b64(b"\x01" * 32).encode() + b"\r\n")
def test_load_pins_on_arbitrary_bytes_is_pins_or_one_sentence(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "pins.txt")
        path.write_bytes(data)
        try:
            pins = load_pins(path)
        except BadFileError as e:
            message = str(e)
            assert message.startswith(f"pins file {path}") and message.endswith(".") and "\n" not in message.strip()
            return
    assert pins and all(len(p) == 32 for p in pins)


# -- exception patterns and policies --------------------------------------------------------

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
NAME = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
ANY_HOST = st.one_of(st.text(max_size=40), NAME, NAME.map(str.upper), NAME.map(lambda n: n + "."),
                     st.ip_addresses().map(str), st.ip_addresses(v=6).map(lambda a: f"[{a}]"))


def model_matches(pattern: str, host: str) -> bool:
    """Label-anchored matching, written independently of harness.model.policy."""
    h = host.strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    h = h[:-1] if h.endswith(".") else h
    try:
        import ipaddress

        ipaddress.ip_address(h)
        return False  # name patterns never match an address
    except ValueError:
        pass
    if pattern.startswith("*."):
        return h.split(".")[-len(pattern[2:].split(".")):] == pattern[2:].split(".") and h != pattern[2:]
    return h == pattern


@FAST
@given(pattern=st.one_of(NAME, NAME.filter(lambda n: "." in n).map(lambda n: "*." + n)), host=ANY_HOST)
@example(pattern="*.screenmeet.com", host="screenmeet.com")
@example(pattern="*.screenmeet.com", host="evilscreenmeet.com")
@example(pattern="screenmeet.com", host="screenmeet.com.evil")
def test_pattern_matching_agrees_with_a_label_model(pattern, host):
    assert HostPattern.parse(pattern).matches(host) == model_matches(pattern, host)


@FAST
@given(patterns=st.lists(st.one_of(NAME, NAME.filter(lambda n: "." in n).map(lambda n: "*." + n),
                                   st.ip_addresses().map(str)), max_size=4),
       host=st.one_of(st.none(), ANY_HOST))
def test_policy_decisions_are_total_and_consistent(patterns, host):
    inspect = Policy.from_dict("p", {"mode": "inspect", "exceptions": patterns})
    tunnel = Policy.from_dict("t", {"mode": "tunnel", "exceptions": patterns})
    decision = inspect.decide(host)
    assert decision in (INTERCEPT, PASS_THROUGH)
    assert (decision == PASS_THROUGH) == (inspect.exception_for(host) is not None)
    assert tunnel.decide(host) == PASS_THROUGH
    assert Policy.from_dict("n", {"mode": "inspect"}).decide(host) == INTERCEPT
    assert isinstance(is_lab_host(host, ("screenmeet.com",)), bool)


@FAST
@given(st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=20), st.integers(), st.none(),
                                                       st.lists(st.text(max_size=20), max_size=3)), max_size=4))
@example({"mode": "inspect", "exceptions": ["*"]})
@example({"mode": "inspect", "exceptions": [""]})
def test_policy_tables_are_a_policy_or_one_value_error(table):
    try:
        policy = Policy.from_dict("fuzz", table)
    except ValueError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert Policy.from_dict("fuzz", policy.to_dict()) == policy


@FAST
@given(name=NAME, upper=st.booleans(), dot=st.booleans(), pad=st.sampled_from(["", " ", "\t"]))
def test_normalize_host_undoes_case_trailing_dot_and_padding(name, upper, dot, pad):
    written = pad + (name.upper() if upper else name) + ("." if dot else "") + pad
    assert normalize_host(written) == name


@FAST
@given(st.ip_addresses(v=6))
def test_normalize_host_strips_ipv6_brackets(address):
    assert normalize_host(f"[{address}]") == str(address).lower()


# -- the mock server (aiohttp test server, plain HTTP) ------------------------------------

@contextlib.contextmanager
def mock_server(show_secrets: bool = False):
    """The mock server's app on an aiohttp test server (127.0.0.1, plain HTTP), with its loop."""
    from aiohttp.test_utils import TestClient, TestServer

    loop = asyncio.new_event_loop()
    server = MockScreenMeet(show_secrets=show_secrets)

    async def start():
        client = TestClient(TestServer(server.app()))
        await client.start_server()
        return client

    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append
    logging.getLogger("aiohttp").addHandler(handler)
    client = loop.run_until_complete(start())
    try:
        yield loop, client, server
    finally:
        loop.run_until_complete(client.close())
        loop.close()
        logging.getLogger("aiohttp").removeHandler(handler)
    # A handler that raised is aiohttp's "Error handling request" (a 500 and a traceback in the log).
    # aiohttp logs malformed requests (its own 400s) the same way: those are not the server's fault.
    crashes = [r for r in errors if not isinstance(logged_exception(r), HttpProcessingError)]
    assert not crashes, [r.getMessage() + repr(logged_exception(r)) for r in crashes[:3]]


def logged_exception(record: logging.LogRecord) -> BaseException | None:
    if record.exc_info and record.exc_info[1] is not None:
        return record.exc_info[1]
    return next((a for a in (record.args or ()) if isinstance(a, BaseException)), None)


def assert_journal_consistent(journal: Journal, show_secrets: bool = False) -> None:
    records = journal.read()
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(1, len(records) + 1))
    for r in records:
        assert r["kind"] in ("http", "ws-message")
        assert isinstance(r["host"], str) and isinstance(r["path"], str)
        if r["kind"] == "http":
            assert isinstance(r["status"], int) and r["status"] < 500
        if not show_secrets:
            for key in ("authorization", "code"):
                # Masked, at most the scheme word kept (harness.model.secrets.mask_value).
                assert r.get(key) is None or r[key].endswith("[redacted]") and len(r[key].split()) <= 2, r
    json.dumps(records)  # the admin endpoint can always serve it


HOSTS = st.sampled_from(["api.screenmeet.com", "beam.screenmeet.com", "screenmeet.com", "evil.example", "", "API.SCREENMEET.COM:443"])
PATHS = st.one_of(st.sampled_from(["/", "/api/v1/sessions/join", "/beam/v1/agents/register",
                                   "/api/v1/sessions/x/ws", "/beam/v1/agents/y/heartbeat", "/nowhere"]),
                  st.text(string.ascii_letters + string.digits + "/._-~%", max_size=40).map(lambda p: "/" + p.lstrip("/")))
BODIES = st.one_of(st.binary(max_size=200), st.dictionaries(st.text(max_size=8), st.one_of(
    st.text(max_size=12), st.integers(), st.none()), max_size=3).map(lambda d: json.dumps(d).encode()),
    st.just(b'{"code": ""}'), st.just(b'{"code": "4711"}'))


def test_server_answers_arbitrary_requests_without_5xx_and_keeps_its_journal_consistent():
    with mock_server() as (loop, client, server):
        @NETWORK
        @given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
               host=HOSTS, path=PATHS, body=BODIES,
               auth=st.one_of(st.none(), st.just("Bearer "), st.text(string.printable.strip(), max_size=30)
                              .map(lambda t: "Bearer " + t)))
        def check(method, host, path, body, auth):
            headers = {"Host": host} if host else {}
            if auth is not None:
                headers["Authorization"] = auth
            before = server.journal.last_seq

            async def one():
                async with client.request(method, path, data=body, headers=headers) as resp:
                    await resp.read()
                    return resp.status

            status = loop.run_until_complete(one())
            assert status < 500
            new = server.journal.read(after=before)
            assert len(new) <= 1 and all(r["status"] == status for r in new)

        check()
        assert_journal_consistent(server.journal)


RAW_REQUESTS = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda m, p, h, extra: f"{m} {p} HTTP/1.1\r\nHost: {h}\r\n{extra}\r\n".encode("utf-8", "surrogatepass"),
              st.text(string.ascii_uppercase, min_size=1, max_size=8), PATHS, HOSTS,
              st.text(max_size=60).map(lambda t: t.replace("\r", "").replace("\n", "\r\n"))),
    st.just(b"GET / HTTP/1.1\r\nHost: screenmeet.com\r\nContent-Length: -1\r\n\r\n"),
    st.just(b"POST /api/v1/sessions/join HTTP/1.1\r\nHost: api.screenmeet.com\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    st.just(b"GET / HTTP/1.1\r\nHost: screenmeet.com\r\n" + b"X: " + b"a" * 70000 + b"\r\n\r\n"),
)


def test_server_survives_arbitrary_bytes():
    with mock_server() as (loop, client, server):
        host, port = client.server.host, client.server.port

        @NETWORK
        @given(RAW_REQUESTS)
        def check(raw):
            async def one():
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(raw)
                writer.write_eof()
                answer = await asyncio.wait_for(reader.read(), 5)
                writer.close()
                return answer

            answer = loop.run_until_complete(one())
            if answer:
                assert answer.startswith(b"HTTP/1."), answer[:80]
                assert not answer.split(b" ", 2)[1].startswith(b"5"), answer[:80]

        check()

        async def still_serves():
            async with client.get("/", headers={"Host": "screenmeet.com"}) as resp:
                return resp.status

        assert loop.run_until_complete(still_serves()) == 200
        assert_journal_consistent(server.journal)


def test_server_websocket_survives_arbitrary_frames():
    from aiohttp import WSMsgType

    with mock_server() as (loop, client, server):
        @NETWORK
        @given(st.lists(st.one_of(st.text(max_size=50).map(lambda t: ("text", t)),
                                  st.binary(max_size=50).map(lambda b: ("binary", b)),
                                  st.binary(max_size=20).map(lambda b: ("ping", b))), max_size=8))
        def check(frames):
            before = server.journal.last_seq

            async def session():
                replies = []
                async with client.ws_connect("/api/v1/sessions/fz/ws", headers={"Host": "api.screenmeet.com"}) as ws:
                    for kind, data in frames:
                        if kind == "text":
                            await ws.send_str(data)
                            msg = await asyncio.wait_for(ws.receive(), 5)
                            assert msg.type == WSMsgType.TEXT
                            replies.append(msg.data)
                        elif kind == "binary":
                            await ws.send_bytes(data)
                        else:
                            await ws.ping(data)
                return replies

            replies = loop.run_until_complete(session())
            texts = [d for k, d in frames if k == "text"]
            assert replies == [f"ack {n}" for n in range(1, len(texts) + 1)]
            new = server.journal.read(after=before)
            assert [r["kind"] for r in new] == ["http"] + ["ws-message"] * len(texts)
            assert [r["length"] for r in new[1:]] == [len(t) for t in texts]

        check()
        assert_journal_consistent(server.journal)


def test_server_websocket_survives_malformed_frames():
    with mock_server() as (loop, client, server):
        host, port = client.server.host, client.server.port
        upgrade = (b"GET /beam/v1/agents/a/heartbeat HTTP/1.1\r\nHost: beam.screenmeet.com\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")

        @NETWORK
        @given(st.binary(max_size=200))
        def check(frames):
            async def one():
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(upgrade + frames)
                writer.write_eof()
                answer = await asyncio.wait_for(reader.read(), 5)
                writer.close()
                return answer

            answer = loop.run_until_complete(one())
            # 101 then (maybe) a close frame; nothing if the end of input overtook the upgrade.
            assert answer == b"" or answer.startswith(b"HTTP/1.1 101"), answer[:80]

        check()
        assert_journal_consistent(server.journal)

        async def proper_session():
            async with client.ws_connect("/beam/v1/agents/a/heartbeat", headers={"Host": "beam.screenmeet.com"}) as ws:
                await ws.send_str("hb-1")
                return (await asyncio.wait_for(ws.receive(), 5)).data

        assert loop.run_until_complete(proper_session()) == "pong hb-1"


# -- the lab's mock server over real TLS --------------------------------------------------------

# How a peer that closed first shows to the side still sending: over TLS an EOF (or the
# close_notify) in the middle of a write, over TCP a broken pipe or a reset.
CLOSED_FIRST = (ssl.SSLEOFError, ssl.SSLZeroReturnError, BrokenPipeError, ConnectionResetError)


def send_until_closed(sock, raw: bytes) -> bool:
    """Send ``raw``; True if all of it went, False if the server closed the connection first.

    The server may answer a request it has seen enough of (a 400 for a 70 kB header) and close
    before the rest arrives: that is an allowed ending, and what it answered is still read.
    """
    try:
        sock.sendall(raw)
    except CLOSED_FIRST:
        return False
    return True


def test_send_until_closed_tells_a_closed_peer_from_other_errors():
    a, b = socket.socketpair()
    with a, b:
        assert send_until_closed(a, b"hello") is True and b.recv(5) == b"hello"
        b.close()
        # The first send after the peer closed may still be buffered; a big one meets the closed end.
        assert send_until_closed(a, b"x" * (1 << 22)) is False
    # Negative: any other failure (here a socket closed on our side) is still an error.
    c, d = socket.socketpair()
    d.close()
    c.close()
    with pytest.raises(OSError) as info:
        send_until_closed(c, b"x")
    assert not isinstance(info.value, CLOSED_FIRST)

@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raw=RAW_REQUESTS, sni=st.sampled_from(["api.screenmeet.com", "beam.screenmeet.com", "screenmeet.com"]))
def test_lab_server_over_tls_survives_arbitrary_bytes(tls_lab, raw, sni):
    host, port = tls_lab.server_connect[0].rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=tls_lab.pki["trust_public"])
    with socket.create_connection((host, int(port)), timeout=5) as tcp:
        with ctx.wrap_socket(tcp, server_hostname=sni) as tls:
            tls.settimeout(0.5)
            send_until_closed(tls, raw)
            answer = b""
            with contextlib.suppress(OSError, ssl.SSLError):
                while chunk := tls.recv(65536):
                    answer += chunk
    if answer:
        assert answer.startswith(b"HTTP/1."), answer[:80]
        assert not answer.split(b" ", 2)[1].startswith(b"5"), answer[:80]


def test_lab_server_still_serves_and_its_journal_is_consistent_after_the_fuzzing(tls_lab, lab_journal):
    """Runs after the TLS fuzz test (file order): the server process is alive and its journal whole."""
    from harness.clients.transport import trust_context
    from harness.clients.wire import http_request

    host, port = tls_lab.server_connect[0].rsplit(":", 1)
    ctx = trust_context(tls_lab.pki["trust_public"])
    with ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=5), server_hostname="screenmeet.com") as s:
        assert http_request(s, "GET", "screenmeet.com", "/").status == 200
    records = JournalReader(tls_lab.server_admin).read()
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(set(seqs)) and all(b - a == 1 for a, b in zip(seqs, seqs[1:]))
    assert all(r.get("status", 200) < 500 for r in records)


# -- the journal endpoint -----------------------------------------------------------------------

def filled_journal() -> Journal:
    j = Journal()
    for i in range(12):
        j.add({"kind": "http", "lane": i % 3, "n": i})
    return j


@FAST
@given(query=st.one_of(st.text(max_size=60),
                       st.dictionaries(st.sampled_from(["lane", "after", "settle", "x"]),
                                       st.one_of(st.integers(-10**30, 10**30).map(str), st.floats().map(str),
                                                 st.text(max_size=10)), max_size=3)
                       .map(urllib.parse.urlencode)),
       path=st.sampled_from(["/journal", "/healthz", "/", "/journal/", "//journal"]),
       method=st.sampled_from(["GET", "POST", "HEAD"]))
@example(query="settle=inf", path="/journal", method="GET")
@example(query="settle=nan&after=1e999", path="/journal", method="GET")
@example(query="lane=%00&after=%ff", path="/journal", method="GET")
def test_admin_answers_arbitrary_queries_with_a_status_and_json(query, path, method):
    journal = filled_journal()
    status, body = asyncio.run(AdminEndpoint(journal, name="fuzz").answer(method, f"{path}?{query}"))
    assert status in (200, 400, 404, 405)
    json.dumps(body, allow_nan=False)
    if status == 200 and path == "/journal":
        q = dict(urllib.parse.parse_qsl(query))
        after = int(q.get("after", 0))
        lane = int(q["lane"]) if "lane" in q else None
        assert body["records"] == journal.read(lane=lane, after=after)


def test_admin_endpoint_survives_arbitrary_bytes_and_the_reader_arbitrary_cursors():
    async def main(loop_checks):
        journal = filled_journal()
        endpoint, url = await start_admin(journal, "127.0.0.1", 0, name="fuzz")
        try:
            await loop_checks(journal, url)
        finally:
            await endpoint.close()

    async def checks(journal, url):
        port = urllib.parse.urlsplit(url).port

        @NETWORK
        @given(st.one_of(st.binary(max_size=300), RAW_REQUESTS))
        def raw_bytes(raw):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                if send_until_closed(s, raw):
                    s.shutdown(socket.SHUT_WR)
                answer = b""
                # After a close with our bytes unread the kernel may answer a reset instead of the rest.
                with contextlib.suppress(ConnectionResetError):
                    while chunk := s.recv(65536):
                        answer += chunk
            if answer:
                assert answer.startswith(b"HTTP/1.1 "), answer[:80]
                assert not answer.split(b" ", 2)[1].startswith(b"5"), answer[:80]

        @NETWORK
        @given(lane=st.one_of(st.none(), st.integers(-5, 5)), after=st.integers(-(2**63), 2**63))
        def reader(lane, after):
            assert JournalReader(url, timeout=5).read(lane=lane, after=after) == journal.read(lane=lane, after=after)

        # The endpoint runs on this loop; the blocking checks run in a thread.
        await asyncio.to_thread(raw_bytes)
        await asyncio.to_thread(reader)
        assert await asyncio.to_thread(JournalReader(url).healthy)

    asyncio.run(main(checks))
