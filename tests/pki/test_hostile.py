"""Hostile certificates (badssl.com's cases), in memory: the reference clients' own TLS
context rejects each with the reason a reviewer expects, and accepts the same
certificate without its one defect."""

from __future__ import annotations

import ssl

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from harness.clients.transport import trust_context
from harness.errors import UnknownNameError
from harness.pki import hostile
from harness.pki.ca import CA, certificate_pem, key_pem
from harness.pki.lab import LabPKI
from harness.server.mock import tls_context
from tests.tlshelpers import handshake

REASONS = hostile.VERIFY_ERRORS
INVALID = [c for c in hostile.CASES if c not in hostile.VALID_SHAPES]
HOST = "api.screenmeet.com"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return LabPKI.generate(tmp_path_factory.mktemp("hostile"), hostile_sites=tuple(hostile.CASES))


def test_every_case_has_a_reason_and_a_site(pki):
    assert set(REASONS) == set(INVALID)
    for case in hostile.CASES:
        assert (pki.sites_dir / f"{case}.pem").is_file()
        assert (pki.sites_dir / f"{case}.key").stat().st_mode & 0o777 == 0o600


def test_the_good_server_certificate_passes(pki):
    client = handshake(tls_context(str(pki.server_chain), str(pki.server_key)),
                       trust_context(str(pki.trust_public)), HOST)
    assert client.version() in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize("case", [c for c in INVALID if c != "rsa-512"])
def test_each_site_fails_the_clients_check_with_its_reason(pki, case):
    server = tls_context(str(pki.sites_dir / f"{case}.pem"), str(pki.sites_dir / f"{case}.key"), weak=True)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        handshake(server, trust_context(str(pki.trust_public_org)), HOST)
    assert REASONS[case] in info.value.verify_message


@pytest.mark.parametrize("case", hostile.VALID_SHAPES)
def test_valid_shapes_pass_on_the_pinned_server_key(pki, case):
    # Only the shape is unusual: the clients' own context accepts it, and the key is the server's.
    from cryptography import x509

    from harness.model.pins import spki_sha256
    server = tls_context(str(pki.sites_dir / f"{case}.pem"), str(pki.sites_dir / f"{case}.key"))
    handshake(server, trust_context(str(pki.trust_public)), HOST)
    site = x509.load_pem_x509_certificate((pki.sites_dir / f"{case}.pem").read_bytes())
    good = x509.load_pem_x509_certificate(pki.server_chain.read_bytes())
    assert spki_sha256(site.public_key()) == spki_sha256(good.public_key())


def test_the_valid_shapes_have_their_shape(pki):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    def load(case):
        return x509.load_pem_x509_certificate((pki.sites_dir / f"{case}.pem").read_bytes())

    def san(cert):
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)

    no_cn = load("no-common-name")
    assert not no_cn.subject.get_attributes_for_oid(NameOID.COMMON_NAME) and len(no_cn.subject)
    assert not san(no_cn).critical and "*.screenmeet.com" in san(no_cn).value.get_values_for_type(x509.DNSName)
    no_subject = load("no-subject")
    assert len(no_subject.subject) == 0 and san(no_subject).critical  # RFC 5280 4.2.1.6
    assert len(san(load("1000-sans")).value) == 1000


def test_rsa_512_over_tls13_the_server_cannot_sign(pki):
    # What really happens: RSA-PSS needs a 528-bit key, so at any security level the server
    # aborts a TLS 1.3 handshake before the client sees the certificate ...
    server = tls_context(str(pki.sites_dir / "rsa-512.pem"), str(pki.sites_dir / "rsa-512.key"), weak=True)
    with pytest.raises(ssl.SSLError, match="NO_SUITABLE_SIGNATURE_ALGORITHM|HANDSHAKE_FAILURE") as info:
        handshake(server, trust_context(str(pki.trust_public_org)), HOST)
    assert not isinstance(info.value, ssl.SSLCertVerificationError)
    # ... over TLS 1.2 it signs (PKCS#1 v1.5) and the client refuses the key, at level 2 and at level 1.
    for level in (2, 1):
        client = trust_context(str(pki.trust_public_org), tls_max="1.2")
        client.set_ciphers(f"DEFAULT:@SECLEVEL={level}")
        with pytest.raises(ssl.SSLCertVerificationError, match="EE certificate key too weak"):
            handshake(server, client, HOST)
    # At its default level OpenSSL will not even load the key into a server.
    with pytest.raises(ssl.SSLError):
        tls_context(str(pki.sites_dir / "rsa-512.pem"), str(pki.sites_dir / "rsa-512.key"))


