"""Judging a client's run from ground truth.  Pure functions over journal records.

:func:`observe` turns the evidence of one run (the client's exit code and
events, the proxy's and the server's journal records for its lane and time
window) into an :class:`Observation`; :func:`judge` compares it with the
expected outcome and lists, in plain words, every fact that disagrees.  The
records' keys, and which of them are always there, are declared in
:mod:`harness.model.records`.

What each outcome requires of the network (DESIGN.md section 4):

* ``connected``        – the server saw requests, the proxy decrypted none;
* ``warned-continued`` – the proxy decrypted requests (the MITM could read
  them) and the server saw them; the client warned first;
* ``declined``         – warned, then nothing was decrypted and nothing reached the server;
* ``refused``          – the proxy forged a certificate, the client finished
  or aborted the handshake, zero decrypted requests, nothing at the server,
  no credential visible to the proxy;
* ``tls-error``        – no warning, nothing decrypted, nothing at the server,
  and through an intercepting proxy the client's handshake failed;
* ``accepted-inspection`` – finished its job while the proxy read everything,
  without warning: what an unpinned client does;
* ``network-error``    – nothing reached the server;
* ``blocked``          – the proxy met an untrusted upstream certificate and
  answered the client's request itself (a block page, or mitmproxy's 502):
  nothing reached the server, and the client stopped with a network error.

"Nothing at the server" counts from the first connection the proxy
intercepted: on a roaming policy (the network changes between a client's
connections) what a client sent over connections the proxy passed through
*before* inspection began reached the server untouched and unread, and is
allowed.  A server request is tied to its proxy connection by address: the
proxy journals the local address of each upstream connection
(``upstream_local``), the server the address each request came from (``client``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.model.records import ProxyRecord, ServerRecord
from harness.model.vocab import EXIT_OUTCOMES, INTERCEPT, PASS_THROUGH


@dataclass(frozen=True)
class Evidence:
    """Everything known about one client run in one scenario."""

    exit_code: int
    proxy: list[ProxyRecord]
    server: list[ServerRecord]
    via_proxy: bool
    events: list[dict] = field(default_factory=list)
    output: str = ""
    # For clients that print no lab events: whether their output matched their
    # warning (None = unknown), and the issuer of the server's own certificate
    # (what a client was shown when nothing on the path forged one).
    warned: bool | None = None
    server_issuer: str | None = None


@dataclass(frozen=True)
class Observation:
    """What happened, as the network and the client saw it."""

    outcome: str
    exit_code: int
    issuer_seen: str | None
    pin_match: bool | None
    warned: bool
    secure: bool | None
    intercepted: int
    passed_through: int
    client_handshakes_failed: int
    decrypted_requests: int
    credentials_at_proxy: tuple[str, ...]
    server_requests: int
    websocket_messages_at_proxy: int
    blocked: int = 0  # connections the proxy answered itself for an untrusted upstream
    # Server requests carried by connections the proxy passed through before it first intercepted
    # one (a roaming policy's first phase), and each proxy connection's action, in order.
    server_requests_before_inspection: int = 0
    connections: tuple[str, ...] = ()

    @property
    def server_requests_once_inspected(self) -> int:
        """Server requests not explained by passed-through connections before inspection began."""
        return self.server_requests - self.server_requests_before_inspection

    def summary(self) -> str:
        return (
            f"exit {self.exit_code}; proxy: {self.intercepted} intercepted, {self.passed_through} passed through, "
            f"{self.decrypted_requests} decrypted requests; server: {self.server_requests} requests"
        )


@dataclass(frozen=True)
class Verdict:
    expected: str
    observation: Observation
    reasons: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def label(self) -> str:
        return "PASS" if self.passed else "FAIL"


def _events(events: list[dict], name: str) -> list[dict]:
    return [e for e in events if e.get("event") == name]


def _before_inspection(connections: list[ProxyRecord], server: list[ServerRecord]) -> int:
    """Server requests that came over connections passed through before the first intercepted one
    (none when nothing was intercepted: then no inspection began that they could precede)."""
    first = next((i for i, r in enumerate(connections) if r["action"] == INTERCEPT), 0)
    addresses = {a for r in connections[:first] if r["action"] == PASS_THROUGH for a in r.get("upstream_local", ())}
    return sum(1 for r in server if r["kind"] == "http" and r["client"] in addresses)


def observe(ev: Evidence, exit_outcomes: dict[int, str] = EXIT_OUTCOMES) -> Observation:
    """Summarise the evidence; the outcome is named from the exit code, the rest from the journals."""
    connections = sorted((r for r in ev.proxy if r["kind"] == "connection"), key=lambda r: r["seq"])
    intercepted = [r for r in connections if r["action"] == INTERCEPT]
    requests = [q for r in connections for q in r["requests"]]
    credentials = sorted({c for q in requests for c in q["credentials"]})
    tls_events = _events(ev.events, "tls")
    connected = _events(ev.events, "connected")
    warned = bool(_events(ev.events, "warning")) or bool(ev.warned)
    outcome = exit_outcomes.get(ev.exit_code, f"exit-{ev.exit_code}")
    if outcome == "connected" and requests:
        # The client finished its job and the proxy read it: either the person
        # was warned and continued, or the client accepted inspection silently.
        outcome = "warned-continued" if warned else "accepted-inspection"
    blocked = [r for r in intercepted if r["blocked"]]
    if outcome == "network-error" and any(r["requests"] for r in blocked):
        # The "network error" was the proxy's own answer for an untrusted upstream.
        outcome = "blocked"
    # The handshake that decided the cell: the first whose pins did not match, if any (on a
    # roaming policy an earlier connection may have been passed through and matched).
    shown = [e for e in tls_events if e.get("pin_match") is False] or tls_events
    issuer = next((e.get("issuer") for e in shown if e.get("issuer")), None)
    if issuer is None:
        issuer = next((r["forged_issuer"] for r in intercepted if r["forged_issuer"]), None)
    if issuer is None and not intercepted and ev.server:
        issuer = ev.server_issuer
    return Observation(
        outcome=outcome,
        exit_code=ev.exit_code,
        issuer_seen=issuer,
        pin_match=next((e.get("pin_match") for e in shown if "pin_match" in e), None),
        warned=warned,
        secure=connected[-1].get("secure") if connected else None,
        intercepted=len(intercepted),
        passed_through=sum(1 for r in connections if r["action"] == PASS_THROUGH),
        client_handshakes_failed=sum(1 for r in intercepted if r["client_tls"] == "failed"),
        decrypted_requests=len(requests),
        credentials_at_proxy=tuple(credentials),
        server_requests=sum(1 for r in ev.server if r["kind"] == "http"),
        websocket_messages_at_proxy=sum(len(r["websocket"]) for r in connections),
        blocked=len(blocked),
        server_requests_before_inspection=_before_inspection(connections, ev.server),
        connections=tuple(r["action"] or "none" for r in connections),
    )


def _requirements(expected: str, o: Observation, via_proxy: bool, has_events: bool,
                  warn_known: bool) -> list[tuple[bool, str]]:
    """What ``expected`` requires; client-reported facts count only when known:
    ``has_events`` (the lab's JSON events) and ``warn_known`` (events, or a warning regex)."""
    nothing_decrypted = (o.decrypted_requests == 0, f"the proxy decrypted {o.decrypted_requests} request(s)")
    nothing_at_server = (o.server_requests_once_inspected == 0,
                         f"the server received {o.server_requests_once_inspected} request(s)"
                         + (" besides those passed through before inspection began"
                            if o.server_requests_before_inspection else ""))
    if expected == "connected":
        reqs = [
            (o.server_requests > 0, "the server received no request"),
            nothing_decrypted,
            (o.intercepted == 0, f"the proxy intercepted {o.intercepted} connection(s)"),
        ]
        if has_events:
            reqs.append((o.secure is not False, "the client marked the session not secure"))
        if warn_known:
            reqs.append((not o.warned, "the client showed the certificate warning"))
        return reqs
    if expected == "warned-continued":
        reqs = [
            (o.decrypted_requests > 0, "the proxy decrypted no request (the MITM read nothing)"),
            (o.server_requests > 0, "the server received no request"),
        ]
        if warn_known:
            reqs.append((o.warned, "the client never showed the warning"))
        if has_events:
            reqs.append((o.secure is False, "the client did not mark the session not secure"))
        return reqs
    if expected == "declined":
        reqs = [nothing_decrypted, nothing_at_server]
        if warn_known:
            reqs.append((o.warned, "the client never showed the warning"))
        return reqs
    if expected == "refused":
        reqs = [
            nothing_decrypted, nothing_at_server,
            (not o.credentials_at_proxy, f"credentials reached the proxy: {', '.join(o.credentials_at_proxy)}"),
        ]
        if via_proxy:
            reqs.append((o.intercepted > 0, "the proxy intercepted no connection (was anything inspected?)"))
        if warn_known:
            reqs.append((not o.warned, "the client showed the bypassable warning instead of refusing"))
        return reqs
    if expected == "tls-error":
        reqs = [nothing_decrypted, nothing_at_server]
        # The lab's own clients verify inside the handshake, so the proxy sees it fail.  Other clients
        # may check the host name after it (curl does): for them "finished, then sent nothing" counts too.
        if via_proxy and o.intercepted and has_events:
            reqs.append((o.client_handshakes_failed > 0, "the proxy saw no failed client handshake"))
        if warn_known:
            reqs.append((not o.warned, "the client showed the bypassable warning for an invalid certificate"))
        return reqs
    if expected == "accepted-inspection":
        return [
            (o.decrypted_requests > 0, "the proxy decrypted no request"),
            (o.server_requests > 0, "the server received no request"),
        ]
    if expected == "network-error":
        return [nothing_at_server]
    if expected == "blocked":
        return [nothing_at_server,
                (o.blocked > 0, "the proxy blocked no connection for an untrusted upstream"),
                (o.decrypted_requests > 0, "no request reached the proxy's block page")]
    raise ValueError(f"unknown expected outcome {expected!r}")


def judge(expected: str, ev: Evidence, exit_outcomes: dict[int, str] = EXIT_OUTCOMES) -> Verdict:
    """Compare a run with its expected outcome; every disagreeing fact becomes a reason."""
    o = observe(ev, exit_outcomes)
    reasons = []
    if o.outcome != expected:
        reasons.append(f"the client ended with {o.outcome} (exit {o.exit_code}), expected {expected}")
    warn_known = bool(ev.events) or ev.warned is not None
    for ok, why in _requirements(expected, o, ev.via_proxy, bool(ev.events), warn_known):
        if not ok:
            reasons.append(why)
    return Verdict(expected, o, tuple(reasons))
