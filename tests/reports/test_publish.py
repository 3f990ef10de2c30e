"""What harness run prints and the report files it writes."""

from __future__ import annotations

import json

from harness.reports.publish import publish, write_reports


def test_write_reports(cells, tmp_path):
    written = write_reports(tmp_path / "r", cells, lab={"backend": "local", "org_issuer_cn": "X"}, seconds=1)
    assert [p.name for p in written] == ["report.html", "junit.xml", "report.json"]
    assert json.loads((tmp_path / "r" / "report.json").read_text())["failed"] == 1


def test_publish_prints_the_table_or_the_document(cells, tmp_path, capsys):
    publish(cells, lab={"backend": "local"}, seconds=1.0, as_json=False, report_dir=None, show_secrets=False)
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split() == ["scenario", "client", "expected", "observed", "issuer", "seen",
                                           "server", "saw", "interception", "grade", "verdict"]
    assert out.rstrip().endswith(f"{len(cells) - 1} passed, 1 failed in 1.00s") and err == ""
    r = tmp_path / "r"
    publish(cells, lab={"backend": "local"}, seconds=1.0, as_json=True, report_dir=r, show_secrets=False)
    out, err = capsys.readouterr()
    assert json.loads(out)["failed"] == 1 and not any(c.secret in out for c in cells)
    assert err == f"Reports: {r / 'report.html'}, {r / 'junit.xml'}, {r / 'report.json'}\n"
