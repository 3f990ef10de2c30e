"""Hostile certificates (badssl.com's cases), in memory: the reference clients' own TLS
context rejects each with the reason a reviewer expects, and accepts the same
certificate without its one defect."""

from __future__ import annotations

import ssl

import pytest

from harness.clients.transport import trust_context
from harness.errors import UnknownNameError
from harness.pki import hostile
from harness.pki.ca import CA, key_pem
from harness.pki.lab import LabPKI
from harness.server.mock import tls_context
from tests.tlshelpers import handshake

REASONS = hostile.VERIFY_ERRORS
HOST = "api.screenmeet.com"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return LabPKI.generate(tmp_path_factory.mktemp("hostile"), hostile_sites=tuple(hostile.CASES))


def test_every_case_has_a_reason_and_a_site(pki):
    assert set(REASONS) == set(hostile.CASES)
    for case in hostile.CASES:
        assert (pki.sites_dir / f"{case}.pem").is_file()
        assert (pki.sites_dir / f"{case}.key").stat().st_mode & 0o777 == 0o600


def test_the_good_server_certificate_passes(pki):
    client = handshake(tls_context(str(pki.server_chain), str(pki.server_key)),
                       trust_context(str(pki.trust_public)), HOST)
    assert client.version() in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize("case", list(hostile.CASES))
def test_each_site_fails_the_clients_check_with_its_reason(pki, case):
    server = tls_context(str(pki.sites_dir / f"{case}.pem"), str(pki.sites_dir / f"{case}.key"), weak=True)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        handshake(server, trust_context(str(pki.trust_public_org)), HOST)
    assert REASONS[case] in info.value.verify_message


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


@pytest.mark.parametrize("case", list(hostile.CASES))
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


def test_parse_cases_names_hostile_sites_in_order_once():
    assert hostile.parse_cases("sha1, expired,sha1") == ("sha1", "expired")
    assert hostile.parse_cases("") == hostile.parse_cases(None) == ()
    # Negative: a name that is no case is one sentence suggesting the closest.
    with pytest.raises(UnknownNameError, match="unknown hostile certificate case 'expird' \\(did you mean 'expired'"):
        hostile.parse_cases("expired,expird")
