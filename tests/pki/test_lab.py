"""Tests for harness.pki.lab: the lab PKI (LabPKI generate/load, files, modes, pins, mitmproxy's confdir)
and the vendor profiles' CA shapes (vendor_cas); real TLS handshakes in memory."""

from __future__ import annotations

import ssl
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from harness.errors import BadFileError, EnvironmentProblem
from harness.model.pins import load_pins, spki_sha256
from harness.model.vendors import load_vendors
from harness.pki.ca import (
    CA,
    Blob,
    key_pem,
    load_certificate,
    load_certificates,
    load_private_key,
)
from harness.pki.constraints import lab_name_constraints
from harness.pki.lab import LabPKI, vendor_cas
from harness.pki.shapes import dn_mailboxes
from tests.model.vendorhelpers import GOOD, write
from tests.tlshelpers import client_ctx, handshake, leaf_server_ctx, server_ctx

YEAR = timedelta(days=365)

VENDORS = load_vendors()


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> LabPKI:
    return LabPKI.generate(tmp_path_factory.mktemp("state"))


def test_server_handshake_with_public_trust(lab):
    conn = handshake(server_ctx(lab.server_chain, lab.server_key), client_ctx(lab.trust_public),
                     "api.screenmeet.com")
    assert ("DNS", "*.screenmeet.com") in conn.getpeercert()["subjectAltName"]


@pytest.mark.parametrize("host",
                         ["screenmeet.com", "beam.screenmeet.com", "scrn.mt", "x.scrn.mt"])
def test_server_serves_all_screenmeet_names(lab, host):
    handshake(server_ctx(lab.server_chain, lab.server_key), client_ctx(lab.trust_public_org), host)


@pytest.mark.parametrize("host",
                         ["api.example.com", "a.b.screenmeet.com", "screenmeet.com.evil.test"])
def test_server_handshake_wrong_hostname_fails(lab, host):
    with pytest.raises(ssl.SSLCertVerificationError, match="[Hh]ostname mismatch"):
        handshake(server_ctx(lab.server_chain, lab.server_key), client_ctx(lab.trust_public), host)


@pytest.mark.parametrize("trust", ["org_ca", "untrusted_ca"])
def test_server_handshake_wrong_ca_fails(lab, trust):
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        handshake(server_ctx(lab.server_chain, lab.server_key),
                  client_ctx(getattr(lab, trust)), "api.screenmeet.com")


def test_server_chain_is_leaf_then_intermediate(lab):
    leaf, inter = load_certificates(lab.server_chain)
    assert inter.subject == load_certificate(lab.public_intermediate).subject
    assert leaf.issuer == inter.subject
    root = load_certificate(lab.trust_public)
    assert inter.issuer == root.subject and root.issuer == root.subject


def test_trust_bundles(lab):
    cn = lambda c: c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value  # noqa: E731
    assert [cn(c) for c in load_certificates(lab.trust_public)] == ["Lab Public Root CA"]
    assert [cn(c) for c in load_certificates(lab.trust_public_org)] == [
        "Lab Public Root CA", "Acme Corp TLS Inspection Root CA"]
    assert lab.org_issuer_cn == "Acme Corp TLS Inspection Root CA"


def test_forged_cert_trusted_only_with_org_bundle(lab):
    org = CA.load(lab.org_ca, lab.org_ca_key)
    forged = org.issue_cert("api.screenmeet.com")
    handshake(leaf_server_ctx(forged), client_ctx(lab.trust_public_org), "api.screenmeet.com")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(leaf_server_ctx(forged), client_ctx(lab.trust_public), "api.screenmeet.com")


