"""What a judged cell's journals must show, read from the records themselves, and the same evidence
with one journal fact changed (a helper of test_matrix and test_foreign_clients, not a test module).

Two guards, independent of each other:

* :func:`assert_journal_facts` reads the raw proxy and server records of a cell and checks what its
  expected outcome means on the wire (DESIGN.md section 4), without :mod:`harness.model.verdict`;
* :func:`counterfactuals` changes one journal fact at a time while keeping the exit code, so the
  verdict can only reject the result from the journals: a verdict reduced to exit codes passes
  them, and the tests that use them turn red.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

from harness.model.verdict import Evidence, judge
from harness.model.vocab import INTERCEPT, PASS_THROUGH

# An address no proxy connection of the lab uses: a request from it went around the proxy.
AROUND_THE_PROXY = "192.0.2.1:40000"


def connections(records: list[dict]) -> list[dict]:
    return sorted((r for r in records if r["kind"] == "connection"), key=lambda r: r["seq"])


def requests_at_server(records: list[dict]) -> list[dict]:
    return [r for r in records if r["kind"] == "http"]


def after_inspection_began(proxy: list[dict], server: list[dict]) -> list[dict]:
    """The server's requests, less those carried by connections passed through before the first
    intercepted one (what a roaming cell sent before the network changed)."""
    conns = connections(proxy)
    first = next((i for i, r in enumerate(conns) if r["action"] == INTERCEPT), 0)
    before = {a for r in conns[:first] if r["action"] == PASS_THROUGH for a in r.get("upstream_local", [])}
    return [r for r in requests_at_server(server) if r["client"] not in before]


def assert_journal_facts(cell, org_issuer: str, *, sends_secret: bool = True, verifies_in_handshake: bool = True) -> None:
    """The cell's journals show what its expected outcome means.  ``sends_secret``: the client's
    credential is ``cell.secret`` (the reference clients' token and session code);
    ``verifies_in_handshake``: a failed verification shows as a failed handshake at the proxy
    (the reference clients; curl checks the host name after the handshake)."""
    expected = cell.verdict.expected
    conns = connections(cell.proxy_records)
    intercepted = [r for r in conns if r["action"] == INTERCEPT]
    decrypted = [q for r in conns for q in r["requests"]]
    http = requests_at_server(cell.server_records)
    at_proxy = json.dumps(cell.proxy_records)
    where = f"{cell.scenario.name}/{cell.client}"
    if expected in ("refused", "declined", "tls-error", "network-error", "blocked"):
        late = after_inspection_began(cell.proxy_records, cell.server_records)
        assert late == [], f"{where}: the server got {[r['path'] for r in late]} once inspection began"
    if expected in ("refused", "declined", "tls-error"):
        assert decrypted == [], f"{where}: the proxy decrypted {[q['path'] for q in decrypted]}"
        if sends_secret:  # the test lab journals in clear: absent means never sent, not redacted
            assert cell.secret not in at_proxy, f"{where}: the credential reached the proxy"
    if expected in ("refused", "declined", "warned-continued") and cell.scenario.through_proxy:
        assert intercepted, f"{where}: the proxy intercepted nothing"
        assert {r["forged_issuer"] for r in intercepted} == {org_issuer}, f"{where}: forged by another issuer"
    if expected == "tls-error" and verifies_in_handshake and intercepted:
        assert any(r["client_tls"] == "failed" for r in intercepted), f"{where}: no handshake failed at the proxy"
    if expected == "warned-continued":
        assert decrypted, f"{where}: the MITM read nothing"
        paths = {r["path"] for r in http}
        assert {q["path"] for q in decrypted} <= paths, f"{where}: the server did not see what the proxy read"
    if expected == "connected":
        assert http, f"{where}: the server saw no request"
        assert decrypted == [] and intercepted == [], f"{where}: the proxy intercepted {len(intercepted)}"
        if sends_secret:
            assert cell.secret in json.dumps(http), f"{where}: the server never saw the credential"
            assert cell.secret not in at_proxy, f"{where}: the credential is in the proxy journal"
    if expected == "blocked":
        assert any(r["blocked"] and r["requests"] for r in intercepted), f"{where}: nothing was blocked"
    assert_server_view(cell)


def assert_server_view(cell) -> None:
    """The server's interception verdicts agree with the proxy journal, request by request: a request
    that came over a connection the proxy did not intercept (direct, tunnelled, excepted) is never
    suspected, and a cell with requests over intercepted connections has at least one suspected
    (a WebSocket upgrade names no client, so not each of them can be)."""
    where = f"{cell.scenario.name}/{cell.client}"
    via = {a for r in connections(cell.proxy_records) if r["action"] == INTERCEPT for a in r.get("upstream_local", ())}
    http = requests_at_server(cell.server_records)
    inspected = [r for r in http if r["client"] in via]
    for r in http:
        if r["client"] not in via:
            assert not r["interception"]["suspected"], f"{where}: {r['path']} suspected: {r['interception']['reasons']}"
    if inspected:
        assert any(r["interception"]["suspected"] for r in inspected), \
            f"{where}: {[(r['path'], r['headers'].get('user-agent'), r['tls'] and r['tls']['ja4']) for r in inspected]} " \
            "came through the inspecting proxy, none suspected"
    assert cell.server_saw_interception == ("yes" if inspected else "no" if http else "-"), where


def evidence_of(cell, events: list[dict], *, warned: bool | None = None, server_issuer: str | None = None) -> Evidence:
    """The evidence the runner judged ``cell`` from (deep copies: counterfactuals change them)."""
    return Evidence(cell.verdict.observation.exit_code, copy.deepcopy(cell.proxy_records),
                    copy.deepcopy(cell.server_records), cell.scenario.through_proxy, events, cell.output,
                    warned=warned, server_issuer=server_issuer)


def _request(path: str = "/counterfactual", credentials: tuple[str, ...] = ()) -> dict:
    return {"method": "POST", "host": "api.screenmeet.com", "path": path, "body_length": 2,
            "credentials": list(credentials), "headers": {}, "status": 200}


def _with_decrypted(ev: Evidence, request: dict) -> Evidence:
    """``ev`` with ``request`` decrypted on its first intercepted connection (one added if none)."""
    proxy = copy.deepcopy(ev.proxy)
    target = next((r for r in connections(proxy) if r["action"] == INTERCEPT), None)
    if target is None:
        target = {"kind": "connection", "seq": max([r["seq"] for r in proxy], default=0) + 1, "action": INTERCEPT,
                  "requests": [], "websocket": [], "blocked": False, "client_tls": "established",
                  "forged_issuer": "counterfactual CA"}
        proxy.append(target)
    target["requests"].append(request)
    return replace(ev, proxy=proxy)


def _server_request_around_the_proxy(ev: Evidence) -> Evidence:
    extra = {"kind": "http", "seq": 10**9, "lane": 0, "host": "api.screenmeet.com", "method": "POST",
             "path": "/counterfactual", "client": AROUND_THE_PROXY, "status": 200}
    return replace(ev, server=[*ev.server, extra])


def _without_decrypted(ev: Evidence) -> Evidence:
    proxy = copy.deepcopy(ev.proxy)
    for r in proxy:
        if r["kind"] == "connection":
            r["requests"] = []
    return replace(ev, proxy=proxy)


def _unblocked(ev: Evidence) -> Evidence:
    proxy = copy.deepcopy(ev.proxy)
    for r in proxy:
        if r["kind"] == "connection":
            r["blocked"] = False
    return replace(ev, proxy=proxy)


def _handshakes_finished(ev: Evidence) -> Evidence:
    proxy = copy.deepcopy(ev.proxy)
    for r in proxy:
        if r["kind"] == "connection" and r["client_tls"] == "failed":
            r["client_tls"] = "established"
    return replace(ev, proxy=proxy)


def counterfactuals(expected: str, ev: Evidence) -> list[tuple[str, Evidence, str]]:
    """``(what changed, evidence, a reason the verdict must give)`` for each single journal fact
    whose change must make ``ev`` fail as ``expected``; the exit code and events stay as they were."""
    nothing_at_server = ("a request reached the server around the proxy", _server_request_around_the_proxy(ev),
                         "the server received 1 request(s)")
    decrypted = ("the proxy decrypted a request", _with_decrypted(ev, _request()), "the proxy decrypted 1 request(s)")
    cases = {
        "connected": [("the server saw nothing", replace(ev, server=[]), "the server received no request"),
                      decrypted],
        "warned-continued": [("the proxy decrypted nothing", _without_decrypted(ev),
                              "the proxy decrypted no request (the MITM read nothing)"),
                             ("the server saw nothing", replace(ev, server=[]), "the server received no request")],
        "accepted-inspection": [("the proxy decrypted nothing", _without_decrypted(ev), "the proxy decrypted no request"),
                                ("the server saw nothing", replace(ev, server=[]), "the server received no request")],
        "declined": [nothing_at_server, decrypted],
        "refused": [nothing_at_server, decrypted,
                    ("the credential reached the proxy", _with_decrypted(ev, _request(credentials=("authorization",))),
                     "credentials reached the proxy: authorization")],
        "tls-error": [nothing_at_server, decrypted],
        "network-error": [nothing_at_server],
        "blocked": [nothing_at_server, ("nothing was blocked", _unblocked(ev),
                                        "the proxy blocked no connection for an untrusted upstream")],
    }[expected]
    if expected == "tls-error" and ev.events and ev.via_proxy and any(
            r["kind"] == "connection" and r["client_tls"] == "failed" for r in ev.proxy):
        cases.append(("the client's handshake finished at the proxy", _handshakes_finished(ev),
                      "the proxy saw no failed client handshake"))
    return cases


def assert_counterfactuals_fail(expected: str, ev: Evidence, exit_outcomes=None, where: str = "") -> None:
    """``ev`` passes as ``expected``; each counterfactual fails, for the journal fact it changed."""
    kw = {} if exit_outcomes is None else {"exit_outcomes": exit_outcomes}
    assert judge(expected, ev, **kw).passed, f"{where}: the rebuilt evidence does not pass as {expected}"
    for what, changed, reason in counterfactuals(expected, ev):
        verdict = judge(expected, changed, **kw)
        assert any(reason in r for r in verdict.reasons), (
            f"{where} with '{what}' must fail as {expected} with '{reason}'; reasons: {list(verdict.reasons)}")
