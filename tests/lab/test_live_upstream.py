"""``harness up --upstream live`` against a stand-in internet (no real traffic leaves the machine).

The stand-in is the lab's own server program with a certificate from a CA the
test makes ("Stand-in Internet Root"), listening on 443 in a network namespace
the test creates; ``ip netns exec`` bind-mounts ``/etc/netns/<ns>/hosts`` over
``/etc/hosts``, so in there the ScreenMeet names resolve (through the system
resolver, as ``--upstream live`` does in a real office) to the stand-in.  The
lab runs in the same namespace: its proxy resolves the names like any program
there, no resolver override exists in the lab.  Why a namespace and not a
hosts override in the proxy: it exercises the real path (getaddrinfo, port
443) and the namespace's loopback keeps 443 free of everything on the host.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
from cryptography import x509

from harness.pki.ca import CA

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("screenmeet.com", "api.screenmeet.com", "beam.screenmeet.com")


def _need_root_netns() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("openssl") is None:
        pytest.skip("needs root, iproute2 and openssl to build the stand-in internet's network namespace")


@pytest.fixture
def netns():
    """A network namespace (branch-prefixed) whose /etc/hosts sends the ScreenMeet names to its loopback."""
    _need_root_netns()
    name = f"evidence-{uuid.uuid4().hex[:8]}"
    etc = Path("/etc/netns") / name
    etc.mkdir(parents=True)
    (etc / "hosts").write_text("127.0.0.1 localhost\n127.0.0.1 " + " ".join(NAMES) + "\n")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(etc, ignore_errors=True)


def in_ns(ns: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 120)
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, **kw)


@pytest.fixture
def standin(netns, tmp_path):
    """The stand-in internet: a TLS server on 443 in the namespace, chained to its own root."""
    root = CA(common_name="Stand-in Internet Root (tls-lab test)", organization="Stand-in")
    leaf = root.issue_cert(*NAMES)
    chain = leaf.chain_pem().write_to_path(tmp_path / "standin-chain.pem")
    key = leaf.private_key_pem.write_to_path(tmp_path / "standin.key", private=True)
    ca = root.cert_pem.write_to_path(tmp_path / "standin-ca.pem")
    proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-m", "harness.server", "--cert", str(chain),
                             "--key", str(key), "--host", "127.0.0.1", "--ports", "443", "--admin", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        ready = json.loads(proc.stdout.readline())["ready"]
        yield {"ca": ca, "leaf": leaf.cert, "admin": ready["admin"], "ns": netns}
    finally:
        proc.terminate()
        proc.wait(30)


def harness(ns: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    return in_ns(ns, sys.executable, "-m", "harness", *argv, cwd=ROOT, **kw)


def peer_chain(ns: str, proxy: str, host: str) -> list[x509.Certificate]:
    """The chain a client is shown for ``host`` through ``proxy`` (openssl s_client -proxy)."""
    hostport = proxy.removeprefix("http://")
    out = in_ns(ns, "openssl", "s_client", "-proxy", hostport, "-connect", f"{host}:443", "-servername", host,
                "-showcerts", input="", timeout=60).stdout
    pems = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", out, re.S)
    return [x509.load_pem_x509_certificate(p.encode()) for p in pems]


def journal(ns: str, admin: str) -> list[dict]:
    out = in_ns(ns, sys.executable, "-c", f"import urllib.request,sys;sys.stdout.write(urllib.request.urlopen("
                f"{admin + '/journal'!r}).read().decode())").stdout
    data = json.loads(out)
    return data["records"] if isinstance(data, dict) else data


def test_live_upstream_forges_under_inspection_and_passes_the_real_chain_through(standin, tmp_path):
    ns, state = standin["ns"], tmp_path / "lab"
    up = harness(ns, "up", "--detach", "--state-dir", str(state), "--lanes", "1",
                 "--policies", "inspect,exception-wildcard", "--upstream", "live",
                 "--upstream-trust", str(standin["ca"]))
    assert up.returncode == 0, up.stderr + up.stdout
    try:
        assert "upstream          LIVE" in up.stdout
        info = json.loads((state / "lab.json").read_text())
        assert info["evidence"]["upstream"] == "live"
        inspect, exception = info["proxies"]["inspect"][0], info["proxies"]["exception-wildcard"][0]
        org_ca = info["pki"]["org_ca"]

        # Inspection: the client is shown a leaf forged by the org CA, and a request reaches the stand-in.
        forged = peer_chain(ns, inspect, "api.screenmeet.com")
        org = x509.load_pem_x509_certificate(Path(org_ca).read_bytes())
        assert forged and forged[0].issuer == org.subject
        curl = in_ns(ns, "curl", "-sS", "--proxy", inspect, "--cacert", info["pki"]["trust_public_org"],
                     "-X", "POST", "-H", "Content-Type: application/json", "-d", '{"code": "123456"}',
                     "https://api.screenmeet.com/api/v1/sessions/join")
        assert curl.returncode == 0, curl.stderr
        # Pass-through: the client meets the stand-in's own certificate, chained to the stand-in CA.
        real = peer_chain(ns, exception, "api.screenmeet.com")
        assert real and real[0] == standin["leaf"]
        assert real[0].issuer == x509.load_pem_x509_certificate(standin["ca"].read_bytes()).subject

        # Ground truth: the proxy journal says inspected (forged by the org CA) and passed through ...
        records = journal(ns, info["proxy_admin"])
        actions = {(r["policy"], r["action"]) for r in records}
        assert ("inspect", "intercepted") in actions and ("exception-wildcard", "passed-through") in actions
        assert any(r["policy"] == "inspect" and r.get("forged_issuer", "").endswith(info["org_issuer_cn"])
                   for r in records)
        assert any(q["path"] == "/api/v1/sessions/join" for r in records for q in r.get("requests", []))
        # ... and the stand-in, not the lab's mock, received the decrypted request.
        served = journal(ns, standin["admin"])
        assert any(r.get("path") == "/api/v1/sessions/join" for r in served)
    finally:
        down = harness(ns, "down", "--state-dir", str(state))
        assert down.returncode == 0, down.stderr


def test_live_upstream_refuses_a_server_outside_the_upstream_trust(standin, tmp_path):
    """The same stand-in, with the system store as the upstream trust: the proxy refuses it (502),
    as a real corporate proxy refuses an unknown root."""
    ns, state = standin["ns"], tmp_path / "lab"
    up = harness(ns, "up", "--detach", "--state-dir", str(state), "--lanes", "1", "--policies", "inspect",
                 "--upstream", "live")
    assert up.returncode == 0, up.stderr + up.stdout
    try:
        info = json.loads((state / "lab.json").read_text())
        assert info["evidence"]["upstream_trust"] == urllib.request.ssl.get_default_verify_paths().cafile
        curl = in_ns(ns, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--proxy",
                     info["proxies"]["inspect"][0], "--cacert", info["pki"]["trust_public_org"],
                     "https://api.screenmeet.com/")
        assert curl.stdout == "502", curl.stdout + curl.stderr
        assert journal(ns, standin["admin"]) == []  # nothing reached the untrusted server's application
    finally:
        harness(ns, "down", "--state-dir", str(state))
