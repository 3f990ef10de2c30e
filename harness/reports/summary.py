"""What the journals say happened, for a reviewer: the pure part of ``harness evidence``.

:func:`summarize` reads proxy and server journal records (DESIGN.md section 4)
and sorts each proxy connection into what the reviewer asks about:

* **inspected** – the proxy forged a certificate (``intercepted``): by host, with
  the forged issuer and the decrypted requests;
* **excepted** – the proxy passed the connection through (``passed-through``);
* per intercepted connection, what the client did: **refused** (its handshake
  with the proxy failed: it did not trust the forged chain), **refused after
  the handshake** (no request was sent: a pinned client refusing, or a person
  declining the warning), or **read by the proxy** (requests were decrypted: a
  client that warned and continued, or one that does not pin).

:func:`summary_markdown` renders it as ``SUMMARY.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REFUSED_TLS = "refused the forged certificate (TLS handshake failed)"
REFUSED_AFTER = "refused after the handshake (no request sent: pinning, or the person declined the warning)"
READ = "sent requests the proxy decrypted (continued past a warning, or does not pin)"


@dataclass
class HostSummary:
    """One host under one action: the policies it came through, connections, issuer, requests."""

    host: str
    policies: set[str] = field(default_factory=set)
    connections: int = 0
    issuers: set[str] = field(default_factory=set)
    exceptions: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)  # "METHOD /path"


@dataclass
class ClientOutcome:
    """What one client connection did when the proxy forged a certificate for it."""

    policy: str | None
    host: str
    client: str | None
    user_agent: str | None
    outcome: str  # REFUSED_TLS, REFUSED_AFTER or READ
    detail: str | None = None


@dataclass
class Summary:
    inspected: dict[str, HostSummary] = field(default_factory=dict)
    excepted: dict[str, HostSummary] = field(default_factory=dict)
    outcomes: list[ClientOutcome] = field(default_factory=list)
    server_requests: list[str] = field(default_factory=list)  # "HOST METHOD /path status"


def _host(record: dict) -> str:
    return record.get("sni") or (record.get("connect_host") or "?").rsplit(":", 1)[0]


def summarize(proxy: list[dict], server: list[dict]) -> Summary:
    """The reviewer's view of the two journals (see the module docstring)."""
    s = Summary()
    for r in proxy:
        action = r.get("action")
        if action not in ("intercepted", "passed-through"):
            continue
        host = _host(r)
        table = s.inspected if action == "intercepted" else s.excepted
        h = table.setdefault(host, HostSummary(host))
        h.connections += 1
        if r.get("policy"):
            h.policies.add(r["policy"])
        if r.get("forged_issuer"):
            h.issuers.add(r["forged_issuer"])
        if r.get("exception"):
            h.exceptions.add(r["exception"])
        requests = r.get("requests") or []
        h.requests += [f"{q.get('method')} {q.get('path')}" for q in requests]
        if action != "intercepted" or r.get("open"):
            continue  # an open connection may still send its requests
        agent = next((q.get("headers", {}).get("user-agent") for q in requests if q.get("headers")), None)
        if requests:
            outcome, detail = READ, f"{len(requests)} request(s)"
        elif r.get("client_tls") == "failed":
            outcome, detail = REFUSED_TLS, r.get("client_tls_error")
        else:
            outcome, detail = REFUSED_AFTER, None
        s.outcomes.append(ClientOutcome(r.get("policy"), host, r.get("client"), agent, outcome, detail))
    s.server_requests = [f"{r.get('host')} {r.get('method')} {r.get('path')} {r.get('status')}"
                         for r in server if r.get("kind") == "http"]
    return s


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_markdown(s: Summary, *, title: str, facts: list[str], files: list[str]) -> str:
    """``SUMMARY.md``: what was inspected, what was excepted, which clients refused or were read."""
    lines = [f"# {title}", "", *[f"* {f}" for f in facts], "", "## Inspected (the proxy forged a certificate)", ""]
    if s.inspected:
        lines += ["| host | policies | connections | forged issuer | decrypted requests |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {_cell(h.host)} | {_cell(', '.join(sorted(h.policies)))} | {h.connections} | "
                  f"{_cell(', '.join(sorted(h.issuers)) or '-')} | {_cell(', '.join(h.requests) or 'none')} |"
                  for h in s.inspected.values()]
    else:
        lines.append("Nothing was inspected.")
    lines += ["", "## Excepted (passed through untouched)", ""]
    if s.excepted:
        lines += ["| host | policies | connections | exception |", "| --- | --- | --- | --- |"]
        lines += [f"| {_cell(h.host)} | {_cell(', '.join(sorted(h.policies)))} | {h.connections} | "
                  f"{_cell(', '.join(sorted(h.exceptions)) or '-')} |" for h in s.excepted.values()]
    else:
        lines.append("Nothing was passed through.")
    lines += ["", "## Clients under inspection", ""]
    if s.outcomes:
        lines += ["| policy | host | client | user agent | what it did |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {_cell(o.policy or '-')} | {_cell(o.host)} | {_cell(o.client or '-')} | "
                  f"{_cell(o.user_agent or '-')} | {_cell(o.outcome)}{_cell(f' ({o.detail})' if o.detail else '')} |"
                  for o in s.outcomes]
    else:
        lines.append("No closed connection was inspected.")
    lines += ["", f"The server received {len(s.server_requests)} request(s).", "", "## Files", "",
              *[f"* {f}" for f in files], ""]
    return "\n".join(lines)
