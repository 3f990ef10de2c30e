"""The HTML report: one self-contained page (inline CSS, no script, no external asset).

It opens on the summary: the counts (passed, failed, not run), then one line
per failing cell (expected vs observed, and the reason), then the cells that
were not run and why.  A "failures only" switch hides every passing row and
cell; it is a checkbox and a CSS ``:checked`` rule, so the page needs no script.
Then the matrix: a row per scenario, a column per client, each cell coloured by
its verdict (green PASS, red FAIL) and showing the observed outcome, the issuer
the client was shown, the pin result and, in amber, whether the proxy could
read the traffic; its header stays in view while a long matrix scrolls.  Below,
one section per cell, failures first and open, with the reasons, the sentence
that proves what the proxy could or could not read, the journal lines it rests
on, the command that reruns the client and its output.

It renders a document from :func:`harness.reports.document.to_document`, so it
shows nothing the redacted document does not hold; the sentences and journal
lines come from :mod:`harness.reports.cells`, as in every other format.
"""

from __future__ import annotations

import re
from html import escape

from harness.reports.cells import pin_result, proxy_lines, proxy_proof, server_lines
from harness.reports.rerun import rerun_command

READ_OUTCOMES = ("warned-continued", "accepted-inspection")

CSS = """
:root { --pass: #1e7e34; --pass-bg: #e3f4e8; --fail: #c5221f; --fail-bg: #fde7e6;
        --read: #9a5b00; --read-bg: #fff1cc; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 24px 32px 48px; max-width: 1500px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 6px; }
h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.summary { margin: 0 0 4px; color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px;
         color: #fff; letter-spacing: .02em; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); } .badge.zero { background: #8c959f; }
.badge.read { background: var(--read-bg); color: var(--read); border: 1px solid #f0c36d; }
.note { color: var(--muted); font-size: 12px; }
table.matrix { border-collapse: separate; border-spacing: 4px; width: 100%; table-layout: fixed; }
table.matrix th { text-align: left; font-weight: 600; vertical-align: top; padding: 6px 8px; }
table.matrix thead th { background: #f6f8fa; border-radius: 4px; }
table.matrix th.scenario-col { width: 24%; }
th .net { font-weight: 400; color: var(--muted); font-size: 12px; }
td.cell { vertical-align: top; padding: 0; border-radius: 6px; border: 1px solid var(--line); }
td.cell a { display: block; padding: 7px 9px; color: inherit; text-decoration: none; height: 100%; }
td.cell.pass { background: var(--pass-bg); border-color: #9fd3ad; border-left: 5px solid var(--pass); }
td.cell.fail { background: var(--fail-bg); border-color: #f3a9a4; border-left: 5px solid var(--fail); }
td.cell.none { background: #f6f8fa; color: var(--muted); text-align: center; padding: 8px; }
.verdict { font-weight: 700; font-size: 12px; letter-spacing: .04em; }
.pass .verdict { color: var(--pass); } .fail .verdict { color: var(--fail); }
.outcome { font-weight: 600; font-size: 15px; }
.expected { color: var(--fail); font-size: 12px; }
.fact { font-size: 12px; color: #3d444d; overflow-wrap: anywhere; }
.fact b { font-weight: 600; color: var(--muted); }
.read { margin-top: 3px; }
.legend span { margin-right: 14px; }
details.cell { border: 1px solid var(--line); border-left: 5px solid var(--pass); border-radius: 6px;
               margin: 8px 0; padding: 0 12px; }
details.cell.fail { border-left-color: var(--fail); }
details.cell summary { cursor: pointer; padding: 8px 0; font-weight: 600; }
details.cell summary .proof { font-weight: 400; color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 4px 0 10px; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
ul.reasons { color: var(--fail); margin: 4px 0 10px; }
h4 { margin: 10px 0 4px; font-size: 13px; }
.top { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 22px; margin-bottom: 10px; }
.counts { display: flex; gap: 10px; margin: 6px 0 4px; }
.count { border: 1px solid var(--line); border-radius: 8px; padding: 6px 14px; min-width: 118px; background: #f6f8fa; }
.count b { display: block; font-size: 26px; line-height: 1.1; }
.count.pass b { color: var(--pass); } .count.fail.some b { color: var(--fail); }
.count.fail.some { background: var(--fail-bg); border-color: #f3a9a4; } .count b { color: var(--muted); }
#only-failures { position: absolute; opacity: 0; }
label.toggle { cursor: pointer; user-select: none; border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px;
               background: #fff; font-weight: 600; }
label.toggle::before { content: "\\2610\\00a0"; }
#only-failures:checked ~ main label.toggle { background: var(--fail-bg); border-color: #f3a9a4; }
#only-failures:checked ~ main label.toggle::before { content: "\\2611\\00a0"; }
#only-failures:focus-visible ~ main label.toggle { outline: 2px solid #0969da; }
#only-failures:checked ~ main tr.all-pass, #only-failures:checked ~ main details.cell.pass,
#only-failures:checked ~ main td.cell.pass > a { display: none; }
table.list { border-collapse: collapse; width: 100%; table-layout: fixed; margin: 4px 0 8px; }
table.list th, table.list td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid var(--line);
                               overflow-wrap: anywhere; }
table.list th { background: #f6f8fa; font-weight: 600; }
table.list col.name { width: 24%; } table.list col.outcome { width: 13%; }
table.failures td.observed { color: var(--fail); font-weight: 600; }
table.failures td.why { color: #3d444d; }
p.ok { color: var(--pass); font-weight: 600; }
table.matrix thead th { position: sticky; top: 0; z-index: 1; }
.cell .line { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
td.cell.none .why { font-size: 12px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
pre { background: #f6f8fa; border: 1px solid var(--line); border-radius: 4px; padding: 8px 10px; margin: 0 0 8px;
      font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap;
      overflow-wrap: anywhere; max-height: 22em; overflow: auto; }
"""


