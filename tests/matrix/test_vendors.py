"""harness run --vendor / --all-vendors: the issuer check (pure) and the command line end to end."""

import json
import shutil
import subprocess
import sys
from dataclasses import replace as replace_obs
from pathlib import Path

import pytest

from harness.matrix.cell import CellResult
from harness.matrix.vendors import issuer_reasons, judge_vendor
from harness.model.scenarios import Scenario
from harness.model.vendors import get_vendor
from harness.model.verdict import Observation, Verdict

ROOT = Path(__file__).resolve().parents[2]
ZSCALER = get_vendor("zscaler")


def cell(client="attended", outcome="declined", issuer=ZSCALER.issuing_cn, forged=None, output=None):
    o = Observation(outcome=outcome, exit_code=3, issuer_seen=issuer, pin_match=False, warned=True, secure=None,
                    intercepted=1, passed_through=0, client_handshakes_failed=0, decrypted_requests=0,
                    credentials_at_proxy=(), server_requests=0, websocket_messages_at_proxy=0)
    if output is None:
        output = f"... Certificate Issuer: CN={issuer}. Are you sure you wish to continue?"
    records = [{"kind": "connection", "action": "intercepted", "forged_issuer": forged or issuer}]
    scenario = Scenario(name="inspected-decline", network="proxy", expect={client: outcome}, policy="inspect")
    return CellResult(scenario, client, Verdict(outcome, o, ()), 0, 0.1, output, records, [])


def test_the_vendors_issuer_passes_and_is_renamed():
    judged = judge_vendor(cell(), ZSCALER)
    assert judged.passed and judged.scenario.name == "zscaler/inspected-decline"


def test_another_issuer_fails_with_reasons():
    reasons = issuer_reasons(cell(issuer="Acme Corp TLS Inspection Root CA"), ZSCALER)
    assert any("expected the zscaler issuer CN=Zscaler Intermediate Root CA" in r for r in reasons)
    assert any("does not name Certificate Issuer" in r for r in reasons)
    assert not judge_vendor(cell(issuer="Other CA"), ZSCALER).passed
    # The proxy journal is checked too: a forged issuer other than the vendor's fails.
    assert issuer_reasons(cell(forged="Other CA"), ZSCALER) == [
        f"the proxy forged with Other CA, not CN={ZSCALER.issuing_cn}"]


def test_cells_without_a_forged_handshake_are_not_checked():
    assert issuer_reasons(cell(outcome="connected", issuer="Lab Public Intermediate CA"), ZSCALER) == []
    assert issuer_reasons(cell(outcome="tls-error", issuer="Fortinet_CA_Untrusted"), ZSCALER) == []


def harness(*args, env=None, timeout=180):
    import os

    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args,needle", [
    (["--vendor", "bluecoat"], "unknown vendor 'bluecoat' (did you mean 'symantec-bluecoat'?); choose one of:"),
    (["--vendor", "zscaler", "--all-vendors"], "give --vendor NAME or --all-vendors, not both."),
])
def test_bad_vendor_options_are_one_sentence(tmp_path, args, needle):
    proc = harness("run", *args, "--state-dir", str(tmp_path))
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr


def test_vendor_and_org_cn_conflict(tmp_path):
    proc = harness("up", "--vendor", "zscaler", "--org-cn", "Mine", "--state-dir", str(tmp_path))
    assert proc.returncode == 2 and "names the inspection CA itself; drop --org-cn" in proc.stderr


