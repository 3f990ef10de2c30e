"""Many Beam agents at once, and the checks that their journals are complete.

:func:`run_swarm` starts ``{policy: count}`` Beam agents (threads of this
process, ``--once``, a unique token each) behind one start gate, so they hit
the proxy together, and waits for all of them with one deadline.  Each
:class:`Agent` knows its outcome, latencies and, from its ``tls`` events, the
local address of every connection it opened, so the proxy journal can be
checked from the client side: :func:`journal_mismatch` says which connections
have no proxy record, or more than one, and which records belong to no
connection.  Used by ``tests/clients/test_swarm.py`` and ``bench/load.py``.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass

from harness.clients.inprocess import ClientThread
from harness.lab.info import LabInfo


@dataclass
class Agent:
    """One Beam agent of a swarm."""

    policy: str
    token: str
    listener: int  # the proxy port it connects to
    thread: ClientThread

    @property
    def events(self) -> list[dict]:
        return self.thread.tap.events

    @property
    def outcome(self) -> str:
        """``connected``, ``refused``, ``exit-N``, or ``hung`` / ``crashed`` (a bug)."""
        if self.thread.is_alive():
            return "hung"
        if self.thread.error is not None:
            return "crashed"
        return {0: "connected", 5: "refused"}.get(self.thread.exit_code, f"exit-{self.thread.exit_code}")

    @property
    def connections(self) -> list[tuple[str, int]]:
        """(local HOST:PORT, proxy port) of every connection that reached the TLS handshake's end."""
        return [(e["local"], self.listener) for e in self.events if e.get("event") == "tls" and e.get("local")]

    def _since_start(self, name: str) -> float | None:
        at = next((e["_t"] for e in self.events if e.get("event") == name), None)
        return None if at is None or self.thread.started_at is None else at - self.thread.started_at

    @property
    def handshake_seconds(self) -> float | None:
        """From start to the first finished TLS handshake (CONNECT included)."""
        return self._since_start("tls")

    @property
    def outcome_seconds(self) -> float | None:
        """From start to connected (registered, heartbeats done) or refused."""
        return self._since_start("connected") if self.outcome == "connected" else self._since_start("refused")


def run_swarm(info: LabInfo, plan: dict[str, int], *, lane: int = 0, timeout: float = 10.0,
              deadline: float = 120.0, heartbeats: int = 1) -> list[Agent]:
    """Start every agent of ``plan`` ({policy: count}) at once and wait (at most ``deadline``
    seconds in all) until they have finished.  Agents still running then report ``hung``."""
    gate = threading.Event()
    agents = []
    for policy, count in plan.items():
        url = info.proxy_url(policy, lane)
        for i in range(count):
            token = f"swarm-{policy}-{i}-{secrets.token_hex(8)}"
            argv = ["--proxy", url, "--trust", info.trust_bundle("public+org"), "--pins", info.pins_file,
                    "--token", token, "--once", "--json", "--timeout", str(timeout),
                    "--heartbeats", str(heartbeats)]
            thread = ClientThread("beam", argv, gate=gate)
            agents.append(Agent(policy, token, urllib.parse.urlsplit(url).port, thread))
    for agent in agents:
        agent.thread.start()
    gate.set()
    end = time.monotonic() + deadline
    for agent in agents:
        agent.thread.join(max(0.0, end - time.monotonic()))
    return agents


def journal_mismatch(agents: list[Agent], proxy_records: list[dict]) -> dict[str, list]:
    """Compare the agents' connections with the proxy's connection records.

    Returns ``{"missing": [...], "duplicated": [...], "unexpected": [...]}`` of
    (client address, listener port) pairs: connections without a record, with
    more than one, and records of no agent connection.  All empty = complete.
    """
    client_side = Counter(c for a in agents for c in a.connections)
    ports = {a.listener for a in agents}
    proxy_side = Counter((r.get("client"), r.get("listener")) for r in proxy_records
                         if r.get("kind") == "connection" and r.get("listener") in ports)
    return {
        "missing": sorted(client_side - proxy_side),
        "duplicated": sorted(k for k, n in proxy_side.items() if n > 1),
        "unexpected": sorted(proxy_side - client_side),
    }


def percentile(values: list[float], p: float) -> float | None:
    """The ``p``-th percentile (nearest rank) of ``values``; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]