def _anchor(cell: dict) -> str:
    return "cell-" + re.sub(r"[^A-Za-z0-9_-]", "-", f"{cell['scenario']}--{cell['client']}")


def _network(detail: dict) -> str:
    if not detail:
        return ""
    if detail.get("network") == "direct":
        where = "direct, no proxy"
    else:
        where = f"proxy, policy {detail.get('policy')}"
    return f"{where}; trusts {detail.get('trust')}"


def _read_badge(cell: dict) -> str:
    o = cell["observation"]
    n = o["decrypted_requests"]
    if not n:
        return ""
    creds = f" + {', '.join(o['credentials_at_proxy'])}" if o["credentials_at_proxy"] else ""
    return f'<div class="read"><span class="badge read">proxy read {n} request{"s" if n != 1 else ""}{escape(creds)}</span></div>'


def _matrix_cell(cell: dict | None, not_run: str | None = None) -> str:
    if cell is None:
        if not_run is None:
            return '<td class="cell none">-</td>'
        return (f'<td class="cell none" data-not-run="1" title="{escape(not_run)}">not run'
                f'<div class="why">{escape(not_run)}</div></td>')
    cls = "pass" if cell["verdict"] == "PASS" else "fail"
    expected = "" if cell["expected"] == cell["observed"] else \
        f'<div class="expected">expected {escape(cell["expected"])}</div>'
    return (
        f'<td class="cell {cls}" data-verdict="{cell["verdict"]}" data-outcome="{escape(cell["observed"])}" '
        f'data-client="{escape(cell["client"])}" data-scenario="{escape(cell["scenario"])}">'
        f'<a href="#{_anchor(cell)}" title="{escape(proxy_proof(cell))}">'
        f'<div class="line"><span class="verdict">{cell["verdict"]}</span>'
        f'<span class="outcome">{escape(cell["observed"])}</span></div>{expected}'
        f'<div class="fact issuer"><b>issuer</b> {escape(_issuer(cell))}</div>'
        f'<div class="fact pin"><b>pin</b> {escape(pin_result(cell))}</div>'
        f'<div class="fact server-saw"><b>server saw interception</b> {escape(cell.get("server_saw_interception", "-"))}'
        f' <b>grade</b> {escape(cell.get("server_grade", "-"))}</div>'
        f'{_read_badge(cell)}</a></td>'
    )