@pytest.mark.parametrize("case", ["sha1", "rsa-1024"])
def test_weak_cases_fail_only_for_their_weakness(pki, case):
    # The same certificate passes a client that accepts weak crypto: only the weakness is wrong.
    server = tls_context(str(pki.sites_dir / f"{case}.pem"), str(pki.sites_dir / f"{case}.key"), weak=True)
    lax = ssl.create_default_context(cafile=str(pki.trust_public))
    lax.set_ciphers("DEFAULT:@SECLEVEL=0")
    handshake(server, lax, HOST)


def test_weak_sites_need_the_weak_server_context(pki):
    # OpenSSL refuses to present them at its default level: why the server has `weak`.
    with pytest.raises(ssl.SSLError):
        tls_context(str(pki.sites_dir / "rsa-1024.pem"), str(pki.sites_dir / "rsa-1024.key"))


@pytest.fixture(scope="module")
def org():
    root = CA(common_name="Test Org Root", key_type="ec")
    return root, root.create_child_ca(common_name="Test Org Issuing CA", key_type="ec"), CA(common_name="Nobody")


def _serve(cert, key, chain):
    import tempfile
    from pathlib import Path

    from harness.pki.ca import certificate_pem

    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp, "c.pem")
        pem.write_bytes(b"".join(certificate_pem(c).bytes() for c in [cert, *chain]))
        k = key_pem(key).write_to_path(Path(tmp, "k.pem"), private=True)
        return tls_context(str(pem), str(k), weak=True)


def _org_trust(root: CA) -> ssl.SSLContext:
    ctx = trust_context(None)
    ctx.load_verify_locations(cadata=root.cert_pem.bytes().decode())
    return ctx


@pytest.mark.parametrize("case", [c for c in INVALID if c != "rsa-512"])
def test_forged_variants_fail_although_the_org_ca_is_trusted(org, case):
    root, issuing, untrusted = org
    cert, key, chain = hostile.issue(case, (HOST,), issuer=issuing, chain=[issuing.cert], untrusted=untrusted)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        handshake(_serve(cert, key, chain), _org_trust(root), HOST)
    assert REASONS[case] in info.value.verify_message


def test_a_good_forged_certificate_passes_with_the_org_ca(org):
    root, issuing, _ = org
    leaf = issuing.issue_cert(HOST)
    handshake(_serve(leaf.cert, leaf.private_key, [issuing.cert]), _org_trust(root), HOST)


def test_incomplete_chain_under_a_root_issuer_uses_the_sub_ca(org):
    root, issuing, untrusted = org
    cert, _, chain = hostile.issue("incomplete-chain", (HOST,), issuer=root, chain=[], untrusted=untrusted,
                                   sub_ca=issuing)
    assert chain == [] and cert.issuer == issuing.cert.subject
    with pytest.raises(ValueError, match="needs sub_ca"):
        hostile.issue("incomplete-chain", (HOST,), issuer=root, chain=[], untrusted=untrusted)


def test_unknown_case():
    from harness.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown hostile certificate case 'revoked'"):
        hostile.issue("revoked", (HOST,), issuer=None, chain=[], untrusted=None)


def test_certmitm_cases_use_the_attackers_public_certificates(org):
    root, issuing, untrusted = org
    public = CA(common_name="Test Public Intermediate", key_type="ec")
    kw = dict(issuer=issuing, chain=[issuing.cert], untrusted=untrusted, public=(public, []))
    other, _, chain = hostile.issue("other-domain", (HOST,), **kw)
    assert other.issuer == public.cert.subject and chain == []
    target, key, chain = hostile.issue("leaf-as-ca", (HOST,), **kw)
    assert chain[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert target.issuer == chain[0].subject and chain[0].issuer == public.cert.subject
    chain[0].public_key().verify(target.signature, target.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))


def test_replaced_key_edits_the_upstreams_own_certificate(org):
    root, issuing, untrusted = org
    original = issuing.issue_cert(HOST, "beam.screenmeet.com").cert
    cert, key, chain = hostile.issue("replaced-key", (HOST,), issuer=root, chain=[], untrusted=untrusted,
                                     public=(issuing, [issuing.cert]), original=original)
    assert (cert.subject, cert.issuer, cert.not_valid_after_utc) == (
        original.subject, original.issuer, original.not_valid_after_utc)
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName) == \
        original.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert cert.public_key() != original.public_key() and chain == [issuing.cert]
    key.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))  # self-made
    with pytest.raises(InvalidSignature):
        issuing.cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))


