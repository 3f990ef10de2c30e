"""Tests for harness.pki.export: the org CA in every install format, parsed back with
`cryptography` and plistlib (and openssl, a real reader), never a private key; the vendor
lab's root; and mitmproxy's onboarding page (http://mitm.it) through the real lab proxy with curl."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
import urllib.parse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12

from harness.model.vendors import get_vendor
from harness.pki.ca import load_certificate, load_certificates
from harness.pki.export import export_ca, install_guide, onboarding_files
from harness.pki.lab import LabPKI

FILES = {"org-ca.pem", "org-ca.cer", "org-ca.crt", "org-ca.p12", "org-ca.mobileconfig", "INSTALL.md"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> LabPKI:
    return LabPKI.generate(tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="module")
def vendor_lab(tmp_path_factory) -> LabPKI:
    # An intermediate-chain product: clients trust its root, the proxy signs with its intermediate.
    return LabPKI.generate(tmp_path_factory.mktemp("vendor"), vendor=get_vendor("zscaler"))


def parsed(directory, password: bytes | None = None) -> dict[str, x509.Certificate]:
    """Every exported certificate file read back as its format says, asserting no key anywhere."""
    d = directory
    assert {p.name for p in d.iterdir()} == FILES
    for path in d.iterdir():
        assert b"PRIVATE KEY" not in path.read_bytes(), path
    bag = pkcs12.load_pkcs12((d / "org-ca.p12").read_bytes(), password)
    assert bag.key is None and bag.cert is None  # no key, so the certificate is a plain CA bag
    (p12_cert,) = bag.additional_certs
    profile = plistlib.loads((d / "org-ca.mobileconfig").read_bytes())
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    (payload,) = profile["PayloadContent"]
    assert payload["PayloadType"] == "com.apple.security.root"
    assert not any("Password" in key for key in payload)
    return {
        "pem": x509.load_pem_x509_certificate((d / "org-ca.pem").read_bytes()),
        "cer": x509.load_der_x509_certificate((d / "org-ca.cer").read_bytes()),
        "crt": x509.load_der_x509_certificate((d / "org-ca.crt").read_bytes()),
        "p12": p12_cert.certificate,
        "mobileconfig": x509.load_der_x509_certificate(payload["PayloadContent"]),
    }


def test_every_format_is_the_org_ca_and_no_key(lab, tmp_path):
    org = load_certificate(lab.org_ca)
    export_ca(org, tmp_path)
    certs = parsed(tmp_path)
    assert all(cert == org for cert in certs.values()), [k for k, c in certs.items() if c != org]
    # The other lab CAs are not what was exported (the test could tell them apart).
    assert load_certificate(lab.public_root) != org
    assert all((tmp_path / name).stat().st_mode & 0o777 == 0o644 for name in FILES)


def test_p12_with_a_password_needs_it(lab, tmp_path):
    org = load_certificate(lab.org_ca)
    export_ca(org, tmp_path, password=b"s3cret")
    assert parsed(tmp_path, b"s3cret")["p12"] == org
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12((tmp_path / "org-ca.p12").read_bytes(), b"wrong")
    assert "the password given" in (tmp_path / "INSTALL.md").read_text()


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is not installed")
def test_openssl_reads_the_p12_and_der(lab, tmp_path):
    """A reader other than cryptography: what devices' tools get."""
    org = load_certificate(lab.org_ca)
    export_ca(org, tmp_path, password=b"pw")
    out = subprocess.run(["openssl", "pkcs12", "-in", str(tmp_path / "org-ca.p12"), "-nokeys", "-passin", "pass:pw"],
                         capture_output=True, check=True, timeout=60).stdout
    assert x509.load_pem_x509_certificates(out) == [org]
    der = subprocess.run(["openssl", "x509", "-inform", "der", "-in", str(tmp_path / "org-ca.cer")],
                         capture_output=True, check=True, timeout=60).stdout
    assert x509.load_pem_x509_certificate(der) == org


def test_vendor_lab_exports_the_root_clients_trust(vendor_lab, tmp_path):
    root = load_certificate(vendor_lab.org_ca)
    signer = load_certificates(vendor_lab.mitmproxy_confdir / "mitmproxy-ca.pem")[0]
    # The vendor signs with an intermediate (Zscaler: two below the root); clients trust the self-signed root.
    assert signer != root and signer.issuer != signer.subject and root.issuer == root.subject
    export_ca(root, tmp_path)
    assert all(cert == root for cert in parsed(tmp_path).values())
    assert all(cert == root for cert in _onboarding(vendor_lab).values())


