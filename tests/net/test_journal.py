"""Tests for harness.net.journal: the in-memory journal, settling without sleeps, the
admin endpoint (served on 127.0.0.1:0) and the reader that reads it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import LabError
from harness.net.journal import AdminEndpoint, Journal, JournalReader, announce_ready, start_admin


def filled(*lanes) -> Journal:
    j = Journal()
    for i, lane in enumerate(lanes):
        j.add({"kind": "http", "lane": lane, "n": i})
    return j


# -- Journal ------------------------------------------------------------------------

def test_add_numbers_records_from_one():
    j = Journal()
    assert j.last_seq == 0 and j.read() == []
    a = j.add({"kind": "http", "lane": 0})
    b = j.add({"kind": "http", "lane": 1, "path": "/x"})
    assert (a["seq"], b["seq"]) == (1, 2)
    assert b["path"] == "/x" and b["lane"] == 1
    assert isinstance(a["time"], float) and a["time"] <= b["time"]
    assert j.last_seq == 2
    assert j.read() == [a, b]


def test_add_does_not_keep_the_callers_dict():
    j = Journal()
    original = {"kind": "http"}
    record = j.add(original)
    assert "seq" not in original and record is not original


def test_add_assigns_its_own_seq_even_if_the_record_has_one():
    j = Journal()
    first = j.add({"kind": "http", "seq": 99})
    j.add({"kind": "http"})
    assert first["seq"] == 1
    assert [r["seq"] for r in j.read(after=1)] == [2]


def test_read_after_a_cursor():
    j = filled(0, 1, 0, 1, 0)
    assert [r["seq"] for r in j.read(after=0)] == [1, 2, 3, 4, 5]
    assert [r["seq"] for r in j.read(after=3)] == [4, 5]
    assert j.read(after=5) == []
    assert j.read(after=10**9) == []
    assert [r["seq"] for r in j.read(after=-7)] == [1, 2, 3, 4, 5]


def test_read_one_lane():
    j = filled(0, 1, 0, 1, None)
    assert [r["seq"] for r in j.read(lane=0)] == [1, 3]
    assert [r["seq"] for r in j.read(lane=1, after=2)] == [4]
    assert j.read(lane=2) == []
    assert len(j.read(lane=None)) == 5


def test_open_record_is_readable_and_mutable_until_closed():
    j = Journal()
    record = j.open("c1", {"kind": "connection", "lane": 0, "requests": []})
    assert record["open"] is True and record["seq"] == 1
    assert j.get_open("c1") is record
    record["requests"].append({"path": "/"})  # the proxy fills it in as hooks fire
    assert j.read()[0]["requests"] == [{"path": "/"}]
    j.close("c1")
    assert record["open"] is False and record["closed"] >= record["time"]
    assert j.get_open("c1") is None
    assert j.read() == [record]


def test_close_unknown_or_twice_is_harmless():
    j = Journal()
    j.close("nobody")
    j.open("c1", {"lane": 0})
    j.close("c1")
    closed = j.read()[0]["closed"]
    j.close("c1")
    assert j.read()[0]["closed"] == closed
    assert j.open_count() == 0


def test_open_count_per_lane():
    j = Journal()
    j.open("a", {"lane": 0})
    j.open("b", {"lane": 0})
    j.open("c", {"lane": 1})
    j.add({"lane": 2})
    assert (j.open_count(), j.open_count(0), j.open_count(1), j.open_count(2)) == (3, 2, 1, 0)
    j.close("a")
    assert (j.open_count(), j.open_count(0)) == (2, 1)


# -- settle ------------------------------------------------------------------------------

def test_settle_with_nothing_open_is_true_at_once():
    j = filled(0)
    assert asyncio.run(j.settle(0, 0.05)) is True
    assert asyncio.run(j.settle(None, 0)) is True


def test_settle_returns_true_once_the_record_closes():
    async def main():
        j = Journal()
        j.open("c1", {"lane": 0})
        asyncio.get_running_loop().call_soon(j.close, "c1")
        start = time.monotonic()
        result = await j.settle(0, 5.0)
        return result, time.monotonic() - start

    settled, elapsed = asyncio.run(main())
    assert settled is True
    assert elapsed < 5.0


def test_settle_works_for_a_journal_made_outside_the_loop():
    j = Journal()  # as the proxy addon does, before mitmproxy's loop runs
    j.open("c1", {"lane": 0})

    async def main():
        asyncio.get_running_loop().call_soon(j.close, "c1")
        return await j.settle(0, 5.0)

    assert asyncio.run(main()) is True


def test_settle_times_out_while_a_record_stays_open():
    async def main():
        j = Journal()
        j.open("c1", {"lane": 0})
        return await j.settle(0, 0.05), j.open_count(0)

    assert asyncio.run(main()) == (False, 1)


def test_settle_ignores_other_lanes():
    async def main():
        j = Journal()
        j.open("mine", {"lane": 0})
        j.open("other", {"lane": 1})
        loop = asyncio.get_running_loop()
        loop.call_soon(j.close, "other")  # a close on lane 1 wakes the waiter, lane 0 stays open
        lane0 = await j.settle(0, 0.05)
        lane1 = await j.settle(1, 0.05)
        loop.call_soon(j.close, "mine")
        lane0_after = await j.settle(0, 5.0)
        return lane0, lane1, lane0_after

    assert asyncio.run(main()) == (False, True, True)


def test_settle_all_lanes_waits_for_every_record():
    async def main():
        j = Journal()
        j.open("a", {"lane": 0})
        j.open("b", {"lane": 1})
        loop = asyncio.get_running_loop()
        loop.call_soon(j.close, "a")
        partial = await j.settle(None, 0.05)
        loop.call_soon(j.close, "b")
        return partial, await j.settle(None, 5.0)

    assert asyncio.run(main()) == (False, True)


# -- AdminEndpoint.answer (no sockets) ----------------------------------------------------

def answer(journal: Journal, target: str, method: str = "GET"):
    return asyncio.run(AdminEndpoint(journal, name="proxy").answer(method, target))


def test_answer_journal_with_lane_and_cursor():
    j = filled(0, 1, 0, 1)
    status, body = answer(j, "/journal?lane=1&after=2")
    assert status == 200
    assert body["last_seq"] == 4 and body["settled"] is True
    assert [r["seq"] for r in body["records"]] == [4]
    status, body = answer(j, "/journal")
    assert [r["seq"] for r in body["records"]] == [1, 2, 3, 4]


def test_answer_reports_open_records_as_not_settled():
    j = Journal()
    j.open("c1", {"lane": 0})
    assert answer(j, "/journal?lane=0")[1]["settled"] is False
    assert answer(j, "/journal?lane=1")[1]["settled"] is True
    assert answer(j, "/journal?lane=0&settle=0.05")[1]["settled"] is False


def test_answer_healthz():
    assert answer(Journal(), "/healthz") == (200, {"ok": True, "name": "proxy"})


@pytest.mark.parametrize("query", ["lane=x", "after=1.5", "lane=1e3", "settle=soon", "lane=1&after=two"])
def test_answer_bad_params_is_400(query):
    status, body = answer(filled(0), f"/journal?{query}")
    assert status == 400
    assert body == {"error": "lane, after and settle must be numbers"}


def test_answer_unknown_path_and_method():
    assert answer(Journal(), "/records")[0] == 404
    assert answer(Journal(), "/journal", method="POST") == (405, {"error": "only GET is served"})


# -- over HTTP: start_admin + JournalReader ---------------------------------------------------

def test_reader_reads_the_admin_endpoint():
    async def main():
        j = filled(0, 1, 0)
        endpoint, url = await start_admin(j, "127.0.0.1", 0, name="server")
        try:
            assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
            reader = JournalReader(url + "/")
            assert reader.base_url == url and repr(reader) == f"JournalReader({url!r})"
            healthy = await asyncio.to_thread(reader.healthy)
            cursor = await asyncio.to_thread(reader.last_seq)
            j.add({"lane": 0, "n": "new"})
            j.add({"lane": 1, "n": "other lane"})
            everything = await asyncio.to_thread(reader.read)
            lane0 = await asyncio.to_thread(reader.read, lane=0)
            new0 = await asyncio.to_thread(reader.read, lane=0, after=cursor)
            return healthy, cursor, everything, lane0, new0
        finally:
            await endpoint.close()

    healthy, cursor, everything, lane0, new0 = asyncio.run(main())
    assert healthy is True
    assert cursor == 3
    assert [r["seq"] for r in everything] == [1, 2, 3, 4, 5]
    assert [r["seq"] for r in lane0] == [1, 3, 4]
    assert [(r["seq"], r["n"]) for r in new0] == [(4, "new")]


def test_reader_settle_waits_for_a_record_to_close():
    class ClosingJournal(Journal):
        """Closes the open record only once the endpoint has started waiting for it."""

        calls: list = []

        async def settle(self, lane, timeout):
            self.calls.append((lane, timeout, self.open_count(lane)))
            asyncio.get_running_loop().call_soon(self.fill_and_close)
            return await super().settle(lane, timeout)

        def fill_and_close(self):
            self.get_open("c1")["requests"].append({"path": "/join"})
            self.close("c1")

    async def main():
        j = ClosingJournal()
        endpoint, url = await start_admin(j, "127.0.0.1", 0, name="proxy")
        try:
            j.open("c1", {"lane": 0, "requests": []})
            return j.calls, await asyncio.to_thread(JournalReader(url).read, lane=0, settle=5.0)
        finally:
            await endpoint.close()

    calls, (record,) = asyncio.run(main())
    assert calls == [(0, 5.0, 1)]  # the reader asked to settle lane 0 while its record was open
    assert record["open"] is False
    assert record["requests"] == [{"path": "/join"}]


def http_get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_admin_endpoint_over_http_statuses():
    async def main():
        j = Journal()
        j.open("c1", {"lane": 0})
        endpoint, url = await start_admin(j, "127.0.0.1", 0, name="proxy")
        try:
            return [await asyncio.to_thread(http_get, url + path) for path in (
                "/journal?lane=abc", "/nope", "/journal?lane=0&settle=0.05", "/journal?lane=1")]
        finally:
            await endpoint.close()

    bad, missing, timed_out, other = asyncio.run(main())
    assert bad == (400, {"error": "lane, after and settle must be numbers"})
    assert missing[0] == 404
    assert timed_out[0] == 200 and timed_out[1]["settled"] is False and len(timed_out[1]["records"]) == 1
    assert other == (200, {"last_seq": 1, "settled": True, "records": []})


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reader_on_a_dead_port_raises_lab_error():
    url = f"http://127.0.0.1:{dead_port()}"
    reader = JournalReader(url, timeout=2)
    with pytest.raises(LabError) as info:
        reader.read(lane=0)
    message = str(info.value)
    assert message.startswith(f"cannot read the journal at {url} (")
    assert message.endswith("is the lab up? Start it with 'harness up'.")
    assert "\n" not in message
    assert info.value.__suppress_context__
    with pytest.raises(LabError):
        reader.last_seq()
    assert reader.healthy(timeout=2) is False


def test_reader_on_a_non_json_answer_raises_lab_error():
    async def main():
        async def not_json(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(not_json, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(LabError, match="cannot read the journal"):
                await asyncio.to_thread(JournalReader(f"http://127.0.0.1:{port}", timeout=5).read)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())


# -- announce_ready ------------------------------------------------------------------------------

def test_announce_ready_on_a_descriptor_writes_one_line_and_closes_it():
    r, w = os.pipe()
    try:
        announce_ready({"name": "proxy", "admin": "http://127.0.0.1:1"}, w)
        assert os.read(r, 4096) == b'{"name": "proxy", "admin": "http://127.0.0.1:1"}\n'
        assert os.read(r, 4096) == b""  # the writer end was closed: EOF
        with pytest.raises(OSError):
            os.write(w, b"x")
    finally:
        os.close(r)


def test_announce_ready_without_a_descriptor_prints(capsys):
    announce_ready({"ready": True}, None)
    assert capsys.readouterr().out == '{"ready": true}\n'


# -- property -------------------------------------------------------------------------------------

LANES = st.one_of(st.none(), st.integers(0, 3))


@given(ops=st.lists(st.tuples(st.booleans(), LANES), max_size=30), after=st.integers(-2, 35), lane=LANES)
def test_read_after_equals_filtering_all_records(ops, after, lane):
    j = Journal()
    for i, (is_open, record_lane) in enumerate(ops):
        if is_open:
            j.open(i, {"lane": record_lane})
        else:
            j.add({"lane": record_lane})
    everything = j.read()
    assert [r["seq"] for r in everything] == list(range(1, len(ops) + 1))
    assert j.read(after=after) == [r for r in everything if r["seq"] > after]
    assert j.read(lane=lane, after=after) == [
        r for r in everything if r["seq"] > after and (lane is None or r["lane"] == lane)]