def test_weak_keys_and_the_root_agency():
    key = hostile.weak_rsa_key(512)
    assert key.key_size == 512
    weak_root = hostile.root_agency()
    cert = weak_root.cert
    assert cert.subject.rfc4514_string() == "CN=Root Agency" == cert.issuer.rfc4514_string()
    assert cert.public_key().key_size == 512 and cert.signature_hash_algorithm.name == "md5"
    cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.MD5())
    # Name-constrained like every lab CA (harness.pki.constraints).
    assert cert.extensions.get_extension_for_class(x509.NameConstraints).critical


def test_every_added_name_lies_inside_the_lab_constraints():
    from harness.pki.constraints import LAB_DOMAINS
    names = [hostile.OTHER_DOMAIN, hostile.LEAF_CA_HOST, "san999.lab.test", hostile.WRONG_HOST]
    assert all(any(n == d or n.endswith("." + d) for d in LAB_DOMAINS) for n in names)


# -- through the real lab: what mitmproxy's upstream verification and the clients really did -----------------

# Why the proxy gave up on each invalid upstream, as its journal records it (mitmproxy / OpenSSL wording).
UPSTREAM_REASONS = {
    "replaced-key": "certificate signature failure",
    "other-domain": "hostname mismatch",
    "leaf-as-ca": "invalid ca certificate",
    "rsa-512": "connection closed",  # the server aborts TLS 1.3: it cannot sign with 512 bits
    "root-agency": "self-signed certificate in certificate chain",
}


@pytest.mark.parametrize("case", list(UPSTREAM_REASONS))
def test_the_proxy_refuses_each_invalid_upstream_for_its_reason(run_scenario, case):
    cell = run_scenario(f"hostile-{case}-inspected", "beam")
    errors = [str(r["upstream_error"]).lower() for r in cell.proxy_records
              if r["kind"] == "connection" and r["upstream_error"]]
    assert errors and any(UPSTREAM_REASONS[case] in e for e in errors), errors
    assert cell.verdict.passed


@pytest.mark.parametrize("case", hostile.VALID_SHAPES)
def test_the_proxy_accepts_each_valid_shape_upstream(run_scenario, tls_lab, case):
    cell = run_scenario(f"hostile-{case}-inspected", "beam")
    conns = [r for r in cell.proxy_records if r["kind"] == "connection"]
    assert conns and not any(r["upstream_error"] or r["blocked"] for r in conns)
    assert {r["forged_issuer"] for r in conns} == {tls_lab.org_issuer_cn} and cell.verdict.passed


@pytest.mark.parametrize("case", ["replaced-key", "other-domain", "leaf-as-ca", "root-agency"])
def test_forged_rows_present_the_case_to_the_client(run_scenario, case):
    # The journal names the case the proxy forged; the client failed in the handshake and sent nothing.
    cell = run_scenario(f"hostile-{case}-forged", "attended")
    conns = [r for r in cell.proxy_records if r["kind"] == "connection"]
    assert conns and {r["forged_case"] for r in conns} == {case}
    assert all(r["client_tls"] != "established" and r["requests"] == [] for r in conns) and cell.verdict.passed


def test_parse_cases_names_hostile_sites_in_order_once():
    assert hostile.parse_cases("sha1, expired,sha1") == ("sha1", "expired")
    assert hostile.parse_cases("") == hostile.parse_cases(None) == ()
    # Negative: a name that is no case is one sentence suggesting the closest.
    with pytest.raises(UnknownNameError, match="unknown hostile certificate case 'expird' \\(did you mean 'expired'"):
        hostile.parse_cases("expired,expird")


def test_revoked_names_its_crl_and_the_crl_lists_it(tmp_path):
    """`revoked` (the audit's case): a valid leaf whose CRL distribution point is the URL given,
    and a CRL signed by the issuer that lists its serial as key-compromised."""
    issuer = CA(common_name="TLS-lab test intermediate", key_type="ec")
    url = "http://crl.sites.lab.test:8080/lab-public.crl"
    leaf, key, chain, der = hostile.revoked(issuer, ("revoked.sites.lab.test",), url)
    assert chain == [issuer.cert] and leaf.public_key() == key.public_key()
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in points[0].full_name] == [url]
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(issuer.cert.public_key()) and crl.issuer == issuer.cert.subject
    entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    # Otherwise valid: a client that checks no CRL accepts it (why it is no case of the matrix).
    (tmp_path / "c.pem").write_bytes(b"".join(certificate_pem(c).bytes() for c in [leaf, *chain]))
    key_pem(key).write_to_path(tmp_path / "k.pem", private=True)
    server = tls_context(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    client = trust_context(None)
    client.load_verify_locations(cadata=issuer.cert_pem.bytes().decode())
    assert handshake(server, client, "revoked.sites.lab.test")

