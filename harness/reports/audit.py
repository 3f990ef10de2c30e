"""The audit's one-page report: terminal text, JSON, self-contained HTML (the matrix report's styling).

Each renders the JSON document of :meth:`harness.audit.drive.AuditResult.to_dict`,
so the three say the same: the grade and why, one row per site (what the
proxy did, whether that was right), the forged leaves' keys, the TLS versions
accepted from clients, the ``*.screenmeet.com`` exception and the audit's time.
"""

from __future__ import annotations

import json
from html import escape

from harness.audit.verdict import DANGEROUS, OVER_BLOCKED
from harness.reports.html import CSS

WHAT = {
    "blocked": "blocked",
    "passed-through": "passed through (the client sees the site's certificate)",
    "re-signed-untrusted": "re-signed with a CA the client does not trust (the client sees an error)",
    "re-signed-trusted": "re-signed as trusted (the client cannot tell)",
}
GRADE_MEANING = {"A": "blocks or passes every bad certificate, forges each site with its own key",
                 "B": "safe, with a weakness", "C": "unsafe in part (revocation or old TLS)",
                 "F": "dangerous: clients trust bad certificates it re-signs"}


def what(case: dict) -> str:
    """What the proxy did with one site, in words (a valid site re-signed as trusted is plain inspection)."""
    if case["outcome"] == "re-signed-trusted" and not case["bad"]:
        return "inspected (re-signed with the trusted CA)"
    return WHAT[case["outcome"]]


def why(case: dict) -> str:
    """The detail behind a site's outcome: the refusal, the client's verify error, or the answer it got."""
    seen = case["seen"]
    if seen["refused"] or seen["verify_error"]:
        return seen["refused"] or seen["verify_error"]
    if case["outcome"] == "blocked" and seen["status"]:
        return f"answered HTTP {seen['status']}, the site never saw the request"
    return ""


def _facts(doc: dict) -> list[tuple[str, str]]:
    versions = [v for v, ok in doc["versions"].items() if ok]
    keys = (f"{doc['forged_keys']} distinct key(s) among the forged leaves"
            + (": one key is reused" if doc["reused_key"] else ""))
    sm = ", ".join(f"{h}: {o or 'not judged'}" for h, o in doc["screenmeet"].items())
    return [
        ("proxy", doc["proxy"]),
        ("proxy must trust upstream", f"the lab's public root {doc['public_root']}"),
        ("client trusts", f"the lab's public root + {doc['trust']}" if doc["trust"]
         else "the lab's public root + the CA that signed the control site's forged certificate"),
        ("TLS from clients", ", ".join(versions) or "none"),
        ("forged leaves", keys),
        ("*.screenmeet.com exception", f"{doc['exception']} ({sm})"),
        ("CRL fetched", f"{doc['crl_fetches']} time(s) by the proxy (the revoked site's)"),
        ("audit time", f"{doc['seconds']} s for {len(doc['cases'])} sites"),
    ]


def to_json(doc: dict) -> str:
    return json.dumps(doc, indent=2)


def to_text(doc: dict) -> str:
    """The terminal report: grade, reasons, facts, one line per site."""
    lines = [f"inspection proxy audit: grade {doc['grade']} ({GRADE_MEANING[doc['grade']]})"]
    lines += [f"  ! {r}" for r in doc["reasons"]]
    lines += [f"  {k}: {v}" for k, v in _facts(doc)]
    width = max(len(c["case"]) for c in doc["cases"])
    lines.append("")
    lines.append(f"  {'site'.ljust(width)}  {'certificate':11}  {'verdict':12}  what the proxy did")
    for c in doc["cases"]:
        mark = "!!" if c["verdict"] == DANGEROUS else " -" if c["verdict"] == OVER_BLOCKED else "  "
        detail = why(c) if c["outcome"] != "re-signed-trusted" else ""
        lines.append(f"{mark}{c['case'].ljust(width)}  {'bad' if c['bad'] else 'valid':11}  {c['verdict']:12}  "
                     f"{what(c)}" + (f" [{detail}]" if detail else ""))
    return "\n".join(lines)


_AUDIT_CSS = """
.grade { font-size: 44px; font-weight: 800; border-radius: 10px; padding: 2px 18px; color: #fff; }
.grade.A, .grade.B { background: var(--pass); } .grade.C { background: var(--read); } .grade.F { background: var(--fail); }
tr.dangerous td { background: var(--fail-bg); } tr.dangerous td.verdict { color: var(--fail); font-weight: 700; }
tr.over-blocked td.verdict { color: var(--read); font-weight: 700; }
tr.safe td.verdict, tr.ok td.verdict { color: var(--pass); font-weight: 600; }
"""


def to_html(doc: dict) -> str:
    """One self-contained page: the grade, the facts, then the table of sites."""
    reasons = "".join(f"<li>{escape(r)}</li>" for r in doc["reasons"])
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in _facts(doc))
    rows = "".join(
        f"<tr class='{escape(c['verdict'])}'><td>{escape(c['case'])}<div class='note'>{escape(c['description'])}"
        f"</div></td><td>{'bad' if c['bad'] else 'valid'}</td><td>{escape(what(c))}</td>"
        f"<td class='verdict'>{escape(c['verdict'])}</td>"
        f"<td class='fact'>{escape(c['seen']['issuer'] or '')}<br>"
        f"{escape(why(c))}</td></tr>"
        for c in doc["cases"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Inspection proxy audit: grade {escape(doc['grade'])}</title>
<style>{CSS}{_AUDIT_CSS}</style></head><body><main>
<div class="top"><h1>Inspection proxy audit</h1><span class="grade {escape(doc['grade'])}">{escape(doc['grade'])}</span>
<span class="summary">{escape(GRADE_MEANING[doc['grade']])}</span></div>
{f'<ul class="reasons">{reasons}</ul>' if reasons else '<p class="ok">no finding</p>'}
<dl class="facts">{facts}</dl>
<h2>Sites</h2>
<table class="list"><colgroup><col class="name"><col style="width:9%"><col><col style="width:11%"><col style="width:28%">
</colgroup><thead><tr><th>site</th><th>certificate</th><th>what the proxy did</th><th>verdict</th>
<th>issuer shown / why</th></tr></thead><tbody>{rows}</tbody></table>
<p class="note">Blocked: no tunnel, no handshake, or the request never reached the site (the site's journal says).
Passed through: the client was shown the site's own certificate. Re-signed: a forged certificate; trusted when a
client trusting the organisation's CA accepts it.</p>
</main></body></html>
"""
