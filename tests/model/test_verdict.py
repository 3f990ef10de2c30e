"""Tests for harness.model.verdict: judging a run from hand-built journal records.

The records are shaped like the proxy addon's ``client_connected`` record
(harness/proxy/addon.py) and the mock server's ``_record`` (harness/server/mock.py),
as harness.model.records declares them (tests/model/test_records.py holds these
helpers to that too).
For every outcome the right evidence passes, and changing one ground-truth
fact makes it fail with a precise reason.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from harness.model.policy import INTERCEPT, PASS_THROUGH
from harness.model.verdict import Evidence, judge, observe
from harness.model.vocab import EXIT_OUTCOMES

ORG_CA = "Contoso TLS Inspection CA"
_seq = itertools.count(1)


def connection(action: str | None, *, sni: str = "api.screenmeet.com", client_tls: str | None = None,
               requests: list[dict] | None = None, websocket: list[dict] | None = None, lane: int = 0,
               policy: str = "inspect", **extra) -> dict:
    """A finished proxy journal record, as InspectionAddon fills it in."""
    if client_tls is None:
        client_tls = {INTERCEPT: "established", PASS_THROUGH: "not-terminated"}.get(action, "none")
    return {
        "seq": next(_seq), "time": 1.0, "open": False, "closed": 2.0,
        "kind": "connection",
        "lane": lane,
        "policy": policy,
        "listener": 40001,
        "original_dst": None,
        "client": "127.0.0.1:50000",
        "connect_host": f"{sni}:443",
        "sni": sni,
        "action": action,
        "exception": None,
        "forged_issuer": ORG_CA if action == INTERCEPT else None,
        "forged_key": None,
        "untrusted_upstream": None,
        "blocked": False,
        "client_tls": client_tls,
        "client_tls_error": "certificate unknown" if client_tls == "failed" else None,
        "upstream_error": None,
        "requests": list(requests or []),
        "websocket": list(websocket or []),
        **extra,
    }


def decrypted(path: str = "/api/v1/sessions/join", *, credentials: tuple[str, ...] = (),
              host: str = "api.screenmeet.com", method: str = "POST") -> dict:
    """One decrypted request inside a proxy connection record."""
    return {"method": method, "host": host, "path": path, "body_length": 20,
            "credentials": list(credentials), "headers": {"host": host}, "status": 200}


def server_request(path: str = "/api/v1/sessions/join", *, host: str = "api.screenmeet.com",
                   method: str = "POST", lane: int = 0, **fields) -> dict:
    """A mock-server journal record, as MockScreenMeet._record writes it."""
    return {"seq": next(_seq), "time": 1.0, "kind": "http", "lane": lane, "host": host, "method": method,
            "path": path, "client": "127.0.0.1:50001", "status": 200, **fields}


def ws_message(lane: int = 0) -> dict:
    return {"seq": next(_seq), "time": 1.0, "kind": "ws-message", "lane": lane, "host": "api.screenmeet.com",
            "path": "/api/v1/sessions/s1/ws", "direction": "client->server", "length": 5}


def tls_event(*, trusted: bool = True, pin_match: bool | None = True, issuer: str | None = "TLS-lab public CA"):
    if not trusted:
        return {"event": "tls", "host": "api.screenmeet.com", "chain_trusted": False,
                "reason": "certificate verify failed: unable to get local issuer certificate"}
    return {"event": "tls", "host": "api.screenmeet.com", "chain_trusted": True, "issuer": issuer,
            "pin_match": pin_match}


WARNING = {"event": "warning", "host": "api.screenmeet.com", "issuer": ORG_CA, "text": "WARNING: ..."}


def connected_event(secure: bool) -> dict:
    return {"event": "connected", "host": "api.screenmeet.com", "secure": secure, "session": "s1"}


# -- the right evidence for each outcome -----------------------------------------------

def ev_connected_direct() -> Evidence:
    return Evidence(0, [], [server_request(), server_request("/api/v1/sessions/s1/ws", method="GET")],
                    via_proxy=False, events=[tls_event(), connected_event(True)])


def ev_connected_through_exception() -> Evidence:
    return Evidence(0, [connection(PASS_THROUGH, policy="exception-wildcard", exception="*.screenmeet.com")],
                    [server_request()], via_proxy=True, events=[tls_event(), connected_event(True)])


def ev_warned_continued() -> Evidence:
    conn = connection(INTERCEPT, requests=[decrypted(credentials=("session-code",)),
                                           decrypted("/api/v1/sessions/s1/ws", method="GET")],
                      websocket=[{"direction": "client->server", "length": 5}])
    return Evidence(0, [conn], [server_request(), server_request("/api/v1/sessions/s1/ws", method="GET")],
                    via_proxy=True,
                    events=[tls_event(pin_match=False, issuer=ORG_CA), WARNING,
                            {"event": "decision", "proceed": True, "how": "continue"}, connected_event(False)])


def ev_accepted_inspection() -> Evidence:
    # An unpinned client judged from the network only (no --json events), e.g. curl.
    conn = connection(INTERCEPT, requests=[decrypted(credentials=("authorization",))])
    return Evidence(0, [conn], [server_request()], via_proxy=True)


def ev_declined() -> Evidence:
    return Evidence(3, [connection(INTERCEPT)], [], via_proxy=True,
                    events=[tls_event(pin_match=False, issuer=ORG_CA), WARNING,
                            {"event": "decision", "proceed": False, "how": "declined"}])


def ev_refused() -> Evidence:
    return Evidence(5, [connection(INTERCEPT, sni="beam.screenmeet.com")], [], via_proxy=True,
                    events=[tls_event(pin_match=False, issuer=ORG_CA),
                            {"event": "refused", "reason": "pin mismatch"}])


def ev_tls_error() -> Evidence:
    return Evidence(4, [connection(INTERCEPT, client_tls="failed")], [], via_proxy=True,
                    events=[tls_event(trusted=False), {"event": "error", "kind": "tls", "reason": "verify failed"}])


def ev_network_error() -> Evidence:
    return Evidence(6, [], [], via_proxy=True,
                    events=[{"event": "error", "kind": "network", "reason": "connection refused"}])


GOOD = {
    "connected": [ev_connected_direct, ev_connected_through_exception],
    "warned-continued": [ev_warned_continued],
    "accepted-inspection": [ev_accepted_inspection],
    "declined": [ev_declined],
    "refused": [ev_refused],
    "tls-error": [ev_tls_error],
    "network-error": [ev_network_error],
}


@pytest.mark.parametrize("expected, make", [(o, m) for o, ms in GOOD.items() for m in ms],
                         ids=[m.__name__ for ms in GOOD.values() for m in ms])
def test_right_evidence_passes(expected, make):
    verdict = judge(expected, make())
    assert verdict.reasons == ()
    assert verdict.passed and verdict.label == "PASS"
    assert verdict.expected == expected
    assert verdict.observation.outcome == expected


@pytest.mark.parametrize("expected, other", [(e, o) for e in GOOD for o in GOOD if e != o])
def test_evidence_of_another_outcome_fails(expected, other):
    verdict = judge(expected, GOOD[other][0]())
    assert not verdict.passed and verdict.label == "FAIL"
    assert f"expected {expected}" in verdict.reasons[0]


# -- one fact off: a precise reason ------------------------------------------------------

def only_reasons(expected: str, ev: Evidence) -> tuple[str, ...]:
    verdict = judge(expected, ev)
    assert not verdict.passed
    return verdict.reasons


def test_connected_but_the_proxy_intercepted():
    ev = ev_connected_direct()
    ev = replace(ev, proxy=[connection(INTERCEPT)], via_proxy=True)
    assert only_reasons("connected", ev) == ("the proxy intercepted 1 connection(s)",)


def test_connected_but_the_proxy_decrypted_requests():
    ev = replace(ev_connected_through_exception(), proxy=[connection(INTERCEPT, requests=[decrypted()])])
    reasons = only_reasons("connected", ev)
    assert reasons[0] == "the client ended with accepted-inspection (exit 0), expected connected"
    assert "the proxy decrypted 1 request(s)" in reasons
    assert "the proxy intercepted 1 connection(s)" in reasons


def test_connected_but_nothing_reached_the_server():
    ev = replace(ev_connected_direct(), server=[ws_message()])  # ws-message records are not requests
    assert only_reasons("connected", ev) == ("the server received no request",)


def test_connected_but_marked_not_secure():
    ev = replace(ev_connected_direct(), events=[tls_event(), connected_event(False)])
    assert only_reasons("connected", ev) == ("the client marked the session not secure",)


def test_connected_but_the_client_warned():
    ev = replace(ev_connected_direct(), events=[tls_event(), WARNING, connected_event(True)])
    assert only_reasons("connected", ev) == ("the client showed the certificate warning",)


def test_connected_without_events_is_judged_from_the_network_only():
    ev = replace(ev_connected_direct(), events=[])
    assert judge("connected", ev).passed
    ev = replace(ev, exit_code=6)
    assert only_reasons("connected", ev) == ("the client ended with network-error (exit 6), expected connected",)


def test_warned_continued_but_no_warning():
    ev = ev_warned_continued()
    ev = replace(ev, events=[e for e in ev.events if e["event"] != "warning"])
    reasons = only_reasons("warned-continued", ev)
    assert reasons == ("the client ended with accepted-inspection (exit 0), expected warned-continued",
                       "the client never showed the warning")


def test_warned_continued_but_marked_secure():
    ev = ev_warned_continued()
    ev = replace(ev, events=[*ev.events[:-1], connected_event(True)])
    assert only_reasons("warned-continued", ev) == ("the client did not mark the session not secure",)


def test_warned_continued_but_the_server_saw_nothing():
    ev = replace(ev_warned_continued(), server=[])
    assert only_reasons("warned-continued", ev) == ("the server received no request",)


def test_warned_continued_but_the_mitm_read_nothing():
    ev = replace(ev_warned_continued(), proxy=[connection(PASS_THROUGH)])
    reasons = only_reasons("warned-continued", ev)
    assert "the proxy decrypted no request (the MITM read nothing)" in reasons
    assert reasons[0] == "the client ended with connected (exit 0), expected warned-continued"


def test_accepted_inspection_but_nothing_decrypted():
    ev = replace(ev_accepted_inspection(), proxy=[connection(PASS_THROUGH)])
    assert only_reasons("accepted-inspection", ev) == (
        "the client ended with connected (exit 0), expected accepted-inspection",
        "the proxy decrypted no request",
    )


def test_accepted_inspection_but_the_client_warned():
    ev = replace(ev_accepted_inspection(), events=[WARNING, connected_event(False)])
    assert only_reasons("accepted-inspection", ev) == (
        "the client ended with warned-continued (exit 0), expected accepted-inspection",)


def test_declined_but_the_server_got_a_request():
    ev = replace(ev_declined(), server=[server_request()])
    assert only_reasons("declined", ev) == ("the server received 1 request(s)",)


def test_declined_but_no_warning():
    ev = ev_declined()
    ev = replace(ev, events=[e for e in ev.events if e["event"] != "warning"])
    assert only_reasons("declined", ev) == ("the client never showed the warning",)


def test_declined_but_the_proxy_decrypted_a_request():
    ev = replace(ev_declined(), proxy=[connection(INTERCEPT, requests=[decrypted()])])
    assert only_reasons("declined", ev) == ("the proxy decrypted 1 request(s)",)


def test_refused_but_the_server_got_a_request():
    ev = replace(ev_refused(), server=[server_request("/beam/v1/agents/register", host="beam.screenmeet.com")])
    assert only_reasons("refused", ev) == ("the server received 1 request(s)",)


def test_refused_but_the_proxy_saw_a_credential():
    conn = connection(INTERCEPT, sni="beam.screenmeet.com",
                      requests=[decrypted("/beam/v1/agents/register", host="beam.screenmeet.com",
                                          credentials=("authorization", "token")),
                                decrypted("/beam/v1/agents/register", host="beam.screenmeet.com",
                                          credentials=("authorization",))])
    ev = replace(ev_refused(), proxy=[conn])
    reasons = only_reasons("refused", ev)
    assert "credentials reached the proxy: authorization, token" in reasons
    assert "the proxy decrypted 2 request(s)" in reasons
    assert judge("refused", ev).observation.credentials_at_proxy == ("authorization", "token")


def test_refused_through_the_proxy_but_nothing_was_intercepted():
    ev = replace(ev_refused(), proxy=[connection(PASS_THROUGH)])
    assert only_reasons("refused", ev) == ("the proxy intercepted no connection (was anything inspected?)",)


def test_refused_without_a_proxy_needs_no_interception():
    ev = replace(ev_refused(), proxy=[], via_proxy=False)
    assert judge("refused", ev).passed


def test_refused_but_the_client_warned():
    ev = ev_refused()
    ev = replace(ev, events=[*ev.events, WARNING])
    assert only_reasons("refused", ev) == ("the client showed the bypassable warning instead of refusing",)


def test_refused_handshake_may_have_been_aborted():
    ev = replace(ev_refused(), proxy=[connection(INTERCEPT, client_tls="failed")])
    assert judge("refused", ev).passed


def test_refused_with_the_wrong_exit_code():
    ev = replace(ev_refused(), exit_code=4)
    assert only_reasons("refused", ev) == ("the client ended with tls-error (exit 4), expected refused",)


def test_tls_error_but_the_client_showed_the_warning():
    ev = ev_tls_error()
    ev = replace(ev, events=[*ev.events, WARNING])
    assert only_reasons("tls-error", ev) == ("the client showed the bypassable warning for an invalid certificate",)


def test_tls_error_but_the_proxy_saw_the_handshake_succeed():
    ev = replace(ev_tls_error(), proxy=[connection(INTERCEPT, client_tls="established")])
    assert only_reasons("tls-error", ev) == ("the proxy saw no failed client handshake",)


def test_tls_error_without_interception_needs_no_failed_handshake():
    # A hostile certificate served directly: the proxy saw nothing to fail.
    ev = replace(ev_tls_error(), proxy=[], via_proxy=False)
    assert judge("tls-error", ev).passed


def test_tls_error_but_the_server_got_a_request():
    ev = replace(ev_tls_error(), server=[server_request()])
    assert only_reasons("tls-error", ev) == ("the server received 1 request(s)",)


def test_network_error_but_the_server_got_a_request():
    ev = replace(ev_network_error(), server=[server_request()])
    assert only_reasons("network-error", ev) == ("the server received 1 request(s)",)


def test_unknown_expected_outcome_is_a_value_error():
    with pytest.raises(ValueError, match="unknown expected outcome 'connectd'"):
        judge("connectd", ev_connected_direct())


# -- observe ------------------------------------------------------------------------------------

def test_observe_counts_the_journals():
    ev = ev_warned_continued()
    extra = [connection(PASS_THROUGH, sni="scrn.mt"), connection(INTERCEPT, client_tls="failed"),
             {"seq": next(_seq), "kind": "other", "action": INTERCEPT, "requests": [decrypted()]}]
    o = observe(replace(ev, proxy=ev.proxy + extra, server=ev.server + [ws_message()]))
    assert o.outcome == "warned-continued"
    assert o.exit_code == 0
    assert o.issuer_seen == ORG_CA
    assert o.pin_match is False
    assert o.warned is True and o.secure is False
    assert (o.intercepted, o.passed_through, o.client_handshakes_failed) == (2, 1, 1)
    assert o.decrypted_requests == 2  # records that are not connections are ignored
    assert o.credentials_at_proxy == ("session-code",)
    assert o.server_requests == 2  # ws-message records are not requests
    assert o.websocket_messages_at_proxy == 1
    assert o.summary() == ("exit 0; proxy: 2 intercepted, 1 passed through, 2 decrypted requests; "
                           "server: 2 requests")


def test_observe_takes_the_issuer_from_the_proxy_without_client_events():
    o = observe(ev_accepted_inspection())
    assert o.issuer_seen == ORG_CA
    assert o.pin_match is None and o.secure is None and not o.warned


def test_observe_prefers_the_issuer_the_client_reported():
    o = observe(ev_connected_through_exception())
    assert o.issuer_seen == "TLS-lab public CA"


def test_unmapped_exit_code():
    o = observe(replace(ev_network_error(), exit_code=9))
    assert o.outcome == "exit-9"
    assert judge("network-error", replace(ev_network_error(), exit_code=9)).reasons == (
        "the client ended with exit-9 (exit 9), expected network-error",)


def test_custom_exit_outcomes_judge_a_foreign_client():
    curl = {0: "connected", 35: "tls-error", 60: "tls-error", 7: "network-error"}
    ev = Evidence(60, [connection(INTERCEPT, client_tls="failed")], [], via_proxy=True)
    assert judge("tls-error", ev, curl).passed
    assert not judge("tls-error", ev).passed  # the reference mapping does not know 60
    assert EXIT_OUTCOMES[4] == "tls-error"


# -- blocked: the proxy answered for an untrusted upstream ---------------------------------

def ev_blocked() -> Evidence:
    conn = connection(INTERCEPT, requests=[{**decrypted(), "status": 403}], blocked=True,
                      untrusted_upstream="block-page", upstream_error="upstream TLS failed: Certificate verify failed")
    return Evidence(6, [conn], [], via_proxy=True,
                    events=[tls_event(pin_match=False, issuer=ORG_CA), WARNING,
                            {"event": "decision", "proceed": True, "how": "continue"},
                            {"event": "error", "kind": "network", "reason": "HTTP 403"}])


def test_a_block_page_is_blocked_not_a_network_error():
    verdict = judge("blocked", ev_blocked())
    assert verdict.passed and verdict.observation.blocked == 1
    assert not judge("network-error", ev_blocked()).passed
    # Negative: a plain network error (nothing blocked) is not 'blocked' ...
    assert only_reasons("blocked", ev_network_error())[0] == "the client ended with network-error (exit 6), expected blocked"
    # ... nor is a blocked connection on which the client sent nothing (Beam refused first).
    refused = Evidence(5, [connection(INTERCEPT, blocked=True)], [], via_proxy=True)
    assert judge("refused", refused).passed and not judge("blocked", refused).passed


def test_blocked_but_the_server_was_reached():
    ev = ev_blocked()
    reasons = only_reasons("blocked", replace(ev, server=[server_request()]))
    assert reasons == ("the server received 1 request(s)",)


# -- foreign clients: no lab events, an exit-code map, maybe a warning regex -----------------------

CURL_EXITS = {0: "connected", 3: "declined", 60: "tls-error", 90: "refused"}


def test_foreign_warning_regex_counts_as_the_warning():
    conn = connection(INTERCEPT, requests=[decrypted()])
    seen = Evidence(0, [conn], [server_request()], via_proxy=True, warned=True)
    assert judge("warned-continued", seen, CURL_EXITS).passed
    # Negative: the regex did not match, so this is silent acceptance, not a warning.
    silent = replace(seen, warned=False)
    assert judge("warned-continued", silent, CURL_EXITS).reasons == (
        "the client ended with accepted-inspection (exit 0), expected warned-continued",
        "the client never showed the warning")
    # Unknown (no regex): the warning is not required, and not held against it either.
    assert judge("accepted-inspection", replace(seen, warned=None), CURL_EXITS).passed


def test_foreign_declined_needs_the_warning_when_it_has_a_regex():
    ev = Evidence(3, [connection(INTERCEPT)], [], via_proxy=True, warned=True)
    assert judge("declined", ev, CURL_EXITS).passed
    assert judge("declined", replace(ev, warned=False), CURL_EXITS).reasons == ("the client never showed the warning",)


def test_foreign_tls_error_after_a_finished_handshake():
    """curl checks the host name after the handshake: the proxy sees it finish, then nothing."""
    ev = Evidence(60, [connection(INTERCEPT, client_tls="established")], [], via_proxy=True)
    assert judge("tls-error", ev, CURL_EXITS).passed
    # The lab's own clients are still held to failing inside the handshake.
    own = Evidence(4, [connection(INTERCEPT, client_tls="established")], [], via_proxy=True,
                   events=[tls_event(trusted=False)])
    assert "the proxy saw no failed client handshake" in judge("tls-error", own).reasons
    # And a foreign tls-error with a decrypted request is still caught.
    leaked = Evidence(60, [connection(INTERCEPT, requests=[decrypted()])], [], via_proxy=True)
    assert "the proxy decrypted 1 request(s)" in judge("tls-error", leaked, CURL_EXITS).reasons


def test_foreign_issuer_from_the_server_certificate_when_nothing_was_forged():
    ev = Evidence(0, [connection(PASS_THROUGH)], [server_request()], via_proxy=True,
                  server_issuer="Lab Public Intermediate CA")
    assert observe(ev, CURL_EXITS).issuer_seen == "Lab Public Intermediate CA"
    forged = Evidence(90, [connection(INTERCEPT)], [], via_proxy=True, server_issuer="Lab Public Intermediate CA")
    assert observe(forged, CURL_EXITS).issuer_seen == ORG_CA
    nothing = Evidence(7, [], [], via_proxy=True, server_issuer="Lab Public Intermediate CA")
    assert observe(nothing, CURL_EXITS).issuer_seen is None  # it never got a certificate


# -- roaming: the network changed between the client's connections --------------------------------
# A server request is tied to its proxy connection by address: the proxy journals its upstream
# connections' local addresses (upstream_local), the server each request's peer (client).

def ev_beam_refused_after_registering() -> Evidence:
    """roaming-exception-withdrawn / beam: registered over a passed-through connection, then refused
    the heartbeat connection the proxy intercepted."""
    passed = connection(PASS_THROUGH, sni="beam.screenmeet.com", exception="*.screenmeet.com",
                        upstream_local=["127.0.0.1:40100"], connection=1, applied_policy="roam-exception-then-inspect")
    inspected = connection(INTERCEPT, sni="beam.screenmeet.com", upstream_local=["127.0.0.1:40101"],
                           connection=2, applied_policy="inspect")
    register = server_request("/beam/v1/agents/register", host="beam.screenmeet.com", client="127.0.0.1:40100",
                              authorization="Bearer beam-token", agent="a1")
    return Evidence(5, [passed, inspected], [register], via_proxy=True,
                    events=[tls_event(), {"event": "registered", "agent": "a1"},
                            tls_event(pin_match=False, issuer=ORG_CA), {"event": "refused", "reason": "pin-mismatch"}])


def ev_attended_declined_after_joining() -> Evidence:
    """roaming-exception-withdrawn-decline / attended: joined over a passed-through connection, then declined."""
    passed = connection(PASS_THROUGH, upstream_local=["127.0.0.1:40200"], connection=1)
    inspected = connection(INTERCEPT, upstream_local=["127.0.0.1:40201"], connection=2)
    join = server_request(client="127.0.0.1:40200", code="4711", session="s1")
    return Evidence(3, [passed, inspected], [join], via_proxy=True,
                    events=[tls_event(), {"event": "joined", "session": "s1"}, tls_event(pin_match=False, issuer=ORG_CA),
                            WARNING, {"event": "decision", "proceed": False, "how": "declined"}])


@pytest.mark.parametrize("expected, make", [("refused", ev_beam_refused_after_registering),
                                            ("declined", ev_attended_declined_after_joining)])
def test_what_went_through_before_inspection_began_is_allowed(expected, make):
    verdict = judge(expected, make())
    assert verdict.passed, verdict.reasons
    o = verdict.observation
    assert (o.server_requests, o.server_requests_before_inspection, o.server_requests_once_inspected) == (1, 1, 0)
    assert o.connections == (PASS_THROUGH, INTERCEPT)
    # The handshake that decided the cell is the one shown, not the first (passed-through, matching) one.
    assert (o.issuer_seen, o.pin_match) == (ORG_CA, False)


@pytest.mark.parametrize("expected, make", [("refused", ev_beam_refused_after_registering),
                                            ("declined", ev_attended_declined_after_joining)])
def test_a_request_over_the_inspected_connection_or_around_the_proxy_still_counts(expected, make):
    ev = make()
    inspected_at = ev.proxy[1]["upstream_local"][0]
    # The heartbeat sent over the intercepted connection (as if the pins were not checked again) ...
    upgrade = server_request("/x/ws", method="GET", client=inspected_at, websocket=True)
    assert only_reasons(expected, replace(ev, server=[*ev.server, upgrade])) == (
        "the server received 1 request(s) besides those passed through before inspection began",)
    # ... or to the server from an address no proxy connection used (around the proxy).
    around = server_request("/x/ws", method="GET", client="127.0.0.1:49999")
    assert only_reasons(expected, replace(ev, server=[*ev.server, around])) == (
        "the server received 1 request(s) besides those passed through before inspection began",)


def test_a_connection_passed_through_after_inspection_began_is_not_allowed():
    """Inspection first, then a pass-through (inspection lifted): a refusing client must not have sent
    anything even over the later, untouched connection, since it refused before it."""
    inspected = connection(INTERCEPT, sni="beam.screenmeet.com", upstream_local=["127.0.0.1:40300"])
    passed = connection(PASS_THROUGH, sni="beam.screenmeet.com", upstream_local=["127.0.0.1:40301"])
    register = server_request("/beam/v1/agents/register", host="beam.screenmeet.com", client="127.0.0.1:40301")
    ev = Evidence(5, [inspected, passed], [register], via_proxy=True)
    assert only_reasons("refused", ev) == ("the server received 1 request(s)",)
    assert observe(ev).connections == (INTERCEPT, PASS_THROUGH)


def test_without_interception_passed_through_requests_count():
    """A tunnel to a hostile server: nothing was intercepted, so a client that went on after its
    TLS error (sending over the passed-through connection) is caught by the server journal."""
    tunnel = connection(PASS_THROUGH, policy="tunnel-expired", upstream_local=["127.0.0.1:40400"])
    ev = Evidence(4, [tunnel], [server_request(client="127.0.0.1:40400")], via_proxy=True,
                  events=[tls_event(trusted=False)])
    assert only_reasons("tls-error", ev) == ("the server received 1 request(s)",)
    assert observe(ev).server_requests_before_inspection == 0


def test_connections_are_ordered_by_journal_sequence():
    ev = ev_beam_refused_after_registering()
    shuffled = replace(ev, proxy=list(reversed(ev.proxy)))
    assert judge("refused", shuffled).passed
    assert observe(shuffled).connections == (PASS_THROUGH, INTERCEPT)


# -- what the mutation check (./lab mutate verdict) found untested ----------------------------

def test_accepted_inspection_but_the_server_saw_nothing():
    ev = replace(ev_accepted_inspection(), server=[])
    assert only_reasons("accepted-inspection", ev) == ("the server received no request",)


BLOCKING_CURL = {0: "connected", 22: "blocked"}  # a definition may map an exit code to blocked itself


def test_blocked_by_exit_code_still_needs_the_proxys_block():
    block = {**decrypted(), "status": 403}
    ev = Evidence(22, [connection(INTERCEPT, requests=[block], blocked=True)], [], via_proxy=True)
    assert judge("blocked", ev, BLOCKING_CURL).passed
    unblocked = replace(ev, proxy=[connection(INTERCEPT, requests=[block])])
    assert judge("blocked", unblocked, BLOCKING_CURL).reasons == (
        "the proxy blocked no connection for an untrusted upstream",)
    unasked = replace(ev, proxy=[connection(INTERCEPT, blocked=True)])
    assert judge("blocked", unasked, BLOCKING_CURL).reasons == ("no request reached the proxy's block page",)


def test_a_passed_through_connection_that_never_reached_upstream_is_no_evidence():
    """No upstream_local (the proxy never connected upstream for it): nothing to tie, nothing allowed."""
    silent = connection(PASS_THROUGH, sni="beam.screenmeet.com", connection=1)
    inspected = connection(INTERCEPT, sni="beam.screenmeet.com", upstream_local=["127.0.0.1:40500"], connection=2)
    ev = Evidence(5, [silent, inspected], [server_request(client="127.0.0.1:40999")], via_proxy=True)
    assert only_reasons("refused", ev) == ("the server received 1 request(s)",)
    assert judge("refused", replace(ev, server=[])).passed


def test_a_connection_without_a_client_hello_is_listed_as_none():
    ev = replace(ev_refused(), proxy=[connection(None), *ev_refused().proxy])
    assert observe(ev).connections == ("none", INTERCEPT)
