"""'harness pki' (harness.cli.pki): generating the lab PKI and checking the one in the state directory."""

from __future__ import annotations

import os

import pytest

from tests.clihelpers import assert_one_sentence_error, harness


@pytest.mark.parametrize("damage,says", [
    ("key-is-a-cert", "holds no private key (a certificate without its key?)"),
    ("ca-without-key", "holds no private key (a certificate without its key?)"),
    ("corrupt-cert", "holds no valid PEM certificate"),
    ("missing-pins", "pins file"),
    ("other-key", "does not belong to certificate"),
])
def test_pki_check_names_the_broken_file(tmp_path, damage, says):
    assert harness("pki", "--state-dir", str(tmp_path)).returncode == 0
    ok = harness("pki", "--check", "--state-dir", str(tmp_path))
    assert ok.returncode == 0 and "is complete" in ok.stdout
    pki = tmp_path / "pki"
    if damage == "key-is-a-cert":
        (pki / "org-ca.key").write_bytes((pki / "org-ca.pem").read_bytes())
    elif damage == "ca-without-key":
        (pki / "mitmproxy" / "mitmproxy-ca.pem").write_bytes((pki / "org-ca.pem").read_bytes())
    elif damage == "corrupt-cert":
        (pki / "public-root.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    elif damage == "missing-pins":
        (pki / "pins.txt").unlink()
    else:
        (pki / "server.key").write_bytes((pki / "server-backup.key").read_bytes())
    proc = harness("pki", "--check", "--state-dir", str(tmp_path))
    assert_one_sentence_error(proc, 2)
    assert says in proc.stderr and "harness pki" in proc.stderr


def test_pki_check_without_a_pki(tmp_path):
    proc = harness("pki", "--check", "--state-dir", str(tmp_path))
    assert_one_sentence_error(proc, 2)
    assert "there is no lab PKI" in proc.stderr


# -- harness pki export DIR (issue 14) -------------------------------------------------------

def test_pki_export_writes_every_format(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

    state = tmp_path / "state"
    assert harness("pki", "--state-dir", str(state)).returncode == 0
    proc = harness("pki", "export", str(tmp_path / "out"), "--state-dir", str(state),
                   env={**os.environ, "HARNESS_P12_PASSWORD": "from-env"})
    assert proc.returncode == 0, proc.stderr
    org = x509.load_pem_x509_certificate((state / "pki" / "org-ca.pem").read_bytes())
    assert "no private key" in proc.stdout and str(tmp_path / "out" / "INSTALL.md") in proc.stdout
    assert pkcs12.load_pkcs12((tmp_path / "out" / "org-ca.p12").read_bytes(), b"from-env").additional_certs[0].certificate == org
    # --p12-password wins over the environment.
    proc = harness("pki", "export", str(tmp_path / "out2"), "--state-dir", str(state), "--p12-password", "flag",
                   env={**os.environ, "HARNESS_P12_PASSWORD": "from-env"})
    assert proc.returncode == 0, proc.stderr
    assert pkcs12.load_pkcs12((tmp_path / "out2" / "org-ca.p12").read_bytes(), b"flag").additional_certs[0].certificate == org


def test_pki_export_bad_input(tmp_path):
    proc = harness("pki", "export", str(tmp_path / "out"), "--state-dir", str(tmp_path / "none"))
    assert_one_sentence_error(proc, 2)
    assert "there is no lab PKI" in proc.stderr and not (tmp_path / "out").exists()
    assert harness("pki", "--state-dir", str(tmp_path / "s")).returncode == 0
    (tmp_path / "file").write_text("x")
    proc = harness("pki", "export", str(tmp_path / "file"), "--state-dir", str(tmp_path / "s"))
    assert_one_sentence_error(proc, 2)
    assert "is not a directory" in proc.stderr
    (tmp_path / "s" / "pki" / "org-ca.pem").write_text("garbage")
    proc = harness("pki", "export", str(tmp_path / "out"), "--state-dir", str(tmp_path / "s"))
    assert_one_sentence_error(proc, 2)
    assert "org-ca.pem" in proc.stderr
    assert_one_sentence_error(harness("pki", "export"), 2)


def test_pki_export_of_a_vendor_lab_from_the_default_state_dir(tmp_path):
    """The default state directory ($HARNESS_STATE_DIR, else .lab) and a vendor lab, whose clients
    trust its root while the proxy signs with the vendor's intermediate: the root is exported."""
    from cryptography import x509

    env = {**os.environ, "HARNESS_STATE_DIR": str(tmp_path / "state")}
    assert harness("pki", "--vendor", "zscaler", env=env).returncode == 0
    proc = harness("pki", "export", str(tmp_path / "out"), env=env)
    assert proc.returncode == 0, proc.stderr
    pki = tmp_path / "state" / "pki"
    root = x509.load_pem_x509_certificate((pki / "org-ca.pem").read_bytes())
    signer = x509.load_pem_x509_certificates((pki / "mitmproxy" / "mitmproxy-ca.pem").read_bytes())[0]
    exported = x509.load_der_x509_certificate((tmp_path / "out" / "org-ca.cer").read_bytes())
    assert exported == root and exported != signer and root.issuer == root.subject  # the self-signed root


def test_pki_issues_the_hostile_sites_and_unconstrained_cas_compose_asks_for(tmp_path):
    """compose.yaml's pki service: --sites and --name-constraints off (issue 16)."""
    from cryptography import x509

    proc = harness("pki", "--state-dir", str(tmp_path), "--sites", "expired,rsa-1024", "--name-constraints", "off")
    assert proc.returncode == 0, proc.stderr
    sites = tmp_path / "pki" / "sites"
    assert sorted(p.name for p in sites.iterdir()) == ["expired.key", "expired.pem", "rsa-1024.key", "rsa-1024.pem"]
    org = x509.load_pem_x509_certificate((tmp_path / "pki" / "org-ca.pem").read_bytes())
    assert x509.NameConstraints not in [e.value.__class__ for e in org.extensions]
    # Negative: the default constrains the org CA and issues no site.
    proc = harness("pki", "--state-dir", str(tmp_path / "d"), "--sites", "")
    assert proc.returncode == 0 and not (tmp_path / "d" / "pki" / "sites").exists()
    org = x509.load_pem_x509_certificate((tmp_path / "d" / "pki" / "org-ca.pem").read_bytes())
    assert org.extensions.get_extension_for_class(x509.NameConstraints)


def test_pki_unknown_site_is_one_sentence(tmp_path):
    proc = harness("pki", "--state-dir", str(tmp_path), "--sites", "expird")
    assert_one_sentence_error(proc, 2)
    assert "unknown hostile certificate case 'expird'" in proc.stderr