def test_run_one_vendor(tmp_path):
    proc = harness("run", "--vendor", "fortinet", "--scenario", "inspected-continue", "--scenario",
                   "untrusted-upstream", "--json", "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    cells = {(c["scenario"], c["client"]): c for c in doc["cells"]}
    assert cells[("fortinet/inspected-continue", "attended")]["issuer_seen"] == "FG100FTK20000001"
    # Fortinet re-signs untrusted upstreams as untrusted: a TLS error, not the default vendor's decline.
    assert cells[("fortinet/untrusted-upstream", "attended")]["observed"] == "tls-error"
    assert doc["lab"]["vendors"]["fortinet"]["org_issuer_cn"] == "FG100FTK20000001"


def test_all_vendors_runs_one_lab_per_vendor(tmp_path):
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    for name in ("policies.toml", "scenarios.toml"):
        shutil.copy(ROOT / "fixtures" / name, fixtures / name)
    text = (ROOT / "fixtures" / "vendors.toml").read_text()
    keep = [block for block in text.split("\n[vendor.") if block.startswith(("generic", "forcepoint"))]
    (fixtures / "vendors.toml").write_text("".join("\n[vendor." + b for b in keep))
    proc = harness("run", "--all-vendors", "--scenario", "inspected-decline", "--scenario", "untrusted-upstream",
                   "--state-dir", str(tmp_path / "s"), env={"HARNESS_FIXTURES": str(fixtures)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "8 passed, 0 failed" in proc.stdout
    for line in ("generic/untrusted-upstream      attended  declined", "forcepoint/untrusted-upstream   attended  tls-error"):
        assert " ".join(line.split()) in " ".join(proc.stdout.split())
    assert "Acme Corp Client Protection CA" in proc.stdout


def test_pki_with_a_vendor(tmp_path):
    proc = harness("pki", "--vendor", "cisco-umbrella", "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    from harness.pki.ca import load_certificate
    from harness.pki.lab import LabPKI

    pki = LabPKI.load(tmp_path)
    assert pki.org_issuer_cn == "Cisco Umbrella Secondary SubCA ams-SG"
    from harness.pki.shapes import dn_strings

    # The root's DN in the captured order: O first, then CN.
    assert dn_strings(load_certificate(pki.org_ca).subject) == ["O=Cisco", "CN=Cisco Umbrella Root CA"]


def test_each_products_upstream_tls_is_graded_at_the_server(tmp_path):
    """Through the real proxy: each profile's upstream ClientHello reaches the server as the profile
    says (versions, first suite) and gets its NDSS grade — OpenSSL's defaults A, Forcepoint's CBC-first
    B, and a test profile that also offers a NULL suite F; the server saw interception in every
    inspected cell that reached it, and in no tunnelled one."""
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    for name in ("policies.toml", "scenarios.toml"):
        shutil.copy(ROOT / "fixtures" / name, fixtures / name)
    blocks = {b.split("]", 1)[0]: "\n[vendor." + b for b in (ROOT / "fixtures" / "vendors.toml").read_text().split("\n[vendor.")[1:]}
    weak = (blocks["generic"].replace("[vendor.generic]", "[vendor.weak]")
            + 'upstream_tls_max = "1.2"\nupstream_ciphers = ["ECDHE-ECDSA-AES128-GCM-SHA256", "NULL-SHA256", "@SECLEVEL=0"]\n')
    weak_source = (blocks["generic.source"].replace("[vendor.generic.source]", "[vendor.weak.source]")
                   + 'upstream_tls_max = "lab: a test profile"\nupstream_ciphers = "lab: a test profile offering NULL"\n')
    (fixtures / "vendors.toml").write_text("".join([blocks["generic"], blocks["generic.source"], blocks["forcepoint"],
                                                    blocks["forcepoint.source"], weak, weak_source]))
    proc = harness("run", "--all-vendors", "--scenario", "inspected-continue", "--scenario", "tunnel-only", "--json",
                   "--state-dir", str(tmp_path / "s"), env={"HARNESS_FIXTURES": str(fixtures)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    cells = {(c["scenario"], c["client"]): c for c in doc["cells"]}
    assert {v: d["upstream_grade"] for v, d in doc["lab"]["vendors"].items()} == {"generic": "A", "forcepoint": "B",
                                                                               "weak": "F"}
    for vendor, grade, first, versions in (("generic", "A", None, "TLSv1.3"), ("forcepoint", "B", "0xc023", "TLSv1.2"),
                                           ("weak", "F", "0xc02b", "TLSv1.2")):
        inspected = cells[(f"{vendor}/inspected-continue", "attended")]
        assert inspected["server_saw_interception"] == "yes" and inspected["server_grade"] == grade, (vendor, inspected["server_grade"])
        hellos = [r["tls"] for r in inspected["server_records"] if r["kind"] == "http"]
        assert hellos and all(h["versions"][0] == versions for h in hellos), (vendor, hellos[0]["versions"])
        if first:
            assert all(h["ciphers"][0] == first for h in hellos), (vendor, hellos[0]["ciphers"][:3])
        if vendor == "weak":
            assert "0x003b" in hellos[0]["ciphers"] and "NULL" in hellos[0]["grade"]["reason"]
        tunnelled = cells[(f"{vendor}/tunnel-only", "attended")]
        # Tunnelled: the client's own ClientHello reached the server, unsuspected, whatever the product.
        assert tunnelled["server_saw_interception"] == "no" and tunnelled["server_grade"] == "A"


def test_the_server_must_notice_the_product():
    """A vendor cell whose requests reached the server through inspection unsuspected fails, and so does
    one the server suspected where nothing was intercepted."""
    def with_server(suspected, intercepted):
        c = cell(outcome="warned-continued")
        o = replace_obs(c.verdict.observation, server_requests=1, intercepted=intercepted)
        r = {"kind": "http", "interception": {"suspected": suspected, "reasons": ["r"], "product": None}, "tls": None}
        return CellResult(c.scenario, c.client, Verdict(c.verdict.expected, o, ()), 0, 0.1, c.output,
                          c.proxy_records, [r])
    assert judge_vendor(with_server(True, 1), ZSCALER).passed
    failed = judge_vendor(with_server(False, 1), ZSCALER)
    assert not failed.passed and any("did not notice" in r for r in failed.verdict.reasons)
    wrong = judge_vendor(with_server(True, 0), ZSCALER)
    assert any("did not intercept" in r for r in wrong.verdict.reasons)


def test_product_grades_and_their_line():
    from harness.matrix.vendors import product_grades
    from harness.reports.table import grades_line

    def graded(vendor, letter):
        c = judge_vendor(cell(), get_vendor(vendor))
        c.proxy_records = [{"kind": "connection", "action": "intercepted", "forged_issuer": "x",
                            "upstream_local": ["127.0.0.1:1"]}]
        c.server_records = [{"kind": "http", "client": "127.0.0.1:1", "tls": {"grade": {"letter": letter}}}]
        return c
    grades = product_grades([graded("zscaler", "A"), graded("forcepoint", "B"), graded("forcepoint", "A"), cell()])
    assert grades == {"zscaler": "A", "forcepoint": "A/B"}
    line = grades_line({"vendors": {"zscaler": {"upstream_grade": "A"}, "forcepoint": {"upstream_grade": "A/B"}}})
    assert line.endswith(": zscaler A, forcepoint A/B")
    assert grades_line({"backend": "local"}) is None