def _issuer(cell: dict) -> str:
    return f"CN={cell['issuer_seen']}" if cell.get("issuer_seen") else "-"


def _pre(lines: list[str] | str, empty: str) -> str:
    text = "\n".join(lines) if isinstance(lines, list) else lines
    return f"<pre>{escape(text.rstrip()) or escape(empty)}</pre>"


def _detail(cell: dict) -> str:
    o = cell["observation"]
    cls = "pass" if cell["verdict"] == "PASS" else "fail"
    facts = [
        ("expected", cell["expected"]), ("observed", cell["observed"]), ("exit code", o["exit_code"]),
        ("client", f"{cell['client']} ({cell.get('client_policy', 'reference')})"),
        ("issuer seen", _issuer(cell)), ("pin", pin_result(cell)),
        ("proxy", f"{o['intercepted']} intercepted, {o['passed_through']} passed through, "
                  f"{o['decrypted_requests']} decrypted request(s), {o['client_handshakes_failed']} failed client handshake(s)"),
        ("credentials at proxy", ", ".join(o["credentials_at_proxy"]) or "none"),
        ("server", f"{o['server_requests']} request(s)"),
        ("server saw interception", cell.get("server_saw_interception", "-")),
        ("TLS grade at the server", cell.get("server_grade", "-")),
        ("lane, time", f"lane {cell['lane']}, {cell['seconds']:.2f}s"),
    ]
    reasons = "".join(f"<li>{escape(r)}</li>" for r in cell["reasons"])
    command = rerun_command(cell) or f"harness {cell['client']} ... (reference client)"
    return (
        f'<details class="cell {cls}" id="{_anchor(cell)}"{" open" if cls == "fail" else ""}>'
        f'<summary><span class="badge {cls}">{cell["verdict"]}</span> {escape(cell["scenario"])} / '
        f'{escape(cell["client"])}: {escape(cell["observed"])} '
        f'<span class="proof">&mdash; {escape(proxy_proof(cell))}</span></summary>'
        + (f'<ul class="reasons">{reasons}</ul>' if reasons else "")
        + '<dl class="facts">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts) + "</dl>"
        + f'<h4>What the proxy could read</h4><p class="proof">{escape(proxy_proof(cell))}</p>'
        + "<h4>Proxy journal</h4>" + _pre(proxy_lines(cell["proxy_records"]), "(no connection)")
        + "<h4>Server journal</h4>" + _pre(server_lines(cell["server_records"]), "(no request)")
        + "<h4>Client command (reruns it as the harness ran it)</h4>" + _pre(command, "")
        + "<h4>Client output</h4>" + _pre(cell["output"], "(no output)")
        + "</details>"
    )


def _failure_row(cell: dict) -> str:
    why = "; ".join(cell["reasons"]) or "(no reason recorded)"
    return (f'<tr><td><a href="#{_anchor(cell)}">{escape(cell["scenario"])} / {escape(cell["client"])}</a></td>'
            f'<td>{escape(cell["expected"])}</td><td class="observed">{escape(cell["observed"])}</td>'
            f'<td class="why">{escape(why)}</td></tr>')


