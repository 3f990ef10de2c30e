"""Tests for harness.pki.ca: real TLS handshakes in memory (ssl.MemoryBIO), each
positive case next to the negatives that must fail."""

from __future__ import annotations

import ssl
import stat
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from harness.errors import BadFileError, UsageError
from harness.model.pins import spki_sha256
from harness.pki.ca import (
    CA,
    Blob,
    load_certificate,
    load_certificates,
    load_private_key,
)
from harness.pki.constraints import LAB_NETWORKS
from tests.tlshelpers import client_ctx, handshake, leaf_server_ctx

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
