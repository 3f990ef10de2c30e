"""The journal contract (harness.model.records) held against real records.

Records come from the addon's hooks called in memory, from a running lab
(read back as JSON through the admin endpoints, as the verdict gets them),
and from the hand-built helpers of test_verdict.  Each must have every
required key, no undeclared key, and values of the declared types; and every
declared key must turn up in some real record, so no declaration is stale.
"""

from __future__ import annotations

import types
from typing import Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest
from mitmproxy.proxy import context
from mitmproxy.test import taddons, tflow
from mitmproxy.tls import ClientHelloData, TlsData

from harness.model.records import (
    Action,
    DecryptedMessage,
    DecryptedRequest,
    ProxyRecord,
    ServerMessage,
    ServerRecord,
    ServerRequest,
)
from harness.model.vocab import INTERCEPT, PASS_THROUGH
from harness.net.journal import JournalReader
from harness.proxy.addon import InspectionAddon
from tests.model import test_verdict as hand_built
from tests.proxy.addonhelpers import client_hello, client_on, make_config

SERVER_SHAPES = {"http": ServerRequest, "ws-message": ServerMessage}
# Keys no run of the reference clients produces: the server's "error" needs a client that
# hangs up in the middle of the WebSocket upgrade.
# proxy_authorization: a proxy login that reached the server, which the lab's proxy never lets
# happen (tests/proxy/test_login.py sends one straight to the server to show it is journaled).
# Keys only some vendor profiles produce (the session lab runs the generic one); their records
# are checked in tests/proxy/test_product.py.
RARE = {(ServerRequest, "error"), (ServerRequest, "proxy_authorization"),
        (ProxyRecord, "destination"), (ProxyRecord, "connect_denied")}


def mismatches(value, shape, where: str = "record") -> list[str]:
    """Every way ``value`` breaks the TypedDict ``shape``: missing required keys, undeclared keys, wrong types."""
    if not isinstance(value, dict):
        return [f"{where} is {type(value).__name__}, not a {shape.__name__} dict"]
    found = [f"{where} lacks required key {k!r}" for k in sorted(shape.__required_keys__ - value.keys())]
    found += [f"{where} has undeclared key {k!r}" for k in sorted(value.keys() - shape.__annotations__.keys())]
    hints = get_type_hints(shape)
    for key in sorted(value.keys() & hints.keys()):
        found += _type_mismatches(value[key], hints[key], f"{where}[{key!r}]")
    return found