def _summary(doc: dict, failing: list[dict], not_run: list[dict]) -> str:
    """Counts, one line per failing cell (expected, observed, why), and the cells not run (why)."""
    lab = doc.get("lab") or {}
    took = f" in {doc['seconds']:.2f}s" if doc.get("seconds") is not None else ""
    counts = (f'<div class="counts"><div class="count pass"><b>{doc["passed"]}</b>passed</div>'
              f'<div class="count fail{" some" if failing else ""}"><b>{len(failing)}</b>failed</div>'
              f'<div class="count none"><b>{len(not_run)}</b>not run</div></div>')
    where = (f'<p class="summary">{len(doc["cells"])} cells{escape(took)} &middot; {escape(str(lab.get("backend", "?")))} lab '
             f'&middot; inspection CA CN={escape(str(lab.get("org_issuer_cn", "?")))} &middot; generated '
             f'{escape(doc["generated"])}</p>')
    if failing:
        failures = (f'<h2 id="failures">Failures ({len(failing)})</h2><table class="list failures">'
                    '<colgroup><col class="name"><col class="outcome"><col class="outcome"><col></colgroup>'
                    '<thead><tr><th>cell</th><th>expected</th><th>observed</th><th>why</th></tr></thead><tbody>'
                    + "".join(_failure_row(c) for c in failing) + "</tbody></table>")
    else:
        failures = '<h2 id="failures">Failures</h2><p class="ok">None: every cell that ran passed.</p>'
    skipped = ""
    if not_run:
        skipped = (f'<h2 id="not-run">Not run ({len(not_run)})</h2><table class="list not-run">'
                   '<colgroup><col class="name"><col></colgroup><thead><tr><th>cell</th><th>why</th></tr></thead><tbody>'
                   + "".join(f'<tr><td>{escape(n["scenario"])} / {escape(n["client"])}</td><td>{escape(n["reason"])}</td></tr>'
                             for n in not_run) + "</tbody></table>")
    return counts + where + failures + skipped


def to_html(doc: dict) -> str:
    """The report page for a :func:`harness.reports.document.to_document` document."""
    cells, not_run = doc["cells"], doc.get("not_run", [])
    failing = [c for c in cells if c["verdict"] != "PASS"]
    scenarios = list(dict.fromkeys([*(c["scenario"] for c in cells), *(n["scenario"] for n in not_run)]))
    clients = list(dict.fromkeys([*(c["client"] for c in cells), *(n["client"] for n in not_run)]))
    by_key = {(c["scenario"], c["client"]): c for c in cells}
    why_not = {(n["scenario"], n["client"]): n["reason"] for n in not_run}
    details = {c["scenario"]: c.get("scenario_detail", {}) for c in cells}
    title = f"TLS-inspection lab: {doc['passed']} passed, {doc['failed']} failed" + \
        (f", {len(not_run)} not run" if not_run else "")
    head = "".join(f"<th>{escape(c)}</th>" for c in clients)
    rows = []
    for s in scenarios:
        d = details.get(s, {})
        label = (f'<th scope="row">{escape(s)}<div class="net">{escape(_network(d))}</div>'
                 f'<div class="net">{escape(d.get("description", ""))}</div></th>')
        row = [by_key.get((s, c)) for c in clients]
        # What "failures only" hides: rows where everything that ran passed and nothing was left out.
        all_pass = all(c is None or c["verdict"] == "PASS" for c in row) and \
            not any((s, c) in why_not for c in clients)
        rows.append(("<tr class=\"all-pass\">" if all_pass else "<tr>") + label
                    + "".join(_matrix_cell(cell, why_not.get((s, c))) for cell, c in zip(row, clients)) + "</tr>")
    secrets = ("Credentials are shown in clear (--show-secrets): do not share this report."
               if doc.get("secrets_shown") else "Credentials are redacted.")
    ordered = failing + [c for c in cells if c["verdict"] == "PASS"]
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<input type="checkbox" id="only-failures" aria-label="show failures only">
<main>
<div class="top"><h1>TLS-inspection lab report</h1>
<label class="toggle" for="only-failures">Show failures only</label></div>
{_summary(doc, failing, not_run)}
<h2>Matrix</h2>
<p class="note legend"><span><span class="badge pass">PASS</span> the client did what its policy requires</span>
<span><span class="badge fail">FAIL</span> it did not (reasons below)</span>
<span><span class="badge read">proxy read N requests</span> the inspection proxy decrypted the traffic</span>
{escape(secrets)}</p>
<table class="matrix">
<thead><tr><th class="scenario-col">scenario</th>{head}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<h2>Cells</h2>
<p class="note">Each cell is judged from the proxy's and the server's journals plus the client's exit code;
the journal lines below are that ground truth. Failures first.</p>
{chr(10).join(_detail(c) for c in ordered)}
</main>
</body>
</html>
"""
