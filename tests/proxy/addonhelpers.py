"""Helpers for the inspection add-on tests: a two-lane ProxyConfig, client connections on a listener,
real ClientHellos (from Python's ssl) for a server name."""

import ssl

import pytest
from mitmproxy.proxy import context
from mitmproxy.proxy.layers.tls import parse_client_hello
from mitmproxy.test import taddons, tflow
from mitmproxy.tls import ClientHelloData

from harness.model.policy import HostPattern, Policy
from harness.proxy.config import ProxyConfig

PORTS = {"tunnel": [9001, 9002], "inspect": [9011, 9012], "exception-wildcard": [9021, 9022]}


def make_config(**kw) -> ProxyConfig:
    """Three policies on two lanes (listener ports in PORTS), upstream 127.0.0.1:7001/7002."""
    policies = {
        "tunnel": Policy("tunnel", "tunnel"),
        "inspect": Policy("inspect", "inspect"),
        "exception-wildcard": Policy("exception-wildcard", "inspect", (HostPattern.parse("*.screenmeet.com"),)),
    }
    return ProxyConfig(policies=policies, lanes=2, ports=PORTS, upstream_host="127.0.0.1",
                       upstream_ports=[7001, 7002], confdir="/nonexistent", **kw)


def client_on(port: int):
    """A client connection accepted on listener ``port``."""
    c = tflow.tclient_conn()
    c.sockname = ("127.0.0.1", port)
    return c


def client_hello(sni: str):
    """The ClientHello Python's ssl sends for ``sni``, parsed as mitmproxy does."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return parse_client_hello(outgoing.read())


def hello_data(client, sni):
    """The tls_clienthello hook's argument for ``client`` sending ``sni``."""
    with taddons.context() as tctx:
        ctx = context.Context(client, tctx.options)
    return ClientHelloData(ctx, client_hello(sni))
