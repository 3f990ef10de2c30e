"""Every vendor profile through the real proxy (a fresh lab each): the issuer CN the clients show,
the chain shape, key and validity of the forged leaf, and the untrusted-upstream action.

Negatives sit next to each check: the exception shows the real issuer, a client
that trusts only the public root fails, a trusted upstream is neither blocked
nor re-signed.
"""

from __future__ import annotations

import io
import json
import ssl
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.clients import attended, beam
from harness.clients.decision import attended_warning
from harness.clients.transport import open_tls, parse_proxy_url, peer_chain
from harness.lab.local import LocalLab
from harness.lab.options import LabOptions
from harness.model.policy import Policy
from harness.model.vendors import load_vendors
from harness.net.journal import JournalReader
from harness.pki.shapes import dn_strings

VENDORS = load_vendors()
POLICIES = {
    "inspect": Policy("inspect"),
    "exception-wildcard": Policy.from_dict("exception-wildcard", {"exceptions": ["*.screenmeet.com"]}),
    "untrusted-upstream": Policy.from_dict("untrusted-upstream", {"upstream": "untrusted-root"}),
}
API = "api.screenmeet.com"


@pytest.fixture(scope="module", params=list(VENDORS), ids=list(VENDORS))
def vlab(request, tmp_path_factory):
    vendor = VENDORS[request.param]
    lab = LocalLab(LabOptions(state_dir=tmp_path_factory.mktemp(f"vendor-{vendor.name}"), lanes=1,
                              show_secrets=True, vendor=vendor), policies=POLICIES)
    info = lab.start()
    try:
        yield vendor, info
    finally:
        lab.stop()


def run(client, info, policy, *extra, trust="trust_public_org"):
    out = io.StringIO()
    args = ["--proxy", info.proxies[policy][0], "--trust", info.pki[trust], "--pins", info.pins_file,
            "--json", "--timeout", "10", *extra]
    args += ["--on-warning", "continue"] if client is attended else ["--once"]
    journal = JournalReader(info.proxy_admin)
    after = journal.last_seq()
    code = client.main(args, stdout=out, stderr=out, stdin=io.StringIO())
    events = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return code, events, journal.read(lane=0, after=after, settle=5)


def presented(info, policy, *, verify_with: str | None = None):
    """What the proxy presents for api.screenmeet.com: (leaf, chain sent after it)."""
    if verify_with:
        ctx = ssl.create_default_context(cafile=info.pki[verify_with])
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    conn = open_tls(API, 443, ctx, proxy=parse_proxy_url(info.proxies[policy][0]), timeout=10)
    try:
        certs = peer_chain(conn.sock, verified=False)
        return certs[0], certs[1:]
    finally:
        conn.close()


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else name.rfc4514_string()


def test_the_attended_warning_names_the_vendors_issuer(vlab):
    vendor, info = vlab
    assert info.org_issuer_cn == vendor.issuing_cn and info.vendor == vendor.name
    code, events, records = run(attended, info, "inspect")
    warnings = [e for e in events if e["event"] == "warning"]
    assert code == 0 and warnings and warnings[0]["text"] == attended_warning(vendor.issuing_cn)
    assert f"Certificate Issuer: CN={vendor.issuing_cn}." in warnings[0]["text"]
    assert {r["forged_issuer"] for r in records if r["action"] == "intercepted"} == {vendor.issuing_cn}


def test_beam_refuses_naming_the_vendors_issuer(vlab):
    vendor, info = vlab
    code, events, records = run(beam, info, "inspect")
    refused = [e for e in events if e["event"] == "refused"]
    assert code == 5 and refused and refused[0]["issuer"] == vendor.issuing_cn
    assert not any(q for r in records for q in r["requests"])


def test_the_exception_shows_the_real_issuer_not_the_vendors(vlab):
    vendor, info = vlab
    code, events, _ = run(beam, info, "exception-wildcard")
    tls = next(e for e in events if e["event"] == "tls")
    assert code == 0 and tls["issuer"] == "Lab Public Intermediate CA" != vendor.issuing_cn


