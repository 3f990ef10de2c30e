"""Transparent (gateway) listeners: configuration, mitmproxy options and the addon's hooks,
called directly with mitmproxy's test helpers (no sockets, no root).

In transparent mode mitmproxy puts the original destination (SO_ORIGINAL_DST)
in the client's ``sockname`` and the listener in its ``proxy_mode``; with the
eager connection strategy ``server_connect`` runs before the ClientHello.
"""

import argparse
import json
import ssl

import pytest
from mitmproxy.proxy import context, server_hooks
from mitmproxy.proxy.layers.tls import parse_client_hello
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow
from mitmproxy.tls import ClientHelloData

from harness.model.policy import HostPattern, Policy
from harness.proxy import run
from harness.proxy.addon import InspectionAddon
from harness.proxy.config import ProxyConfig, gateway_addresses
from tests.proxy.addonhelpers import client_on, hello_data

POLICIES = {
    "inspect": Policy("inspect", "inspect"),
    "exception-wildcard": Policy("exception-wildcard", "inspect", (HostPattern.parse("*.screenmeet.com"),)),
    # An exception written for a gateway address (this policy's lane 0): only matches without SNI.
    "exception-ip": Policy("exception-ip", "inspect", (HostPattern.parse("198.18.0.14"),)),
}
GATEWAYS = gateway_addresses("198.18.0.10", list(POLICIES), 2)
PORTS = {"inspect": [9011, 9012], "exception-wildcard": [9021, 9022], "exception-ip": [9031, 9032]}
TPORTS = {"inspect": [9111, 9112], "exception-wildcard": [9121, 9122], "exception-ip": [9131, 9132]}


def make_config(**kw) -> ProxyConfig:
    options = dict(policies=POLICIES, lanes=2, ports=PORTS, upstream_host="127.0.0.1",
                   upstream_ports=[7001, 7002], gateways=GATEWAYS, transparent_host="198.18.0.1",
                   transparent_ports=TPORTS, confdir="/nonexistent")
    return ProxyConfig(**(options | kw))


@pytest.fixture
def addon():
    a = InspectionAddon(make_config())
    a._map_listeners()
    return a


def redirected(listener_port: int, original_dst: tuple[str, int]):
    """A client as mitmproxy's transparent mode hands it over."""
    c = tflow.tclient_conn()
    c.proxy_mode = ProxyMode.parse(f"transparent@198.18.0.1:{listener_port}")
    c.sockname = original_dst
    c.peername = ("198.18.0.2", 40000)
    return c


def connect(addon, client):
    server = tflow.tserver_conn()
    server.address = client.sockname  # what mitmproxy sets in transparent mode
    addon.server_connect(server_hooks.ServerConnectionHookData(server, client))
    return server


# -- configuration -------------------------------------------------------------------

def test_transparent_listeners_carry_their_gateway_and_survive_json():
    config = ProxyConfig.from_dict(json.loads(json.dumps(make_config().to_dict())))
    listeners = {(l.policy.name, l.lane): l for l in config.transparent_listeners()}
    assert listeners[("exception-wildcard", 1)].port == 9122
    assert listeners[("exception-wildcard", 1)].gateway == ("198.18.0.13", 443)
    # Negative: explicit listeners have no gateway, and a config without gateways has no transparent listener.
    assert all(l.gateway is None for l in config.listeners())
    assert make_config(gateways={}).transparent_listeners() == []


def test_gateway_upstream_is_the_lane_server_by_name_or_address():
    config = make_config()
    listener = next(l for l in config.transparent_listeners() if l.lane == 1)
    assert config.gateway_upstream(listener) == ("127.0.0.1", 7002)
    # Compose: no upstream address, Docker's DNS resolves the lab's first name.
    assert make_config(upstream_host=None, upstream_ports=[8443, 8444]).gateway_upstream(listener) == ("screenmeet.com", 8444)


def test_mitmproxy_gets_a_transparent_mode_per_listener(monkeypatch):
    config = make_config(transparent_ports={})
    monkeypatch.setattr(run, "reserve_ports", lambda host, n: list(range(20000, 20000 + n)))
    run.fix_ports(config)
    _, update = run.build_options(config)
    transparent = [m for m in update["mode"] if m.startswith("transparent@")]
    assert len(transparent) == 6 and all(m.startswith("transparent@198.18.0.1:") for m in transparent)
    # Negative: the explicit listeners are still regular ones, and without gateways there is no transparent mode.
    assert "regular@127.0.0.1:9011" in update["mode"]
    _, plain = run.build_options(make_config(gateways={}))
    assert not [m for m in plain["mode"] if m.startswith("transparent@")]


def test_compose_flags_lay_out_gateways_and_ports(tmp_path):
    policies = tmp_path / "policies.toml"
    policies.write_text('[policy.tunnel]\nmode = "tunnel"\n[policy.inspect]\nmode = "inspect"\n')
    args = argparse.Namespace(config=None, policies=str(policies), lanes=2, listen_host="0.0.0.0", base_port=8100,
                              upstream_host=None, upstream_ports="8443+2", admin="127.0.0.1:0",
                              gateways="198.51.100.10", transparent_base_port=8300, transparent_policies=None,
                              confdir="/lab/pki/mitmproxy", upstream_trust="/lab/pki/trust-public.pem",
                              site_base_port=9443, site_cases="", vendor=None)
    config = run.config_from_args(args)
    assert config.gateways == {"tunnel": ["198.51.100.10:443", "198.51.100.11:443"],
                               "inspect": ["198.51.100.12:443", "198.51.100.13:443"]}
    assert config.transparent_ports == {"tunnel": [8300, 8301], "inspect": [8302, 8303]}
    args.transparent_policies = "inspect"  # a subset: laid out from the first address and port
    assert run.config_from_args(args).gateways == {"inspect": ["198.51.100.10:443", "198.51.100.11:443"]}
    assert run.config_from_args(args).transparent_ports == {"inspect": [8300, 8301]}
    args.transparent_policies = "inspect,nope"
    with pytest.raises(ValueError, match="'nope'.*known policies: tunnel, inspect"):
        run.config_from_args(args)
    args.gateways = None  # negative: no --gateways, no transparent listeners
    assert run.config_from_args(args).gateways == {}


