"""``harness up --web --save-flows --har --keylog --pcap`` and ``harness evidence``, end to end.

One lab (inspect + exception-wildcard) with every evidence output; the
attended client joins through inspection and continues past the warning
(decrypted ``/api/v1/`` requests), Beam refuses, Beam passes the exception.
Then each artefact is checked with the tool a reviewer would use: headless
Chromium on mitmweb's page, tshark with the key log on the pcap, mitmproxy's
FlowReader on the flow file, json on the HAR, cryptography on the chains.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from harness.reports.evidence import tshark_command

ROOT = Path(__file__).resolve().parents[2]
JOIN = "/api/v1/sessions/join"


def harness(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def evidence_lab(tmp_path_factory):
    if shutil.which("tcpdump") is None or os.geteuid() != 0:
        pytest.skip("needs tcpdump and root to capture (.ci/run installs tcpdump)")
    out = tmp_path_factory.mktemp("evidence")
    files = {"flows": out / "flows.mitm", "har": out / "flows.har", "keylog": out / "keys.txt", "pcap": out / "lab.pcap"}
    state = out / "lab"
    up = harness("up", "--detach", "--state-dir", str(state), "--lanes", "1", "--policies", "inspect,exception-wildcard",
                 "--web", "--save-flows", str(files["flows"]), "--har", str(files["har"]),
                 "--keylog", str(files["keylog"]), "--pcap", str(files["pcap"]))
    assert up.returncode == 0, up.stderr + up.stdout
    info = json.loads((state / "lab.json").read_text())
    try:
        trust, pins = info["pki"]["trust_public_org"], info["pki"]["pins_file"]
        inspect, exception = info["proxies"]["inspect"][0], info["proxies"]["exception-wildcard"][0]
        attended = harness("attended", "--proxy", inspect, "--trust", trust, "--pins", pins, "--on-warning", "continue")
        assert attended.returncode == 0, attended.stderr
        refused = harness("beam", "--proxy", inspect, "--trust", trust, "--pins", pins, "--once")
        assert refused.returncode == 5, refused.stderr
        passed = harness("beam", "--proxy", exception, "--trust", trust, "--pins", pins, "--once")
        assert passed.returncode == 0, passed.stderr
        yield {"state": state, "info": info, "files": files, "out": out, "banner": up.stdout}
    finally:
        down = harness("down", "--state-dir", str(state))
        assert down.returncode == 0, down.stderr


def test_banner_names_mitmweb_and_every_file(evidence_lab):
    banner, web = evidence_lab["banner"], evidence_lab["info"]["evidence"]["web"]
    assert web.startswith("http://127.0.0.1:") and f"mitmweb           {web}" in banner
    for path in evidence_lab["files"].values():
        assert str(path) in banner


def test_mitmweb_shows_the_decrypted_request_in_chromium(evidence_lab, tmp_path):
    from tests.reports.test_html import run_chromium

    web = evidence_lab["info"]["evidence"]["web"]
    # mitmweb's own JSON API first (what the page renders from) ...
    with urllib.request.urlopen(web.split("?")[0] + "flows", timeout=30) as resp:
        flows = json.load(resp)
    assert any(f["request"]["path"] == JOIN and f["request"]["method"] == "POST" for f in flows)
    # ... then the page itself: its flow list, rendered by headless Chromium, shows the request.
    dom = run_chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", web).stdout
    assert JOIN in dom
    run_chromium(tmp_path, "--virtual-time-budget=10000", f"--screenshot={tmp_path / 'mitmweb.png'}", web)
    assert (tmp_path / "mitmweb.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evidence_of_the_running_lab(evidence_lab):
    out = evidence_lab["out"] / "running"
    result = harness("evidence", str(out), "--state-dir", str(evidence_lab["state"]))
    assert result.returncode == 0, result.stderr
    summary = (out / "SUMMARY.md").read_text()
    assert "running lab" in summary and JOIN in summary
    # Before the proxy stops mitmproxy has not written its HAR; the bundle has mitmproxy's export of the flows.
    har = json.loads((out / "flows.har").read_text())
    assert any(e["request"]["url"].endswith(JOIN) for e in har["log"]["entries"])
    assert mode(out / "sslkeylog.txt") == 0o600 and mode(out / "capture.pcap") == 0o600


def test_tshark_decrypts_the_capture_with_the_key_log(evidence_lab):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (.ci/run installs it)")
    files, info = evidence_lab["files"], evidence_lab["info"]
    # Both legs: the client's TLS inside the CONNECT tunnel to the proxy, and the proxy's to the server.
    argv = tshark_command(_info(info), str(files["keylog"]), str(files["pcap"]))
    seen = subprocess.run([*argv, "-T", "fields", "-e", "tcp.dstport", "-e", "http.request.method",
                           "-e", "http.request.uri"], capture_output=True, text=True, timeout=180).stdout
    joins = [line.split("\t") for line in seen.splitlines() if line.endswith(f"\tPOST\t{JOIN}")]
    proxy_port = info["proxies"]["inspect"][0].rsplit(":", 1)[1]
    server_port = info["server_connect"][0].rsplit(":", 1)[1]
    assert {j[0] for j in joins} == {proxy_port, server_port}, seen
    # Without the key log the same capture shows no decrypted request.
    blind = subprocess.run([a for a in argv if not a.startswith("tls.keylog_file")], capture_output=True, text=True,
                           timeout=180).stdout
    assert JOIN not in blind


def _info(data: dict):
    from harness.lab.info import LabInfo

    return LabInfo.from_dict(json.loads(json.dumps(data)))


def test_files_are_private(evidence_lab):
    for path in evidence_lab["files"].values():
        assert mode(path) == 0o600, path


def test_evidence_after_the_lab_stopped(evidence_lab):
    state = evidence_lab["state"]
    assert harness("down", "--state-dir", str(state)).returncode == 0
    out = evidence_lab["out"] / "stopped"
    result = harness("evidence", str(out), "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    info = evidence_lab["info"]

    summary = (out / "SUMMARY.md").read_text()
    assert "stopped lab" in summary
    assert "| api.screenmeet.com | inspect |" in summary and "| beam.screenmeet.com | exception-wildcard |" in summary
    assert "refused after the handshake" in summary and "sent requests the proxy decrypted" in summary

    proxy = json.loads((out / "proxy-journal.json").read_text())
    assert any(q["path"] == JOIN for r in proxy for q in r["requests"])
    assert any(r["path"] == JOIN for r in json.loads((out / "server-journal.json").read_text()))

    # mitmproxy wrote its HAR when the proxy stopped; the bundle carries it.
    har = json.loads((out / "flows.har").read_text())
    assert any(e["request"]["method"] == "POST" and e["request"]["url"].endswith(JOIN) for e in har["log"]["entries"])
    from mitmproxy import io

    with open(out / "flows.mitm", "rb") as f:
        flows = list(io.FlowReader(f).stream())
    assert any(getattr(fl, "request", None) and fl.request.path == JOIN for fl in flows)

    org = x509.load_pem_x509_certificate(Path(info["pki"]["org_ca"]).read_bytes())
    forged = x509.load_pem_x509_certificates((out / "chains" / "api.screenmeet.com.forged.pem").read_bytes())
    assert forged[0].issuer == org.subject and forged[-1] == org
    real = x509.load_pem_x509_certificates((out / "chains" / "api.screenmeet.com.real.pem").read_bytes())
    server = x509.load_pem_x509_certificates(Path(info["pki"]["server_chain"]).read_bytes())
    assert real[0] == server[0]

    assert mode(out) == 0o700 and mode(out / "sslkeylog.txt") == 0o600
    archive = out.with_name("stopped.tar.gz")
    assert mode(archive) == 0o600
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"stopped/SUMMARY.md", "stopped/flows.har", "stopped/capture.pcap",
            "stopped/chains/api.screenmeet.com.real.pem"} <= names
