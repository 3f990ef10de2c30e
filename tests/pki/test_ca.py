"""Tests for harness.pki.ca: real TLS handshakes in memory (ssl.MemoryBIO), each
positive case next to the negatives that must fail."""

from __future__ import annotations

import ssl
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from harness.errors import BadFileError, EnvironmentProblem, UsageError
from harness.model.pins import load_pins, spki_sha256
from harness.pki.ca import (
    CA,
    Blob,
    key_pem,
    load_certificate,
    load_certificates,
    load_private_key,
)
from harness.pki.constraints import LAB_NETWORKS
from harness.pki.lab import LabPKI
from tests.tlshelpers import handshake


def client_ctx(cafile=None, ca: CA | None = None, seclevel: int | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if ca is not None:
        ca.configure_trust(ctx)
    if seclevel is not None:
        ctx.set_ciphers(f"DEFAULT:@SECLEVEL={seclevel}")
    # Python 3.13 turns strict checking on by default: the lab's certs must pass it.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def server_ctx(chain, key) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(chain), str(key))
    return ctx


def leaf_server_ctx(leaf, seclevel: int | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if seclevel is not None:  # a hostile server loads weak certs; OpenSSL's default refuses
        ctx.set_ciphers(f"DEFAULT:@SECLEVEL={seclevel}")
    leaf.configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> LabPKI:
    return LabPKI.generate(tmp_path_factory.mktemp("state"))


# --- the lab PKI ---------------------------------------------------------------


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


# --- loaders --------------------------------------------------------------------


def test_load_certificate_ok_and_corrupt(tmp_path):
    ca = CA()
    good = ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    assert load_certificate(good) == ca.cert
    der = tmp_path / "ca.cer"
    der.write_bytes(ca.cert.public_bytes(serialization.Encoding.DER))
    assert load_certificate(der) == ca.cert
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"hello")
    with pytest.raises(BadFileError, match="no valid PEM certificate"):
        load_certificate(bad)
    with pytest.raises(BadFileError, match="does not exist"):
        load_certificates(tmp_path / "missing.pem")


def test_load_private_key_ok_and_bad(tmp_path):
    ca = CA(key_type="ec")
    key = load_private_key(ca.private_key_pem.write_to_path(tmp_path / "k.key", private=True))
    assert spki_sha256(key) == spki_sha256(ca.cert)
    with pytest.raises(BadFileError, match="holds no private key"):
        load_private_key(ca.cert_pem.write_to_path(tmp_path / "ca.pem"))
    # A PEM frame around garbage; the marker is assembled so no key-shaped text is committed.
    marker = "PRIVATE" + " KEY-----"
    (tmp_path / "corrupt.key").write_text(f"-----BEGIN {marker}\nAAAA\n-----END {marker}\n")
    with pytest.raises(BadFileError, match="is corrupt"):
        load_private_key(tmp_path / "corrupt.key")


def test_ca_load_without_key_is_clear(tmp_path):
    ca = CA(key_type="ec")
    cert = ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    with pytest.raises(BadFileError, match="without its key"):
        CA.load(cert)
    both = ca.mitmproxy_pem().write_to_path(tmp_path / "both.pem", private=True)
    loaded = CA.load(both)
    assert loaded.cert == ca.cert and loaded.chain == [loaded]
    leaf = loaded.issue_cert("api.lab.test")
    handshake(leaf_server_ctx(leaf), client_ctx(ca=ca), "api.lab.test")
    with pytest.raises(BadFileError, match="does not belong"):
        CA.load(cert, CA(key_type="ec").private_key_pem.write_to_path(tmp_path / "other.key"))


# --- CA and LeafCert ------------------------------------------------------------


def test_name_constraints_reject_outside_names():
    ca = CA(key_type="ec")
    nc = ca.cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical
    assert [n.value for n in nc.value.permitted_subtrees if isinstance(n, x509.IPAddress)] == list(
        LAB_NETWORKS)
    with pytest.raises(ssl.SSLCertVerificationError, match="name constraint|permitted"):
        handshake(leaf_server_ctx(ca.issue_cert("evil.example")), client_ctx(ca=ca), "evil.example")
    handshake(leaf_server_ctx(ca.issue_cert("api.lab.test")), client_ctx(ca=ca), "api.lab.test")


def test_name_constraints_off_allows_any_name():
    ca = CA(key_type="ec", name_constraints=False)
    handshake(leaf_server_ctx(ca.issue_cert("evil.example")), client_ctx(ca=ca), "evil.example")


def test_name_constraints_ip_addresses():
    ca = CA(key_type="ec")
    ip_leaf = ca.issue_cert("127.0.0.1")
    # No CN: OpenSSL would check an IP-looking CN against the DNS constraints.
    assert ip_leaf.cert.subject == x509.Name([])
    assert ip_leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    handshake(leaf_server_ctx(ip_leaf), client_ctx(ca=ca), "127.0.0.1")
    handshake(leaf_server_ctx(ca.issue_cert("::1")), client_ctx(ca=ca), "::1")
    with pytest.raises(ssl.SSLCertVerificationError, match="name constraint|permitted"):
        handshake(leaf_server_ctx(ca.issue_cert("8.8.8.8")), client_ctx(ca=ca), "8.8.8.8")


def test_name_constraints_inherited_by_unconstrained_child():
    root = CA(key_type="ec")
    child = root.create_child_ca(key_type="ec", name_constraints=False, common_name="child")
    ok = child.issue_cert("screenmeet.com")
    handshake(leaf_server_ctx(ok), client_ctx(ca=root), "screenmeet.com")
    bad = child.issue_cert("evil.example")
    with pytest.raises(ssl.SSLCertVerificationError, match="name constraint|permitted"):
        handshake(leaf_server_ctx(bad), client_ctx(ca=root), "evil.example")


def test_expired_cert_fails():
    ca = CA(key_type="ec")
    past = datetime.now(timezone.utc) - timedelta(days=1)
    expired = ca.issue_cert("screenmeet.com", not_before=past - timedelta(days=10), not_after=past)
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        handshake(leaf_server_ctx(expired), client_ctx(ca=ca), "screenmeet.com")
    fresh = ca.issue_cert("screenmeet.com")
    assert fresh.cert.not_valid_after_utc > datetime.now(timezone.utc) + timedelta(days=29)
    handshake(leaf_server_ctx(fresh), client_ctx(ca=ca), "screenmeet.com")


@pytest.mark.parametrize("key_type", ["rsa", "ec"])
def test_sha1_variant(key_type):
    ca = CA(key_type=key_type, hash_algorithm="sha1")
    assert isinstance(ca.cert.signature_hash_algorithm, hashes.SHA1)
    leaf = ca.issue_cert("screenmeet.com", hash_algorithm="sha1")
    assert isinstance(leaf.cert.signature_hash_algorithm, hashes.SHA1)
    assert leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # A default client (security level 2) refuses the SHA-1 signature ...
    with pytest.raises(ssl.SSLCertVerificationError, match="too weak"):
        handshake(leaf_server_ctx(leaf, seclevel=0), client_ctx(ca=ca), "screenmeet.com")
    # ... and only that: a client that allows SHA-1 accepts the same well-formed cert,
    # and the default client accepts the SHA-256 sibling.
    handshake(leaf_server_ctx(leaf, seclevel=0), client_ctx(ca=ca, seclevel=0), "screenmeet.com")
    sha256 = ca.issue_cert("screenmeet.com")
    assert isinstance(sha256.cert.signature_hash_algorithm, hashes.SHA256)
    # (A trust anchor's own self-signature is not checked, SHA-1 or not.)
    handshake(leaf_server_ctx(sha256), client_ctx(ca=ca), "screenmeet.com")


def test_bad_variants_are_usage_errors():
    with pytest.raises(UsageError, match="choose one of: ec, rsa"):
        CA(key_type="dsa")
    with pytest.raises(UsageError, match="hash algorithm"):
        CA(key_type="ec", hash_algorithm="md5")
    with pytest.raises(UsageError, match="hostname"):
        CA(key_type="ec").issue_cert()


def test_rsa_1024_and_key_reuse():
    ca = CA(key_type="ec")
    weak = ca.issue_cert("screenmeet.com", key_type="rsa", key_size=1024)
    assert weak.cert.public_key().key_size == 1024
    again = ca.issue_cert("screenmeet.com", private_key=weak.private_key)
    assert again.spki_pin == weak.spki_pin != ca.issue_cert("screenmeet.com").spki_pin
    # Like mitmproxy: a leaf carrying the CA's own key.
    assert ca.issue_cert("x.lab.test", private_key=ca.private_key).spki_pin == spki_sha256(ca.cert)


def test_child_ca_chain_and_leaf_chain():
    root = CA(key_type="ec", common_name="root")
    inter = root.create_child_ca(key_type="ec", common_name="inter")
    assert inter.chain == [inter, root] and root.chain == [root]
    assert inter.cert.issuer == root.cert.subject
    leaf = inter.issue_cert("api.screenmeet.com")
    assert len(leaf.cert_chain_pems) == 2
    assert leaf.chain_pem().bytes() == leaf.cert_chain_pems[0].bytes() + inter.cert_pem.bytes()
    assert len(root.issue_cert("api.screenmeet.com").cert_chain_pems) == 1
    handshake(leaf_server_ctx(leaf), client_ctx(ca=root), "api.screenmeet.com")
    with pytest.raises(ssl.SSLCertVerificationError):  # trusting only an unrelated root
        handshake(leaf_server_ctx(leaf), client_ctx(ca=CA(key_type="ec", common_name="root")),
                  "api.screenmeet.com")


def test_mitmproxy_pem_layout():
    root = CA(key_type="ec", common_name="root")
    inter = root.create_child_ca(common_name="inter")
    pem = inter.mitmproxy_pem().bytes()
    assert pem.startswith(inter.private_key_pem.bytes())
    assert [c.subject for c in x509.load_pem_x509_certificates(pem)] == [
        inter.cert.subject, root.cert.subject]
    short = x509.load_pem_x509_certificates(inter.mitmproxy_pem(include_root=False).bytes())
    assert [c.subject for c in short] == [inter.cert.subject]
    assert len(x509.load_pem_x509_certificates(root.mitmproxy_pem().bytes())) == 1


def test_blob_write_modes_and_repr(tmp_path):
    blob = CA(key_type="ec").private_key_pem
    assert "PRIVATE" not in repr(blob) and "bytes" in repr(blob)
    key = blob.write_to_path(tmp_path / "k.key", private=True)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pub = Blob(b"x").write_to_path(tmp_path / "p.pem")
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644
    # Overwriting a world-readable file leaves a private one, atomically replaced.
    key.chmod(0o644)
    blob.write_to_path(key, private=True)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_bytes() == blob.bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key", "p.pem"]
    with pytest.raises(OSError):
        blob.write_to_path(tmp_path / "missing" / "k.key", private=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key", "p.pem"]


# --- lifetimes ------------------------------------------------------------------

YEAR = timedelta(days=365)


def _lifetime(cert: x509.Certificate) -> timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def test_roots_live_years_and_intermediates_shorter():
    root = CA(key_type="ec")
    inter = root.create_child_ca(key_type="ec", common_name="inter")
    assert 9 * YEAR < _lifetime(root.cert) <= 11 * YEAR
    assert 4 * YEAR < _lifetime(inter.cert) <= 6 * YEAR
    assert inter.cert.not_valid_after_utc < root.cert.not_valid_after_utc


def test_a_leaf_never_outlives_its_issuer():
    root = CA(key_type="ec")
    inter = root.create_child_ca(key_type="ec", common_name="inter")
    far = datetime.now(timezone.utc) + 30 * YEAR
    leaf = inter.issue_cert("api.screenmeet.com", not_after=far)
    assert leaf.cert.not_valid_after_utc == inter.cert.not_valid_after_utc
    # Nor does an intermediate outlive its root, asked or not.
    long_child = root.create_child_ca(key_type="ec", common_name="long", not_after=far)
    assert long_child.cert.not_valid_after_utc == root.cert.not_valid_after_utc
    # Within the issuer's life, what was asked is kept.
    soon = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=400)
    assert inter.issue_cert("api.screenmeet.com", not_after=soon).cert.not_valid_after_utc == soon
    assert timedelta(days=29) < _lifetime(inter.issue_cert("api.screenmeet.com").cert) <= timedelta(days=31)


def test_an_expired_issuer_is_one_sentence():
    past = datetime.now(timezone.utc) - timedelta(days=3)
    old = CA(key_type="ec", common_name="Old CA", not_before=past - YEAR, not_after=past)
    with pytest.raises(UsageError, match=r"^Old CA is valid only until .* before the certificate would begin"):
        old.issue_cert("api.screenmeet.com")
