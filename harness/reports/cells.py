"""The pieces of a report every format shares: one cell as a document, redacted, and told in words.

:func:`cell_document` turns a judged :class:`harness.matrix.runner.CellResult`
into the JSON-able cell every report renders, with credentials redacted unless
``show_secrets`` is given (:mod:`harness.model.secrets`: each run's secret
wherever it appears, the journals' credential fields, headers and bodies, the
client's output, and the command line and environment it ran with), so no
report can show more than the document does.  The sentence helpers
(:func:`proxy_lines`, :func:`server_lines`, :func:`proxy_proof`,
:func:`pin_result`, :func:`describe`; the rerun line: :mod:`harness.reports.rerun`) read such a
document cell; the HTML page, the JUnit XML and the pytest plugin's failure
messages are built from them.
"""

from __future__ import annotations

from harness.matrix.cell import CellResult
from harness.model.records import ProxyRecord, ServerRecord
from harness.model.secrets import redact_argv, redact_env, redact_records
from harness.reports.rerun import rerun_command


def cell_document(cell: CellResult, *, show_secrets: bool = False) -> dict:
    """One cell as the reports show it (redacted unless ``show_secrets``)."""
    doc = cell.to_dict()
    if show_secrets:
        return doc
    known = {cell.secret} - {""}
    redacted = redact_records(doc, known)
    # Arguments are judged by their position (the value after -u), not as free text only.
    redacted["command"] = redact_argv(doc["command"], known)
    redacted["env"] = redact_env(doc["env"], known)
    return redacted


# -- plain-language evidence from a document cell ------------------------------------


def proxy_lines(records: list[ProxyRecord]) -> list[str]:
    """The proxy journal, one line per connection plus one per request it could read."""
    lines = []
    for r in records:
        if r["kind"] != "connection":
            continue
        line = f"#{r['seq']} [{r['policy']} lane {r['lane']}] CONNECT {r['connect_host'] or '?'}"
        line += f" sni={r['sni'] or '-'}: {r['action'] or 'no TLS'}"
        if r["exception"]:
            line += f" (exception {r['exception']})"
        if r["forged_issuer"]:
            line += f", forged certificate issued by CN={r['forged_issuer']}"
        line += f", client TLS {r['client_tls']}"
        if r["client_tls_error"]:
            line += f" ({r['client_tls_error']})"
        if r["upstream_error"]:
            line += f", upstream: {r['upstream_error']}"
        line += f", {len(r['requests'])} decrypted request(s)"
        lines.append(line)
        for q in r["requests"]:
            creds = f" carrying {', '.join(q['credentials'])}" if q["credentials"] else ""
            lines.append(f"    read: {q['method']} {q['host']}{q['path']} -> {q.get('status', '?')}{creds}")
        if r["websocket"]:
            lines.append(f"    read: {len(r['websocket'])} WebSocket message(s)")
    return lines


def server_lines(records: list[ServerRecord]) -> list[str]:
    """The mock server's journal, one line per request."""
    lines = []
    for r in records:
        if r["kind"] == "http":
            extra = "".join(f" {k}={r[k]}" for k in ("authorization", "code") if r.get(k))
            if tls := r.get("tls"):
                extra += f" ja4={tls['ja4']} grade={tls['grade']['letter']}"
            if (seen := r.get("interception")) and seen["suspected"]:
                extra += " INTERCEPTION SUSPECTED: " + "; ".join(seen["reasons"])
            lines.append(f"#{r['seq']} {r['method']} {r['host']}{r['path']} -> {r['status']}{extra}")
        elif r["kind"] == "ws-message":
            lines.append(f"#{r['seq']} WebSocket message on {r['host']}{r['path']} ({r['length']} bytes)")
    return lines


def proxy_proof(cell: dict) -> str:
    """One sentence: what the proxy could or could not read in this cell."""
    o = cell["observation"]
    reads = [f"{q['method']} {q['host']}{q['path']}" for r in cell["proxy_records"]
             if r["kind"] == "connection" for q in r["requests"]]
    if reads:
        creds = f", including credentials ({', '.join(o['credentials_at_proxy'])})" if o["credentials_at_proxy"] else ""
        return f"The proxy decrypted and could read {len(reads)} request(s){creds}: {', '.join(reads[:4])}" + \
            (" ..." if len(reads) > 4 else ".")
    if o["intercepted"]:
        how = ("the client rejected the forged certificate during the handshake" if o["client_handshakes_failed"]
               else "the client finished the handshake, then sent nothing")
        return f"The proxy forged a certificate (issuer CN={cell['issuer_seen'] or '?'}) but read nothing: {how}."
    if o["passed_through"]:
        return "The proxy passed the connection through untouched: it saw the host name, not the content."
    if cell.get("scenario_detail", {}).get("network") == "direct":
        return "No proxy on the path: the client talked to the server directly."
    return "The proxy saw no connection from this client."


def pin_result(cell: dict) -> str:
    """The pin check: as the client reported it, else what the journal implies for the key it was shown."""
    o = cell["observation"]
    if cell.get("pin_match") is not None:
        return "match" if cell["pin_match"] else "no match"
    if cell.get("client_policy") == "unpinned":
        return "not pinned"
    if cell["observed"] == "tls-error":
        return "not reached (TLS failed first)"
    if o["intercepted"]:
        return "no match (forged key)"
    if o["server_requests"] or o["passed_through"]:
        return "match (server's key)"
    return "-"


def describe(cell_doc: dict) -> str:
    """A readable account of one document cell: expected vs observed and the ground truth."""
    o = cell_doc["observation"]
    lines = [
        f"{cell_doc['scenario']}/{cell_doc['client']}: expected {cell_doc['expected']}, "
        f"observed {cell_doc['observed']} (exit {o['exit_code']})",
        *[f"  - {r}" for r in cell_doc["reasons"]],
        f"  issuer seen: {cell_doc['issuer_seen'] or '-'}; pin: {pin_result(cell_doc)}; "
        f"server saw interception: {cell_doc.get('server_saw_interception', '-')} "
        f"(TLS grade at the server: {cell_doc.get('server_grade', '-')})",
        f"  {proxy_proof(cell_doc)}",
    ]
    if rerun := rerun_command(cell_doc):
        lines.append(f"  rerun: {rerun}")
    lines += ["  proxy journal:", *[f"    {x}" for x in proxy_lines(cell_doc["proxy_records"]) or ["(nothing)"]]]
    lines += ["  server journal:", *[f"    {x}" for x in server_lines(cell_doc["server_records"]) or ["(nothing)"]]]
    out = cell_doc["output"].splitlines()
    lines += ["  client output" + (f" (last 12 of {len(out)} lines)" if len(out) > 12 else "") + ":",
              *[f"    {x}" for x in out[-12:] or ["(none)"]]]
    return "\n".join(lines)