# -- the addon -------------------------------------------------------------------------

def test_redirected_connection_is_journaled_with_its_listener_and_original_destination(addon):
    with taddons.context(addon):
        c = redirected(9122, ("198.18.0.13", 443))
        addon.client_connected(c)
        record = addon.journal.get_open(c.id)
        assert (record["policy"], record["lane"], record["listener"]) == ("exception-wildcard", 1, 9122)
        assert record["original_dst"] == "198.18.0.13:443"
        # Negative: an explicit-proxy connection keeps its listener port and has no original destination.
        e = client_on(9012)
        addon.client_connected(e)
        assert addon.journal.get_open(e.id)["original_dst"] is None
        assert addon.journal.get_open(e.id)["listener"] == 9012


def test_gateway_address_goes_to_the_lane_mock_server(addon):
    with taddons.context(addon):
        c = redirected(9112, ("198.18.0.11", 443))
        addon.client_connected(c)
        server = connect(addon, c)
        assert server.address == ("127.0.0.1", 7002) and server.error is None


@pytest.mark.parametrize("listener_port,original_dst", [
    (9112, ("198.18.0.10", 443)),   # another listener's gateway address
    (9112, ("192.0.2.80", 443)),    # an address that is no gateway at all
    (9112, ("198.18.0.11", 8443)),  # the right address, another port
    (9999, ("198.18.0.11", 443)),   # a transparent listener the lab does not know
])
def test_only_the_listeners_gateway_address_is_served(addon, listener_port, original_dst):
    with taddons.context(addon):
        c = redirected(listener_port, original_dst)
        addon.client_connected(c)
        server = connect(addon, c)
        assert server.error and "is not a gateway address of this lab" in server.error
        assert server.address == original_dst  # never rewritten to the lab's server
        assert addon.journal.get_open(c.id)["action"] == "blocked"


@pytest.mark.parametrize("port,dst,sni,ignored,action,exception", [
    (9111, ("198.18.0.10", 443), "beam.screenmeet.com", False, "intercepted", None),
    (9121, ("198.18.0.12", 443), "beam.screenmeet.com", True, "passed-through", "*.screenmeet.com"),
    (9121, ("198.18.0.12", 443), "screenmeet.com", False, "intercepted", None),  # the apex is not covered
    # The same gateway address with an IP exception for it: the SNI decides, not the address...
    (9131, ("198.18.0.14", 443), "beam.screenmeet.com", False, "intercepted", None),
])
def test_decision_comes_from_the_sni_via_the_policy(addon, port, dst, sni, ignored, action, exception):
    with taddons.context(addon):
        c = redirected(port, dst)
        addon.client_connected(c)
        connect(addon, c)  # eager: upstream first, decision later
        data = hello_data(c, sni)
        addon.tls_clienthello(data)
        assert data.ignore_connection is ignored
        record = addon.journal.get_open(c.id)
        assert (record["sni"], record["action"], record["exception"]) == (sni, action, exception)


def hello_without_sni(client):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    with pytest.raises(ssl.SSLWantReadError):
        ctx.wrap_bio(incoming, outgoing).do_handshake()
    with taddons.context() as tctx:
        ctx_ = context.Context(client, tctx.options)
    return ClientHelloData(ctx_, parse_client_hello(outgoing.read()))


def test_without_sni_the_original_destination_is_the_host(addon):
    """...and without an SNI the policy sees the original destination, as a real gateway does."""
    with taddons.context(addon):
        c = redirected(9131, ("198.18.0.14", 443))
        addon.client_connected(c)
        data = hello_without_sni(c)
        assert data.client_hello.sni is None
        addon.tls_clienthello(data)
        assert data.ignore_connection is True
        assert addon.journal.get_open(c.id)["exception"] == "198.18.0.14"
        # Negative: another gateway address of the same policy (lane 1) without SNI is intercepted.
        d = redirected(9132, ("198.18.0.15", 443))
        addon.client_connected(d)
        data = hello_without_sni(d)
        addon.tls_clienthello(data)
        assert data.ignore_connection is False
        assert addon.journal.get_open(d.id)["action"] == "intercepted"


def test_ready_report_lists_transparent_listeners_apart():
    reports = []
    addon = InspectionAddon(make_config(admin="127.0.0.1:0"), announce=reports.append)
    import asyncio

    async def go():
        with taddons.context(addon):
            await addon.running()
            await addon.done()

    asyncio.run(go())
    ready = reports[0]["ready"]
    assert len(ready["listeners"]) == 6 and all("gateway" not in l for l in ready["listeners"])
    assert {"policy": "inspect", "lane": 1, "port": 9112, "gateway": "198.18.0.11:443"} in ready["transparent"]
    assert len(ready["transparent"]) == 6
