"""harness.clients.inprocess: a client's --json events, watched line by line as they are written."""

from __future__ import annotations

import threading

import pytest

from harness.clients.inprocess import ClientThread, EventTap


def test_tap_parses_events_and_keeps_every_line():
    seen = []
    tap = EventTap(seen.append)
    tap.write('{"event": "tls", "issuer": "Org"}\nplain text\n{"event": "conn')
    tap.write('ected", "secure": true}\n[1, 2]\n')
    assert [e["event"] for e in tap.events] == ["tls", "connected"] == [e["event"] for e in seen]
    assert tap.lines == ['{"event": "tls", "issuer": "Org"}', "plain text",
                         '{"event": "connected", "secure": true}', "[1, 2]"]
    assert tap.named("connected")[0]["secure"] is True and "_t" in tap.events[0]


def test_wait_for_an_event_still_to_come():
    tap = EventTap()
    threading.Timer(0.1, tap.write, args=['{"event": "refused"}\n']).start()
    assert tap.wait_for(lambda e: e["event"] == "refused", 5)["event"] == "refused"


def test_wait_for_names_what_did_not_come():
    tap = EventTap()
    tap.write('{"event": "tls"}\n')
    with pytest.raises(TimeoutError, match=r"the warning did not come within 0.1s; events so far: \['tls'\]"):
        tap.wait_for(lambda e: e["event"] == "warning", 0.1, what="the warning")


def test_client_thread_runs_the_real_client_and_reports_its_exit():
    t = ClientThread("beam", ["--url", "https://beam.screenmeet.com", "--pins", "/nonexistent/pins.txt", "--json"])
    t.start()
    assert t.result(30) == 2  # a usage error (missing pins file): exit 2, in this process
    assert "pins" in t.tap.text()


def test_a_shut_gate_is_an_error_in_the_waiting_thread(monkeypatch):
    import harness.clients.inprocess as inprocess

    monkeypatch.setattr(inprocess, "GATE_TIMEOUT", 0.1)
    t = ClientThread("attended", [], gate=threading.Event())
    t.start()
    with pytest.raises(TimeoutError, match="start gate"):
        t.result(5)
