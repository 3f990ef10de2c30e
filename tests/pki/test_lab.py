"""Tests for harness.pki.lab: every CA of a generated lab PKI (vendor shapes too) is
name-constrained, lives years, and outlives everything it signs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509

from harness.model.vendors import load_vendors
from harness.pki.ca import load_certificates
from harness.pki.constraints import lab_name_constraints
from harness.pki.lab import LabPKI, vendor_cas

YEAR = timedelta(days=365)
VENDORS = load_vendors()


def _is_ca(cert: x509.Certificate) -> bool:
    return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> LabPKI:
    return LabPKI.generate(tmp_path_factory.mktemp("state"), hostile_sites=("expired", "incomplete-chain"))


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
    for ca in {id(c): c for c in (root, signer, untrusted)}.values():
        assert ca.cert.extensions.get_extension_for_class(x509.NameConstraints).value == lab_name_constraints()
        assert ca.cert.not_valid_after_utc - ca.cert.not_valid_before_utc > 4 * YEAR
    # A vendor's longest leaf validity (up to ten years in a profile) is cut at the signer's end.
    leaf = signer.issue_cert("api.screenmeet.com", not_after=signer.cert.not_valid_after_utc + 5 * YEAR)
    assert leaf.cert.not_valid_after_utc == signer.cert.not_valid_after_utc <= root.cert.not_valid_after_utc
