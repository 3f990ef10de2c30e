"""Roaming listeners: which policy each connection gets, and the per-lane count behind it.

A roaming policy (:class:`harness.model.policy.Roam`) applies itself to the
first ``after`` connections a cell makes through its listener and another
policy to the later ones, as when IT withdraws (or adds) an exception, or a
laptop moves to another network, in the middle of a support session.  Which
policy the n-th connection gets is decided by
:meth:`harness.model.policy.Policy.policy_for`; this module only numbers the
connections.

The count belongs to a cell, so it restarts when a cell starts on the lane:
the runner sends ``POST /roaming/reset?lane=N`` to the proxy's admin endpoint
(which binds loopback or an internal network only, like the journal it serves)
after taking its journal cursors.  Without a reset (a person driving the lab
by hand) the count runs from the proxy's start; ``curl -X POST
http://ADMIN/roaming/reset`` restarts every lane.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace

from harness.errors import LabError
from harness.net.admin import AdminEndpoint
from harness.net.journal import Journal
from harness.proxy.config import Listener

RESET_PATH = "/roaming/reset"


class Roaming:
    """Numbers the connections of roaming listeners and remembers the listener each one got."""

    def __init__(self) -> None:
        # (lane, port, gateway) of a roaming listener -> connections since the lane's last reset.
        self._counts: dict[tuple, int] = {}
        self._applied: dict[str, Listener] = {}  # client id -> its listener, with the policy it got

    def connect(self, client_id: str, listener: Listener) -> int | None:
        """Count a new connection on ``listener``; returns its number (from 1), or None when the
        listener's policy does not roam.  :meth:`listener` then answers for ``client_id``."""
        if listener.policy.roam is None:
            return None
        key = (listener.lane, listener.port, listener.gateway)
        n = self._counts[key] = self._counts.get(key, 0) + 1
        self._applied[client_id] = replace(listener, policy=listener.policy.policy_for(n))
        return n

    def listener(self, client_id: str) -> Listener | None:
        """The listener as it applies to this connection (its policy the one it got), if it roams."""
        return self._applied.get(client_id)

    def disconnect(self, client_id: str) -> None:
        self._applied.pop(client_id, None)

    def reset(self, lane: int | None = None) -> None:
        """Restart the count of ``lane`` (every lane when None): its next connection is number 1."""
        for key in [k for k in self._counts if lane is None or k[0] == lane]:
            del self._counts[key]


class RoamingAdmin(AdminEndpoint):
    """The proxy's admin endpoint: the journal, plus ``POST /roaming/reset[?lane=N]``."""

    def __init__(self, journal: Journal, roaming: Roaming, *, name: str) -> None:
        super().__init__(journal, name=name)
        self.roaming = roaming

    async def answer(self, method: str, target: str) -> tuple[int, dict]:
        url = urllib.parse.urlsplit(target)
        if url.path != RESET_PATH:
            return await super().answer(method, target)
        if method != "POST":
            return 405, {"error": f"{RESET_PATH} takes POST"}
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            lane = int(query["lane"]) if "lane" in query else None
        except ValueError:
            return 400, {"error": "lane must be a number"}
        self.roaming.reset(lane)
        return 200, {"reset": lane}


def reset_lane(admin_url: str, lane: int, *, timeout: float = 10.0) -> None:
    """Restart the connection count of ``lane`` on the proxy whose admin endpoint is ``admin_url``."""
    url = f"{admin_url.rstrip('/')}{RESET_PATH}?lane={lane}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=timeout) as resp:
            json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise LabError(f"cannot restart lane {lane}'s roaming count at {admin_url} ({e}); is the lab up?") from None