def server_cert(info) -> x509.Certificate:
    return x509.load_pem_x509_certificate(open(info.pki["server_chain"], "rb").read())


def org_root(info) -> x509.Certificate:
    return x509.load_pem_x509_certificate(open(info.pki["org_ca"], "rb").read())


def test_chain_shape(vlab):
    """The intermediates the client receives, their full DNs (every attribute, in order, exact
    spelling) and pathLen, and the leaf's issuer DN: the profile's, from what a client receives."""
    vendor, info = vlab
    leaf, sent = presented(info, "inspect")
    dns = [list(dn) for dn in vendor.ca_names()]
    assert dn_strings(leaf.issuer) == dns[-1] and _cn(leaf.issuer) == vendor.issuing_cn
    # Every intermediate goes along, the signer first, and the root stays out (the client has it).
    assert [dn_strings(c.subject) for c in sent] == dns[:0:-1]
    assert [dn_strings(c.issuer) for c in sent] == dns[-2::-1]
    assert dn_strings(org_root(info).subject) == dns[0] == dn_strings(org_root(info).issuer)
    expected_path_lens = list(vendor.ca_path_lens or range(len(dns) - 2, -1, -1))[::-1]
    assert [c.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
            for c in sent] == expected_path_lens
    if sent:  # a client holding only the root builds the whole path from what it was sent
        presented(info, "inspect", verify_with="trust_public_org")
    # Negative: the public root alone does not make the forged chain trusted.
    with pytest.raises(Exception, match="verify failed|unable to get local issuer"):
        presented(info, "inspect", verify_with="trust_public")


def test_ca_lifetimes_and_no_certificate_outlives_its_issuer(vlab):
    """Roots live years, intermediates as the product's, and every certificate the client
    receives ends no later than the one that signed it (issue 13, item 2)."""
    vendor, info = vlab
    leaf, sent = presented(info, "inspect")
    path = [leaf, *sent, org_root(info)]
    for cert, issuer in zip(path, path[1:]):
        assert cert.not_valid_after_utc <= issuer.not_valid_after_utc, cert.subject
    cas = [org_root(info), *sent[::-1]]
    for i, ca in enumerate(cas):
        lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
        if vendor.ca_days:  # a day of back-dating, and never past the parent's end
            assert lifetime <= timedelta(days=vendor.ca_days[i] + 1, minutes=5)
            assert i == 0 or lifetime >= min(timedelta(days=vendor.ca_days[i]),
                                              cas[i - 1].not_valid_after_utc - ca.not_valid_before_utc)
        else:
            assert lifetime > (timedelta(days=3650) if i == 0 else timedelta(days=1800))
    assert org_root(info).not_valid_after_utc - org_root(info).not_valid_before_utc > timedelta(days=3000)


def test_leaf_subject_and_names(vlab):
    """Which subject fields are copied from the real certificate, and the SAN names (always copied,
    the SNI first)."""
    vendor, info = vlab
    leaf, _ = presented(info, "inspect")
    server = server_cert(info)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    real = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert API in sans and set(real) <= set(sans)
    if vendor.name == "generic":  # mitmproxy's own leaf, its own order of names
        assert _cn(leaf.subject) in sans
        return
    assert sans[0] == API
    if vendor.leaf_subject == "copy":  # "the same fields as the original except the issuer"
        assert leaf.subject == server.subject and leaf.issuer != server.issuer
    elif vendor.leaf_subject == "template":
        assert dn_strings(leaf.subject) == [f"CN={API}" if a == "CN=*" else a for a in vendor.leaf_subject_dn]
    else:
        assert dn_strings(leaf.subject) == [f"CN={API}"]


