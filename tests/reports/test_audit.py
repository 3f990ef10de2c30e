"""The audit report in its three forms says the same: grade, reasons, every site and its verdict."""

from __future__ import annotations

import json
from dataclasses import asdict

from harness.audit.verdict import Seen
from harness.reports.audit import to_html, to_json, to_text


def doc(grade="F"):
    def case(name, bad, outcome, verdict, **seen):
        return {"case": name, "description": f"{name} <desc>", "bad": bad, "host": f"{name}.sites.lab.test",
                "seen": asdict(Seen(**seen)), "outcome": outcome, "verdict": verdict}
    return {
        "proxy": "http://127.0.0.1:8080", "trust": "org-ca.pem", "listen": "127.0.0.1",
        "cases": [case("good", False, "re-signed-trusted", "ok", trusted=True, reached=True, issuer="CN=Org"),
                  case("expired", True, "re-signed-trusted", "dangerous", trusted=True, reached=True, issuer="CN=Org"),
                  case("self-signed", True, "blocked", "safe", refused="TLS handshake failed: reset")],
        "versions": {"TLS 1.0": False, "TLS 1.1": False, "TLS 1.2": True, "TLS 1.3": True},
        "forged_keys": 1, "reused_key": True, "exception": "missing",
        "screenmeet": {"api.screenmeet.com": "inspected", "beam.screenmeet.com": None},
        "crl_fetches": 0, "grade": grade, "reasons": ["re-signs bad certificates as trusted: expired"],
        "seconds": 1.5, "hosts": ["127.0.0.1 good.sites.lab.test"], "public_root": "/s/pki/public-root.pem",
    }


def test_text_names_the_grade_the_reasons_and_marks_the_dangerous_site():
    text = to_text(doc())
    assert text.splitlines()[0].startswith("inspection proxy audit: grade F")
    assert "! re-signs bad certificates as trusted: expired" in text
    line = next(l for l in text.splitlines() if l.startswith("!!"))
    assert "expired" in line and "re-signed as trusted" in line
    assert "[TLS handshake failed: reset]" in text
    assert "TLS 1.2, TLS 1.3" in text and "one key is reused" in text
    assert "beam.screenmeet.com: not judged" in text and "1.5 s for 3 sites" in text


def test_json_round_trips():
    assert json.loads(to_json(doc())) == doc()


def test_html_is_one_escaped_page_with_every_site():
    page = to_html(doc())
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page.split("<body>")[0]
    assert "<desc>" not in page and "&lt;desc&gt;" in page
    assert page.count("<tr class=") == 3 and "<tr class='dangerous'>" in page
    assert 'class="grade F"' in page
