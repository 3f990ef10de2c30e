"""Tests for harness.proxy.roaming: numbering a roaming listener's connections, restarting the count
per lane over the admin endpoint, and the addon applying the policy each connection got."""

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from mitmproxy.proxy import context
from mitmproxy.test import taddons, tflow
from mitmproxy.tls import ClientHelloData

from harness.errors import LabError
from harness.model.policy import INTERCEPT, PASS_THROUGH, HostPattern, Policy, Roam
from harness.net.journal import Journal, JournalReader
from harness.proxy.addon import InspectionAddon
from harness.proxy.config import Listener, ProxyConfig
from harness.proxy.roaming import RESET_PATH, Roaming, RoamingAdmin, reset_lane
from tests.proxy.addonhelpers import client_hello

INSPECT = Policy("inspect")
WITHDRAWN = Policy("withdrawn", exceptions=(HostPattern.parse("*.screenmeet.com"),), roam=Roam(1, INSPECT))


def listener(policy: Policy = WITHDRAWN, lane: int = 0, port: int = 9100) -> Listener:
    return Listener(policy, lane, port)


# -- the count ------------------------------------------------------------------------------

def test_connections_are_numbered_per_listener_and_get_their_policy():
    r = Roaming()
    assert [r.connect(f"c{n}", listener()) for n in (1, 2, 3)] == [1, 2, 3]
    assert [r.listener(f"c{n}").policy.name for n in (1, 2, 3)] == ["withdrawn", "inspect", "inspect"]
    # Another lane (its own listener) counts on its own.
    assert r.connect("d1", listener(lane=1, port=9101)) == 1
    assert r.listener("d1").policy is WITHDRAWN and r.listener("d1").lane == 1


def test_a_listener_that_does_not_roam_is_not_counted():
    r = Roaming()
    assert r.connect("c1", listener(INSPECT)) is None
    assert r.listener("c1") is None


def test_reset_restarts_one_lane_or_all():
    r = Roaming()
    for n in range(3):
        r.connect(f"a{n}", listener(lane=0, port=9100))
        r.connect(f"b{n}", listener(lane=1, port=9101))
    r.reset(0)
    assert r.connect("a-next", listener(lane=0, port=9100)) == 1
    assert r.connect("b-next", listener(lane=1, port=9101)) == 4  # lane 1 untouched
    r.reset()
    assert r.connect("b-again", listener(lane=1, port=9101)) == 1


def test_disconnect_forgets_the_client_not_the_count():
    r = Roaming()
    r.connect("c1", listener())
    r.disconnect("c1")
    assert r.listener("c1") is None
    assert r.connect("c2", listener()) == 2


# -- the admin endpoint ----------------------------------------------------------------------

def request(url: str, method: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"" if method == "POST" else None,
                                                           method=method), timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_reset_over_http_and_the_journal_still_served():
    roaming = Roaming()
    for n in range(2):
        roaming.connect(f"a{n}", listener(lane=0))
        roaming.connect(f"b{n}", listener(lane=1, port=9101))
    journal = Journal()
    journal.add({"lane": 0, "kind": "connection"})

    async def main():
        admin = RoamingAdmin(journal, roaming, name="proxy")
        url = await admin.start("127.0.0.1", 0)
        try:
            answers = [await asyncio.to_thread(request, url + path, method) for path, method in (
                (RESET_PATH + "?lane=0", "POST"), (RESET_PATH, "GET"), (RESET_PATH + "?lane=x", "POST"),
                ("/journal", "POST"))]
            await asyncio.to_thread(reset_lane, url, 1)
            records = await asyncio.to_thread(JournalReader(url).read)
            return url, answers, records
        finally:
            await admin.close()

    url, answers, records = asyncio.run(main())
    assert url.startswith("http://127.0.0.1:")
    assert answers == [(200, {"reset": 0}), (405, {"error": "/roaming/reset takes POST"}),
                       (400, {"error": "lane must be a number"}), (405, {"error": "only GET is served"})]
    assert [r["kind"] for r in records] == ["connection"]
    assert roaming.connect("a-next", listener(lane=0)) == 1
    assert roaming.connect("b-next", listener(lane=1, port=9101)) == 1  # reset_lane over HTTP


def test_reset_lane_without_a_lab_is_one_sentence():
    with pytest.raises(LabError, match=r"cannot restart lane 2's roaming count at http://127.0.0.1:1 .*is the lab up\?"):
        reset_lane("http://127.0.0.1:1", 2, timeout=2)


# -- wired in the addon -----------------------------------------------------------------------

@pytest.fixture
def addon():
    config = ProxyConfig(policies={"withdrawn": WITHDRAWN, "inspect": INSPECT}, lanes=2,
                         ports={"withdrawn": [9100, 9101], "inspect": [9110, 9111]},
                         upstream_ports=[7001, 7002], confdir="/nonexistent")
    a = InspectionAddon(config)
    a._map_listeners()
    return a


def connect(addon, port: int, sni: str = "beam.screenmeet.com"):
    """One client connection on ``port`` up to its ClientHello; returns (open record, ignored?)."""
    client = tflow.tclient_conn()
    client.sockname = ("127.0.0.1", port)
    addon.client_connected(client)
    data = ClientHelloData(context.Context(client, addon_options()), client_hello(sni))
    addon.tls_clienthello(data)
    return client, addon.journal.get_open(client.id), data.ignore_connection


def addon_options():
    with taddons.context() as tctx:
        return tctx.options


def test_the_addon_applies_the_policy_each_connection_got(addon):
    with taddons.context(addon):
        first, r1, ignored1 = connect(addon, 9100)
        second, r2, ignored2 = connect(addon, 9100)
        other_lane, r3, _ = connect(addon, 9101)
        plain, r4, _ = connect(addon, 9110)
    assert (r1["action"], ignored1, r1["exception"]) == (PASS_THROUGH, True, "*.screenmeet.com")
    assert (r2["action"], ignored2, r2["exception"]) == (INTERCEPT, False, None)
    # The record names the listener's policy, the connection's number and the policy it got.
    assert [(r["policy"], r["connection"], r["applied_policy"]) for r in (r1, r2, r3)] == [
        ("withdrawn", 1, "withdrawn"), ("withdrawn", 2, "inspect"), ("withdrawn", 1, "withdrawn")]
    assert "connection" not in r4 and "applied_policy" not in r4  # a listener that does not roam
    # The count restarts per lane, as the runner asks before each cell.
    addon.roaming.reset(0)
    with taddons.context(addon):
        _, again, _ = connect(addon, 9100)
    assert (again["connection"], again["action"]) == (1, PASS_THROUGH)
    for client in (first, second, other_lane, plain):
        addon.client_disconnected(client)
    assert addon.roaming.listener(second.id) is None