def test_file_modes(lab):
    pki_dir = lab.public_root.parent
    assert stat.S_IMODE(pki_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(lab.mitmproxy_confdir.stat().st_mode) == 0o700
    keys = sorted(pki_dir.glob("*.key"))
    assert len(keys) == 7  # incl. org-sub-ca.key (forged incomplete chains)
    for p in [*keys, lab.mitmproxy_confdir / "mitmproxy-ca.pem"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    for p in pki_dir.glob("*.pem"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    assert not list(pki_dir.rglob("*.tmp"))


def test_pins_file(lab):
    pins = [line for line in lab.pins_file.read_text().splitlines() if not line.startswith("#")]
    assert len(pins) == 2 and len(load_pins(lab.pins_file)) == 2
    assert pins[0] == spki_sha256(load_certificate(lab.server_chain))
    assert pins[1] == spki_sha256(load_private_key(lab.server_backup_key))
    assert pins[0] != pins[1]
    # The inspection CA's key (which mitmproxy puts in every forged leaf) is not pinned.
    assert spki_sha256(load_certificate(lab.org_ca)) not in pins


def test_mitmproxy_loads_confdir_and_forges_for_lab_names_only(lab):
    from mitmproxy.certs import CertStore

    store = CertStore.from_store(lab.mitmproxy_confdir, "mitmproxy", 2048)
    assert store.default_ca.cn == lab.org_issuer_cn

    def forged_ctx(host):
        entry = store.get_cert(host, [x509.DNSName(host)])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*_write_entry(lab.state_dir, entry))
        return ctx

    conn = handshake(forged_ctx("api.screenmeet.com"), client_ctx(lab.trust_public_org),
                     "api.screenmeet.com")
    assert dict(x[0] for x in conn.getpeercert()["issuer"])["commonName"] == lab.org_issuer_cn
    # Name constraints: the org CA cannot be abused for names outside the lab.
    with pytest.raises(ssl.SSLCertVerificationError, match="name constraint|permitted"):
        handshake(forged_ctx("www.example.com"), client_ctx(lab.trust_public_org),
                  "www.example.com")


def _write_entry(tmp: Path, entry) -> tuple[str, str]:
    chain = Blob(entry.cert.to_pem() + b"".join(c.to_pem() for c in entry.chain_certs))
    key = load_private_key(LabPKI.at(tmp).org_ca_key)  # mitmproxy forges with the CA's key
    return (str(chain.write_to_path(tmp / "forged.pem")),
            str(key_pem(key).write_to_path(tmp / "forged.key", private=True)))


def test_load_roundtrip(lab):
    assert LabPKI.load(lab.state_dir) == lab
    assert set(lab.describe()) >= {"server_chain", "org_ca", "mitmproxy_confdir", "pins_file"}
    assert lab.describe()["pins_file"] == str(lab.pins_file)


def test_generate_options(tmp_path):
    pki = LabPKI.generate(tmp_path, org_common_name="Zscaler Intermediate Root CA",
                          org_organization="Zscaler Inc.", name_constraints=False)
    assert pki.org_issuer_cn == "Zscaler Intermediate Root CA"
    org = load_certificate(pki.org_ca)
    with pytest.raises(x509.ExtensionNotFound):
        org.extensions.get_extension_for_class(x509.NameConstraints)
    # The public root stays constrained whatever the org CA's shape.
    load_certificate(pki.public_root).extensions.get_extension_for_class(x509.NameConstraints)


def test_generate_replaces_previous_keys(tmp_path):
    first = LabPKI.generate(tmp_path).pins_file.read_text()
    assert LabPKI.generate(tmp_path).pins_file.read_text() != first


def test_load_empty_dir_fails_with_one_sentence(tmp_path):
    with pytest.raises(BadFileError) as e:
        LabPKI.load(tmp_path)
    assert "harness pki" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "pki").mkdir()
    with pytest.raises(BadFileError, match="does not exist; run 'harness pki'"):
        LabPKI.load(tmp_path)


@pytest.mark.parametrize("name", ["server.pem", "org-ca.key", "trust-public.pem", "pins.txt",
                                  "mitmproxy/mitmproxy-ca.pem"])
def test_load_corrupt_or_missing_file_fails(tmp_path, name):
    pki = LabPKI.generate(tmp_path)
    path = pki.public_root.parent / name
    path.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    with pytest.raises(BadFileError, match="harness pki") as e:
        LabPKI.load(tmp_path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    path.unlink()
    with pytest.raises(BadFileError, match="does not exist|run 'harness pki'"):
        LabPKI.load(tmp_path)


def test_load_key_not_matching_cert_fails(tmp_path):
    pki = LabPKI.generate(tmp_path)
    pki.org_ca_key.write_bytes(pki.untrusted_ca_key.read_bytes())
    with pytest.raises(BadFileError, match="does not belong to certificate"):
        LabPKI.load(tmp_path)


def test_generate_unwritable_state_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(EnvironmentProblem, match="writable state directory"):
        LabPKI.generate(blocker)


def _cn(name: x509.Name) -> str:
    return name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_build_cas_intermediate_shape():
    root, signer, untrusted = vendor_cas(VENDORS["zscaler"])
    assert _cn(root.cert.subject) == "Zscaler Root CA" and root.cert.subject == root.cert.issuer
    assert _cn(signer.cert.subject) == "Zscaler Intermediate Root CA (zscalerthree.net) (t) "
    # Two intermediates, as the captures show: root -> (zscalerthree.net) -> (zscalerthree.net) (t).
    middle = signer.parent
    assert _cn(middle.cert.subject) == "Zscaler Intermediate Root CA (zscalerthree.net)" and middle.parent is root
    signer.cert.verify_directly_issued_by(middle.cert)
    middle.cert.verify_directly_issued_by(root.cert)
    assert isinstance(root.private_key, rsa.RSAPrivateKey) and root.private_key.key_size == 2048
    path_len = [c.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
                for c in (root, middle, signer)]
    assert path_len == [None, 1, 0]
    # Name-constrained to the lab's domains, as every lab CA (DESIGN.md section 7).
    assert signer.cert.extensions.get_extension_for_class(x509.NameConstraints).critical
    assert _cn(untrusted.cert.subject) == "Acme Corp Untrusted Issuer CA"


def test_build_cas_root_shape_and_untrusted_name():
    root, signer, untrusted = vendor_cas(VENDORS["fortinet"], name_constraints=False)
    assert root is signer and _cn(root.cert.subject) == "FG100FTK20000001"
    assert _cn(untrusted.cert.subject) == "Fortinet_CA_Untrusted" and untrusted.cert.subject == untrusted.cert.issuer
    with pytest.raises(x509.ExtensionNotFound):
        root.cert.extensions.get_extension_for_class(x509.NameConstraints)


def test_build_cas_key_type_follows_the_profile(tmp_path):
    v = load_vendors(write(tmp_path, GOOD))["acme"]
    root, _, _ = vendor_cas(v)
    assert isinstance(root.private_key, ec.EllipticCurvePrivateKey) and root.private_key.curve.key_size == 256


def _is_ca(cert: x509.Certificate) -> bool:
    return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def _all_certificates(pki: LabPKI) -> dict[bytes, x509.Certificate]:
    certs = {}
    for path in pki.public_root.parent.rglob("*.pem"):
        for cert in load_certificates(path):
            certs[cert.fingerprint(cert.signature_hash_algorithm)] = cert
    return certs


def test_every_lab_ca_is_constrained_and_lives_years(pki):
    cas = [c for c in _all_certificates(pki).values() if _is_ca(c)]
    assert len(cas) == 5  # public root + intermediate, org root + issuing CA, untrusted CA
    for cert in cas:
        assert cert.extensions.get_extension_for_class(x509.NameConstraints).value == lab_name_constraints()
        root = cert.issuer == cert.subject
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert (9 * YEAR < lifetime <= 11 * YEAR) if root else (4 * YEAR < lifetime <= 6 * YEAR), cert.subject


def test_no_certificate_outlives_its_issuer(pki):
    certs = list(_all_certificates(pki).values())
    by_subject = {c.subject: c for c in certs if _is_ca(c)}
    checked = 0
    for cert in certs:
        issuer = by_subject.get(cert.issuer)
        if issuer is not None and issuer is not cert:
            assert cert.not_valid_after_utc <= issuer.not_valid_after_utc, cert.subject
            checked += 1
    assert checked >= 5  # the server, the hostile sites, the intermediates


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_vendor_cas_are_constrained_and_outlive_their_leaves(name):
    root, signer, untrusted = vendor_cas(VENDORS[name])
    # Only the mailboxes the vendor's own CA names carry are permitted (Zscaler's, Fortinet's).
    constraints = lab_name_constraints(mailboxes=dn_mailboxes(VENDORS[name].ca_names()))
    for ca in {id(c): c for c in (*signer.chain, untrusted)}.values():
        assert ca.cert.extensions.get_extension_for_class(x509.NameConstraints).value == constraints
        if ca.parent is not None:  # an intermediate ends with its parent or before
            assert ca.cert.not_valid_after_utc <= ca.parent.cert.not_valid_after_utc
    assert root.cert.not_valid_after_utc - root.cert.not_valid_before_utc > 9 * YEAR
    # A vendor's longest leaf validity (up to ten years in a profile) is cut at the signer's end.
    leaf = signer.issue_cert("api.screenmeet.com", not_after=signer.cert.not_valid_after_utc + 5 * YEAR)
    assert leaf.cert.not_valid_after_utc == signer.cert.not_valid_after_utc <= root.cert.not_valid_after_utc


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> LabPKI:
    return LabPKI.generate(tmp_path_factory.mktemp("state"), hostile_sites=("expired", "incomplete-chain"))