def _type_mismatches(value, tp, where: str) -> list[str]:
    if is_typeddict(tp):
        return mismatches(value, tp, where)
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        arms = [_type_mismatches(value, arm, where) for arm in args]
        return [] if any(not a for a in arms) else [f"{where} = {value!r} is none of {tp}"]
    if origin is Literal:
        return [] if value in args else [f"{where} = {value!r} is not one of {args}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where} = {value!r} is not a list"]
        return [m for i, item in enumerate(value) for m in _type_mismatches(item, args[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where} = {value!r} is not a dict"]
        return [m for k, v in value.items()
                for m in _type_mismatches(k, args[0], f"{where} key") + _type_mismatches(v, args[1], f"{where}[{k!r}]")]
    if tp is type(None):
        return [] if value is None else [f"{where} = {value!r} is not None"]
    # bool is an int to isinstance, never to the contract.
    ok = isinstance(value, tp) and (tp is bool or not isinstance(value, bool))
    return [] if ok else [f"{where} = {value!r} is not {tp.__name__}"]


def server_shape(record: dict):
    return SERVER_SHAPES.get(record.get("kind"), ServerRequest)


def assert_proxy_records(records: list[dict]) -> None:
    problems = [m for i, r in enumerate(records) for m in mismatches(r, ProxyRecord, f"proxy record {i}")]
    assert not problems, "\n".join(problems[:20])


def assert_server_records(records: list[dict]) -> None:
    problems = [m for i, r in enumerate(records) for m in mismatches(r, server_shape(r), f"server record {i}")]
    assert not problems, "\n".join(problems[:20])


def assert_every_key_turns_up(shapes_and_records) -> None:
    for shape, records in shapes_and_records:
        seen = {k for r in records for k in r}
        unseen = {k for k in shape.__annotations__ if (shape, k) not in RARE} - seen
        assert not unseen, f"{shape.__name__} declares keys no real record had: {sorted(unseen)}"


# -- the checker itself --------------------------------------------------------------------

def test_the_checker_catches_each_kind_of_breach():
    good = hand_built.connection(INTERCEPT, requests=[hand_built.decrypted()])
    assert mismatches(good, ProxyRecord) == []
    missing = {k: v for k, v in good.items() if k != "blocked"}
    assert mismatches(missing, ProxyRecord) == ["record lacks required key 'blocked'"]
    assert mismatches({**good, "surprise": 1}, ProxyRecord) == ["record has undeclared key 'surprise'"]
    assert mismatches({**good, "blocked": 0}, ProxyRecord) == ["record['blocked'] = 0 is not bool"]
    assert mismatches({**good, "action": "maybe"}, ProxyRecord) == [
        f"record['action'] = 'maybe' is none of {get_type_hints(ProxyRecord)['action']}"]
    bad_request = {**hand_built.decrypted(), "status": "200"}
    assert mismatches({**good, "requests": [bad_request]}, ProxyRecord) == [
        "record['requests'][0]['status'] = '200' is not int"]


def test_vocabulary_and_records_agree():
    assert {INTERCEPT, PASS_THROUGH} <= set(get_args(Action))
    assert {get_args(get_type_hints(s)["kind"])[0] for s in get_args(ServerRecord)} == set(SERVER_SHAPES)


def test_the_verdict_tests_hand_build_records_to_the_contract():
    """test_verdict builds its evidence by hand: it must stay the shape the verdict really gets."""
    h = hand_built
    message = {"direction": "client->server", "length": 5}
    proxy = [h.connection(INTERCEPT, requests=[h.decrypted()], websocket=[message]),
             h.connection(PASS_THROUGH, exception="*.screenmeet.com"), h.connection(None),
             h.connection(INTERCEPT, client_tls="failed", blocked=True, untrusted_upstream="block-page")]
    assert_proxy_records(proxy)
    assert_server_records([h.server_request(), h.server_request(code="4711", session="s1"), h.ws_message()])


# -- records from the addon's hooks, in memory ------------------------------------------------

def addon_records(show_secrets: bool) -> list[dict]:
    """Drive the hooks as mitmproxy does for an intercepted session, a pass-through, a failed
    handshake and a refused CONNECT; returns the finished records."""
    addon = InspectionAddon(make_config())
    addon._map_listeners()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, lab_show_secrets=show_secrets)

        def hello(client, sni):  # not test_addon's hello_data: its own taddons context would replace this one
            return ClientHelloData(context.Context(client, tctx.options), client_hello(sni))

        def tls(client):
            return TlsData(client, context.Context(client, tctx.options))

        # Intercepted: CONNECT, ClientHello, finished handshake, a request and its response, WebSocket messages.
        f = tflow.twebsocketflow()
        f.client_conn.sockname = ("127.0.0.1", 9011)
        addon.client_connected(f.client_conn)
        connect = tflow.tflow(client_conn=f.client_conn)
        connect.request.method, connect.request.host, connect.request.port = "CONNECT", "api.screenmeet.com", 443
        addon.http_connect(connect)
        addon.tls_clienthello(hello(f.client_conn, "api.screenmeet.com"))
        f.client_conn.tls_version = "TLSv1.3"
        addon.tls_established_client(tls(f.client_conn))
        f.request.headers["Authorization"] = "Bearer top-secret-token"
        addon.request(f)
        addon.response(f)
        addon.websocket_message(f)
        addon.client_disconnected(f.client_conn)
        # Passed through by the exception, and a client that failed the handshake.
        passed, failed = client_on(9021), client_on(9011)
        for c, sni in ((passed, "beam.screenmeet.com"), (failed, "api.screenmeet.com")):
            addon.client_connected(c)
            addon.tls_clienthello(hello(c, sni))
        failed.error = "certificate unknown"
        addon.tls_failed_client(tls(failed))
        # A CONNECT to a host outside the lab.
        foreign = tflow.tflow()
        foreign.client_conn.sockname = ("127.0.0.1", 9001)
        addon.client_connected(foreign.client_conn)
        foreign.request.method, foreign.request.host, foreign.request.port = "CONNECT", "example.org", 443
        addon.http_connect(foreign)
        for c in (passed, failed, foreign.client_conn):
            addon.client_disconnected(c)
    return addon.journal.read()


@pytest.mark.parametrize("show_secrets", [False, True])
def test_addon_records_match_the_contract(show_secrets):
    records = addon_records(show_secrets)
    assert [r["action"] for r in records] == [INTERCEPT, PASS_THROUGH, INTERCEPT, "blocked"]
    assert [r["client_tls"] for r in records] == ["established", "not-terminated", "failed", "none"]
    assert records[0]["requests"] and records[0]["websocket"]
    assert_proxy_records(records)
    # The secret-only keys come and go with show_secrets.
    assert ("body" in records[0]["requests"][0]) is show_secrets
    assert all(("text" in m) is show_secrets for m in records[0]["websocket"])


# -- records from a running lab, as the verdict reads them ---------------------------------------

CELLS = [
    ("direct", "attended"),  # the server alone: join with a code, the session's WebSocket
    ("inspected-continue", "attended"),  # intercepted, requests and WebSocket messages read
    ("inspected-untrusted-ca", "beam"),  # the client's handshake failed
    ("exception-wildcard", "beam"),  # passed through; the server sees the agent's token
    ("untrusted-upstream-block-page", "attended"),  # blocked: the proxy answers with a block page
    ("hostile-expired-forged", "beam"),  # the lab forges the leaf itself (a hostile case)
    ("untrusted-upstream-pass-through", "beam"),  # the upstream checked before the ClientHello is answered
    ("roaming-exception-withdrawn", "beam"),  # a roaming listener numbers its connections
    ("login-inspected-no-login", "beam"),  # a listener that requires a proxy login journals its fate
]


@pytest.fixture(scope="module")
def lab_records(tls_lab, lab_runner, lab_scenarios):
    """Everything both journals of the session's lab hold once ``CELLS`` ran, read through the admin endpoints."""
    for scenario, client in CELLS:
        lab_runner.run_cell(lab_scenarios[scenario], client)
    proxy = JournalReader(tls_lab.proxy_admin).read(after=0, settle=10)
    server = JournalReader(tls_lab.server_admin).read(after=0)
    return proxy, server


def test_lab_proxy_records_match_the_contract(lab_records):
    proxy, _ = lab_records
    assert_proxy_records(proxy)


def test_lab_server_records_match_the_contract(lab_records):
    _, server = lab_records
    assert {r["kind"] for r in server} == set(SERVER_SHAPES)
    assert_server_records(server)


def test_every_declared_key_turns_up_in_real_records(lab_records):
    proxy, server = lab_records
    requests = [q for r in proxy for q in r["requests"]]
    messages = [m for r in proxy for m in r["websocket"]]
    assert_every_key_turns_up([
        (ProxyRecord, proxy), (DecryptedRequest, requests), (DecryptedMessage, messages),
        (ServerRequest, [r for r in server if r["kind"] == "http"]),
        (ServerMessage, [r for r in server if r["kind"] == "ws-message"]),
    ])
