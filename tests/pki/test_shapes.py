"""harness.pki.shapes: the pure rules of a profile's certificate shape."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from harness.model.vendors import DEFAULT_LEAF_EXTENSIONS, load_vendors
from harness.pki.ca import CA, general_name, new_key
from harness.pki.shapes import (
    LeafShape,
    dn_common_name,
    dn_mailboxes,
    dn_strings,
    forge_leaf,
    key_spec,
    leaf_extensions,
    leaf_key_spec,
    leaf_subject,
    parse_dn,
)

VENDORS = load_vendors()
T = "Zscaler Intermediate Root CA (zscalerthree.net) (t) "


def test_a_dn_keeps_every_attribute_in_order_and_its_exact_spelling():
    attrs = ["C=US", "ST=California", "O=Zscaler Inc.", "OU=Zscaler Inc.", f"CN={T}"]
    name = parse_dn(attrs)
    assert [a.oid for a in name] == [NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME,
                                     NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME,
                                     NameOID.COMMON_NAME]
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == T  # the trailing space stays
    assert dn_strings(name) == attrs and dn_common_name(attrs) == T
    # Reversing the order makes another name: order is part of the product's shape.
    assert parse_dn(attrs[::-1]) != name
    assert dn_strings(parse_dn(["CN=x", "emailAddress=support@fortinet.com"]))[-1] == "emailAddress=support@fortinet.com"


@pytest.mark.parametrize("bad", [[], ["CN"], ["XX=1"], ["CN= "], ["cn=lower"]])
def test_a_bad_dn_is_refused(bad):
    with pytest.raises(ValueError):
        parse_dn(bad)


def test_mailboxes_are_those_the_dns_carry_once_each():
    z = VENDORS["zscaler"].ca_names()
    assert dn_mailboxes(z) == ("support@zscaler.com",)
    assert dn_mailboxes(VENDORS["cisco-umbrella"].ca_names()) == ()


@pytest.mark.parametrize("spec,upstream,expected", [
    ("match", ec.generate_private_key(ec.SECP256R1()).public_key(), "ec-256"),   # FortiOS: ECDSA server, ECDSA leaf
    ("match", ec.generate_private_key(ec.SECP384R1()).public_key(), "ec-384"),
    ("match", rsa.generate_private_key(65537, 3072).public_key(), "rsa-3072"),
    ("match", None, "rsa-2048"),                 # nothing to match: RSA-2048, as the products' default
    ("rsa-2048", ec.generate_private_key(ec.SECP256R1()).public_key(), "rsa-2048"),  # fixed: not matched
    ("ca-key", None, "ca-key"),
])
def test_leaf_key_spec(spec, upstream, expected):
    assert leaf_key_spec(spec, upstream) == expected


def test_key_spec_names_rsa_and_ec_keys():
    assert key_spec(new_key("ec", 384)) == "ec-384" and key_spec(new_key("rsa", 2048).public_key()) == "rsa-2048"


def _upstream():
    ca = CA(common_name="Lab Public Intermediate CA", key_type="ec")
    return ca.issue_cert("screenmeet.com", "*.screenmeet.com").cert


def test_leaf_subject_modes():
    up = _upstream()
    names = ("api.screenmeet.com", "screenmeet.com")
    assert leaf_subject("copy", names, up) == up.subject            # Zscaler, PAN-OS: the original's fields
    assert dn_strings(leaf_subject("cn", names, up)) == ["CN=api.screenmeet.com"]
    umbrella = VENDORS["cisco-umbrella"].leaf_subject_dn
    assert dn_strings(leaf_subject("template", names, up, umbrella)) == [
        "C=US", "ST=California", "L=San Francisco", "O=OpenDNS, Inc.", "CN=api.screenmeet.com"]
    # Copy without an upstream falls back to the CN; an IP address never becomes a CN.
    assert dn_strings(leaf_subject("copy", names, None)) == ["CN=api.screenmeet.com"]
    assert len(leaf_subject("cn", ("127.0.0.1",), None)) == 0
    assert dn_strings(leaf_subject("template", ("127.0.0.1",), None, umbrella))[-1] == "O=OpenDNS, Inc."


def _kinds(exts):
    return [type(e).__name__ for e, _ in exts]


def test_leaf_extensions_keep_what_the_shape_says_and_always_the_san():
    key, issuer = new_key("ec", None), new_key("ec", None)
    names = [general_name("api.screenmeet.com")]
    subject = parse_dn(["CN=api.screenmeet.com"])
    default = leaf_extensions(LeafShape(), names, subject, key.public_key(), issuer.public_key())
    assert _kinds(default) == ["BasicConstraints", "KeyUsage", "ExtendedKeyUsage", "SubjectKeyIdentifier",
                               "AuthorityKeyIdentifier", "SubjectAlternativeName"]
    # FortiGate's and Umbrella's captured leaves carried nothing: the SAN alone remains.
    bare = leaf_extensions(LeafShape(extensions=()), names, subject, key.public_key(), issuer.public_key())
    assert _kinds(bare) == ["SubjectAlternativeName"] and bare[0][1] is False
    # An empty subject makes the SAN critical (RFC 5280 4.2.1.6).
    assert leaf_extensions(LeafShape(extensions=()), names, x509.Name([]), key.public_key(),
                           issuer.public_key())[0][1] is True
    # The product's own CRL DP and AIA point under .invalid: nothing real is ever fetched.
    own = leaf_extensions(LeafShape(extensions=("aia", "crldp"), vendor="zscaler"), names, subject,
                          key.public_key(), issuer.public_key())
    assert _kinds(own) == ["AuthorityInformationAccess", "CRLDistributionPoints", "SubjectAlternativeName"]
    assert own[1][0][0].full_name[0].value == "http://zscaler.invalid/crl.crl"


def test_forge_leaf_signs_with_the_shapes_hash():
    ca = CA(common_name="Signer", key_type="ec")
    now = datetime.now(timezone.utc)
    key = new_key("ec", None)
    cert = forge_leaf(LeafShape(hash="sha384"), issuer_cert=ca.cert, issuer_key=ca.private_key,
                      names=[general_name("api.screenmeet.com")], subject=parse_dn(["CN=api.screenmeet.com"]),
                      key=key, dates=(now, now + timedelta(days=1)))
    assert cert.signature_hash_algorithm.name == "sha384" and cert.issuer == ca.cert.subject
    cert.verify_directly_issued_by(ca.cert)


def test_the_default_shape_is_the_engines():
    assert LeafShape().is_default and LeafShape.of(None).is_default
    assert LeafShape.of(VENDORS["generic"]).is_default
    assert LeafShape.of(VENDORS["generic"]).extensions == DEFAULT_LEAF_EXTENSIONS
    assert not LeafShape.of(VENDORS["zscaler"]).is_default


def test_the_readme_table_shows_every_profiles_shape_and_sources():
    from tests.clihelpers import ROOT
    from tests.pki.readme_table import table

    expected = table(VENDORS)
    assert expected in (ROOT / "README.md").read_text(), "README vendor table is stale; expected:\n" + expected