def test_leaf_hash_and_extensions(vlab):
    """The signature hash, and which of AKI, SKI, AIA, CRL DP and the usages the leaf carries."""
    vendor, info = vlab
    leaf, sent = presented(info, "inspect")
    if vendor.name == "generic":  # mitmproxy's own shape, untouched by the lab
        assert leaf.signature_hash_algorithm.name == "sha256"
        return
    assert leaf.signature_hash_algorithm.name == vendor.leaf_hash
    kinds = {x509.AuthorityKeyIdentifier: "aki", x509.SubjectKeyIdentifier: "ski",
             x509.AuthorityInformationAccess: "aia", x509.CRLDistributionPoints: "crldp",
             x509.BasicConstraints: "basic-constraints", x509.KeyUsage: "key-usage",
             x509.ExtendedKeyUsage: "eku", x509.SubjectAlternativeName: "san"}
    present = [kinds[type(e.value)] for e in leaf.extensions]
    assert sorted(present) == sorted([*vendor.leaf_extensions, "san"])
    if "crldp" in present:  # the product's own CRL, pointing nowhere real
        dp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0]
        assert ".invalid/" in dp.full_name[0].value
    if "aki" in present:
        signer_ski = (sent[0] if sent else org_root(info)).extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest
        assert leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == signer_ski


EXPECTED = {  # untrusted-upstream action -> (attended exit when continuing, beam exit)
    "block-page": (6, 5), "re-sign-untrusted": (4, 4), "self-signed": (4, 4),
}


def test_untrusted_upstream_action(vlab):
    vendor, info = vlab
    action = vendor.untrusted_upstream
    server_journal = JournalReader(info.server_admin)
    after = server_journal.last_seq()
    code_a, events_a, records = run(attended, info, "untrusted-upstream")
    code_b, _, _ = run(beam, info, "untrusted-upstream")
    assert (code_a, code_b) == EXPECTED[action]
    assert {r["untrusted_upstream"] for r in records} == {action}
    assert all("verify failed" in (r["upstream_error"] or "") for r in records)
    leaf, _ = presented(info, "untrusted-upstream")
    if action == "re-sign-untrusted":
        assert _cn(leaf.issuer) == vendor.untrusted_cn != vendor.issuing_cn
    elif action == "self-signed":
        assert leaf.issuer == leaf.subject
    else:
        # Block page: forged as usual (so the attended client warned first), then the page.
        assert _cn(leaf.issuer) == vendor.issuing_cn
        assert any(e["event"] == "warning" for e in events_a)
        error = next(e for e in events_a if e["event"] == "error")
        assert f"HTTP {vendor.block_status or 502}" in error["reason"]
        assert all(r["blocked"] for r in records)
    # Nothing ever reached the server, whatever the action.
    assert server_journal.read(lane=0, after=after) == []


def test_a_trusted_upstream_is_neither_blocked_nor_re_signed(vlab):
    vendor, info = vlab
    _, _, records = run(attended, info, "inspect")
    assert records and not any(r["blocked"] or r["untrusted_upstream"] for r in records)


def test_mitmproxy_itself_forges_with_an_ecdsa_ca(tmp_path):
    """mitmproxy 11's cert store takes an ECDSA CA: with engine defaults the lab does not forge,
    mitmproxy does, and its leaves carry the CA's own P-256 key."""
    from harness.model.vendors import VendorProfile

    profile = VendorProfile(name="ec-corp", product="EC Corp", issuer_cn="EC Corp Inspection CA", chain="root",
                            key="ec-256", leaf_key="ca-key", leaf_validity="engine", untrusted_upstream="block-page")
    lab = LocalLab(LabOptions(state_dir=tmp_path, lanes=1, show_secrets=True, vendor=profile),
                   policies={"inspect": Policy("inspect")})
    info = lab.start()
    try:
        code, events, records = run(attended, info, "inspect")
        assert code == 0 and events_named(events, "warning")[0]["text"] == attended_warning("EC Corp Inspection CA")
        assert {r["forged_key"] for r in records} == {None}  # not the lab's forging: mitmproxy's
        leaf, _ = presented(info, "inspect")
        ca = x509.load_pem_x509_certificate(open(info.pki["org_ca"], "rb").read())
        assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
        der = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert leaf.public_key().public_bytes(*der) == ca.public_key().public_bytes(*der)
        leaf.verify_directly_issued_by(ca)
    finally:
        lab.stop()


def events_named(events, name):
    return [e for e in events if e["event"] == name]