def test_profile_is_stable_for_the_same_ca(lab, tmp_path):
    org = load_certificate(lab.org_ca)
    export_ca(org, tmp_path / "a")
    export_ca(org, tmp_path / "b")
    assert (tmp_path / "a" / "org-ca.mobileconfig").read_bytes() == (tmp_path / "b" / "org-ca.mobileconfig").read_bytes()


def test_install_guide_has_the_commands_per_os(lab):
    org = load_certificate(lab.org_ca)
    guide = install_guide(org)
    for needle in ("certutil -addstore -f Root org-ca.cer",
                   "security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain org-ca.pem",
                   "update-ca-certificates", "/usr/local/share/ca-certificates/acme-corp-tls-inspection-root-ca.crt",
                   "## Android (user CA)", "adb push org-ca.crt", "## Firefox", "certutil -A -d sql:PROFILE",
                   "Acme Corp TLS Inspection Root CA", "no password"):
        assert needle in guide, needle
    fingerprint = org.fingerprint(hashes.SHA256())
    assert fingerprint.hex(":").upper() in guide


def _onboarding(pki: LabPKI) -> dict[str, x509.Certificate]:
    d = pki.mitmproxy_confdir
    assert set(onboarding_files(load_certificate(pki.org_ca))) <= {p.name for p in d.iterdir()}
    bag = pkcs12.load_pkcs12((d / "mitmproxy-ca-cert.p12").read_bytes(), None)
    assert bag.key is None
    return {"pem": x509.load_pem_x509_certificate((d / "mitmproxy-ca-cert.pem").read_bytes()),
            "cer": load_certificate(d / "mitmproxy-ca-cert.cer"),
            "p12": bag.additional_certs[0].certificate}


def test_lab_confdir_holds_the_onboarding_files(lab):
    org = load_certificate(lab.org_ca)
    assert all(cert == org for cert in _onboarding(lab).values())
    for name in ("mitmproxy-ca-cert.pem", "mitmproxy-ca-cert.cer", "mitmproxy-ca-cert.p12"):
        data = (lab.mitmproxy_confdir / name).read_bytes()
        assert b"PRIVATE KEY" not in data and (lab.mitmproxy_confdir / name).stat().st_mode & 0o777 == 0o644


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
@pytest.mark.parametrize("policy", ["inspect", "exception-wildcard"])
def test_mitm_it_serves_the_org_ca_through_the_proxy(tls_lab, lab_journal, tmp_path, policy):
    """mitmproxy's onboarding page, fetched with curl through the lab's real proxy (no DNS: the
    proxy answers http://mitm.it itself), hands out the org CA in each format."""
    org = load_certificate(tls_lab.pki["org_ca"])
    proxy = tls_lab.proxy_url(policy)
    got = {}
    for ext in ("pem", "cer", "p12"):
        out = tmp_path / f"{policy}.{ext}"
        proc = subprocess.run(["curl", "-sS", "--noproxy", "", "-x", proxy, "-o", str(out), "-w", "%{http_code} %{content_type}",
                               f"http://mitm.it/cert/{ext}"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        status, content_type = proc.stdout.split(" ", 1)
        assert status == "200", (ext, proc.stdout)
        assert content_type == ("application/x-pkcs12" if ext == "p12" else "application/x-x509-ca-cert")
        got[ext] = out.read_bytes()
    assert x509.load_pem_x509_certificate(got["pem"]) == org
    assert x509.load_pem_x509_certificate(got["cer"]) == org
    assert pkcs12.load_pkcs12(got["p12"], None).additional_certs[0].certificate == org
    # Ground truth: the proxy journal shows the three requests on this policy's listener, and
    # the mock server saw none of them (mitmproxy answered them itself).
    port = urllib.parse.urlsplit(proxy).port
    paths = [r["path"] for rec in lab_journal.proxy_records() if rec.get("listener") == port
             for r in rec["requests"] if r["host"] == "mitm.it"]
    assert sorted(paths) == ["/cert/cer", "/cert/p12", "/cert/pem"]
    assert not [r for r in lab_journal.server_records() if "mitm.it" in str(r.get("host"))]
