"""Reports of a matrix run: a terminal table, a JSON document, JUnit XML and an HTML page.

Everything but the table is rendered from :func:`to_document`, which redacts
credentials (each run's secret wherever it appears, and the values of
credential fields) unless ``show_secrets`` is given; so no report can show
more than the document does.  The HTML page lives in :mod:`harness.reports.html`.
The sentence helpers (:func:`proxy_lines`, :func:`proxy_proof`,
:func:`pin_result`) read a document cell, and are shared with the pytest plugin.
"""

from __future__ import annotations

import json
import re
import shlex
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.matrix.runner import CellResult
from harness.model.records import ProxyRecord, ServerRecord

REDACTED = "[redacted]"
# Fields that carry a credential in the proxy's and the server's journals.
SECRET_FIELDS = ("authorization", "proxy-authorization", "cookie", "code", "token")

COLUMNS = ("scenario", "client", "expected", "observed", "issuer seen", "verdict")


def _row(r: CellResult) -> tuple[str, ...]:
    o = r.verdict.observation
    return (r.scenario.name, r.client, r.verdict.expected, o.outcome, o.issuer_seen or "-", r.verdict.label)


def table(results: list[CellResult], *, color: bool = False) -> str:
    """A fixed-width table, failures followed by their reasons."""
    rows = [COLUMNS] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) for cell, w in zip(row, widths)]
        if color and n:
            mark = "\033[32m" if row[-1] == "PASS" else "\033[31m"
            cells[-1] = f"{mark}{cells[-1]}\033[0m"
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
        elif not results[n - 1].passed:
            for reason in results[n - 1].verdict.reasons:
                lines.append(f"    - {reason}")
    return "\n".join(lines)


def summary_line(results: list[CellResult], seconds: float | None = None) -> str:
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    took = f" in {seconds:.2f}s" if seconds is not None else ""
    return f"{passed} passed, {failed} failed{took}"


def redact(value, secrets: set[str] | frozenset[str] = frozenset()):
    """A copy of ``value`` with every ``secrets`` string and every credential field's value replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if str(k).lower() in SECRET_FIELDS and isinstance(v, str) and v else redact(v, secrets))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, REDACTED)
    return value


def cell_document(r: CellResult, *, show_secrets: bool = False) -> dict:
    """One cell as the reports show it (redacted unless ``show_secrets``)."""
    cell = r.to_dict()
    return cell if show_secrets else redact(cell, {r.secret})


def to_document(results: list[CellResult], *, lab: dict | None = None, seconds: float | None = None,
                show_secrets: bool = False) -> dict:
    """The whole run as one JSON-able document; credentials redacted unless ``show_secrets``."""
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
        "seconds": round(seconds, 3) if seconds is not None else None,
        "secrets_shown": show_secrets,
        "lab": lab or {},
        "cells": [cell_document(r, show_secrets=show_secrets) for r in results],
    }


def to_json(results: list[CellResult], **kwargs) -> str:
    return json.dumps(to_document(results, **kwargs), indent=2)


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


def describe(cell: dict) -> str:
    """A readable account of one document cell: expected vs observed and the ground truth."""
    o = cell["observation"]
    lines = [
        f"{cell['scenario']}/{cell['client']}: expected {cell['expected']}, observed {cell['observed']} "
        f"(exit {o['exit_code']})",
        *[f"  - {r}" for r in cell["reasons"]],
        f"  issuer seen: {cell['issuer_seen'] or '-'}; pin: {pin_result(cell)}",
        f"  {proxy_proof(cell)}",
    ]
    if cell.get("command"):
        lines.append(f"  command: {shlex.join(cell['command'])}")
    lines += ["  proxy journal:", *[f"    {x}" for x in proxy_lines(cell["proxy_records"]) or ["(nothing)"]]]
    lines += ["  server journal:", *[f"    {x}" for x in server_lines(cell["server_records"]) or ["(nothing)"]]]
    out = cell["output"].splitlines()
    lines += ["  client output" + (f" (last 12 of {len(out)} lines)" if len(out) > 12 else "") + ":",
              *[f"    {x}" for x in out[-12:] or ["(none)"]]]
    return "\n".join(lines)


# -- files ---------------------------------------------------------------------------


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str) -> str:
    """Text XML 1.0 can carry: control characters (a client's colour codes) become U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def to_junit(doc: dict) -> str:
    """JUnit XML: one testcase per cell (classname = scenario, name = client), failures with their reasons."""
    cells = doc["cells"]
    seconds = f"{doc['seconds'] or sum(c['seconds'] for c in cells):.3f}"
    suites = ET.Element("testsuites", name="tls-inspection-lab", tests=str(len(cells)),
                        failures=str(doc["failed"]), errors="0", time=seconds)
    suite = ET.SubElement(suites, "testsuite", name="tls-inspection-lab", tests=str(len(cells)),
                          failures=str(doc["failed"]), errors="0", skipped="0", time=seconds,
                          timestamp=doc["generated"])
    props = ET.SubElement(suite, "properties")
    for key in ("backend", "org_issuer_cn", "lanes"):
        if key in doc["lab"]:
            ET.SubElement(props, "property", name=key, value=str(doc["lab"][key]))
    for c in cells:
        case = ET.SubElement(suite, "testcase", classname=f"tls-lab.{c['scenario']}", name=c["client"],
                             time=f"{c['seconds']:.3f}")
        if c["verdict"] != "PASS":
            failure = ET.SubElement(case, "failure", type="verdict",
                                    message=_xml(f"expected {c['expected']}, observed {c['observed']}: "
                                                 + "; ".join(c["reasons"])))
            failure.text = _xml("\n".join(c["reasons"]))
        ET.SubElement(case, "system-out").text = _xml(describe(c))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def prepare_report_dir(path: str | Path) -> Path:
    """Create the report directory, or say in one sentence why it cannot be used."""
    from harness.lab import writable_dir

    return writable_dir(path, what="report directory", option="--report")


def write_reports(directory: str | Path, results: list[CellResult], *, lab: dict | None = None,
                  seconds: float | None = None, show_secrets: bool = False) -> list[Path]:
    """Write ``report.html``, ``junit.xml`` and ``report.json``; returns their paths."""
    from harness.reports.html import to_html

    d = prepare_report_dir(directory)
    doc = to_document(results, lab=lab, seconds=seconds, show_secrets=show_secrets)
    files = {"report.html": to_html(doc), "junit.xml": to_junit(doc), "report.json": json.dumps(doc, indent=2)}
    written = []
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
        written.append(d / name)
    return written


def publish(results: list[CellResult], *, lab: dict, seconds: float, as_json: bool,
            report_dir: str | Path | None, show_secrets: bool) -> None:
    """What ``harness run`` prints (the table, or one JSON document) and the report files it writes."""
    import sys

    if as_json:
        print(to_json(results, lab=lab, seconds=seconds, show_secrets=show_secrets))
    else:
        print(table(results, color=sys.stdout.isatty()))
        print(summary_line(results, seconds))
    if report_dir is not None:
        written = write_reports(report_dir, results, lab=lab, seconds=seconds, show_secrets=show_secrets)
        print(f"Reports: {', '.join(str(p) for p in written)}", file=sys.stderr)
