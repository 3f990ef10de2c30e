"""Many Beam agents at once: N through the exception policy, N through inspection.

Every exception agent connects, every inspected one refuses, no token reaches
the proxy's decrypted view (the lab keeps credentials in clear, so they would
show), and the journals are complete: exactly one proxy record per connection
the agents opened (counted from the client side by local address), every
exception agent registered exactly once at the server and no inspected one.
``bench/load.py`` is the same with N = 200 and latencies.
"""

from __future__ import annotations

import json

import pytest

from harness.clients.swarm import journal_mismatch, percentile, run_swarm
from harness.lab.local import LocalLab
from harness.lab.options import LabOptions
from harness.model.policy import load_policies
from harness.net.journal import JournalReader

N = 20


@pytest.fixture(scope="module")
def load_lab(tmp_path_factory):
    lab = LocalLab(LabOptions(state_dir=tmp_path_factory.mktemp("load"), lanes=1, show_secrets=True),
                   policies=load_policies())
    info = lab.start()
    try:
        yield info
    finally:
        lab.stop()


def test_n_agents_through_exception_and_inspection_at_once(load_lab):
    proxy_journal, server_journal = JournalReader(load_lab.proxy_admin), JournalReader(load_lab.server_admin)
    proxy_after, server_after = proxy_journal.last_seq(), server_journal.last_seq()

    agents = run_swarm(load_lab, {"exception-wildcard": N, "inspect": N}, timeout=10, deadline=60)

    outcomes = {(a.policy, a.outcome) for a in agents}
    assert outcomes == {("exception-wildcard", "connected"), ("inspect", "refused")}, [
        (a.policy, a.outcome, a.thread.tap.text()[-300:]) for a in agents if a.outcome not in ("connected", "refused")]

    proxy_records = proxy_journal.read(after=proxy_after, settle=10)
    assert all(not r["open"] for r in proxy_records), "the proxy journal did not settle"
    assert journal_mismatch(agents, proxy_records) == {"missing": [], "duplicated": [], "unexpected": []}
    exception_agents = [a for a in agents if a.policy == "exception-wildcard"]
    inspected_agents = [a for a in agents if a.policy == "inspect"]
    assert sum(len(a.connections) for a in exception_agents) == 2 * N  # register + heartbeat each
    assert sum(len(a.connections) for a in inspected_agents) == N  # one, refused before any byte

    by_listener = {a.listener: a.policy for a in agents}
    for record in proxy_records:
        policy = by_listener[record["listener"]]
        if policy == "inspect":
            assert record["action"] == "intercepted" and record["forged_issuer"] == load_lab.org_issuer_cn
        else:
            assert record["action"] == "passed-through" and record["client_tls"] == "not-terminated"
        assert record["requests"] == [] and record["websocket"] == []  # nothing decrypted

    decrypted_view = json.dumps(proxy_records)
    server_records = server_journal.read(after=server_after)
    for agent in agents:
        assert agent.token not in decrypted_view
        # Registrations that carried it (the server journals the header under headers too).
        seen_at_server = sum(1 for r in server_records if r.get("authorization") == f"Bearer {agent.token}")
        assert seen_at_server == (1 if agent.policy == "exception-wildcard" else 0), agent.token

    handshakes = [a.handshake_seconds for a in agents]
    assert all(h is not None for h in handshakes)
    assert percentile(handshakes, 99) < 10  # generous: bounded, not a benchmark


def test_journal_mismatch_finds_missing_duplicated_and_unexpected_records():
    """The completeness check itself can fail (negative cases), without a lab."""
    from types import SimpleNamespace

    from harness.clients.swarm import Agent

    def agent(*locals_):
        tap = SimpleNamespace(events=[{"event": "tls", "local": l} for l in locals_])
        return Agent("inspect", "t", 9000, SimpleNamespace(tap=tap))

    def rec(client, listener=9000):
        return {"kind": "connection", "client": client, "listener": listener}

    agents = [agent("127.0.0.1:1", "127.0.0.1:2"), agent("127.0.0.1:3")]
    complete = [rec("127.0.0.1:1"), rec("127.0.0.1:2"), rec("127.0.0.1:3"), rec("127.0.0.1:1", 9999)]
    assert journal_mismatch(agents, complete) == {"missing": [], "duplicated": [], "unexpected": []}
    broken = [rec("127.0.0.1:1"), rec("127.0.0.1:1"), rec("127.0.0.1:3"), rec("127.0.0.1:4")]
    assert journal_mismatch(agents, broken) == {
        "missing": [("127.0.0.1:2", 9000)], "duplicated": [("127.0.0.1:1", 9000)],
        "unexpected": [("127.0.0.1:1", 9000), ("127.0.0.1:4", 9000)]}


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0 and percentile(values, 100) == 100.0
