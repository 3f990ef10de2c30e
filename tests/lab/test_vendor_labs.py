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
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from harness.clients import attended, beam
from harness.clients.decision import attended_warning
from harness.clients.transport import open_tls, parse_proxy_url, peer_chain
from harness.lab.local import LocalLab
from harness.lab.options import LabOptions
from harness.model.policy import Policy
from harness.model.vendors import load_vendors, parse_key
from harness.net.journal import JournalReader

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


def test_chain_shape(vlab):
    vendor, info = vlab
    leaf, sent = presented(info, "inspect")
    assert _cn(leaf.issuer) == vendor.issuing_cn
    if vendor.chain == "intermediate":
        # The intermediate goes along: a client holding only the root can build the path.
        assert _cn(sent[0].subject) == vendor.issuing_cn and _cn(sent[0].issuer) == vendor.root_cn
        presented(info, "inspect", verify_with="trust_public_org")
    else:
        assert leaf.issuer == x509.load_pem_x509_certificate(open(info.pki["org_ca"], "rb").read()).subject
    # Negative: the public root alone does not make the forged chain trusted.
    with pytest.raises(Exception, match="verify failed|unable to get local issuer"):
        presented(info, "inspect", verify_with="trust_public")


def test_leaf_key_and_validity(vlab):
    vendor, info = vlab
    leaf, _ = presented(info, "inspect")
    key = leaf.public_key()
    if vendor.leaf_key == "ca-key":
        signer = x509.load_pem_x509_certificates(open(info.pki["mitmproxy_confdir"] + "/mitmproxy-ca.pem", "rb").read())[0]
        assert key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
            signer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        kind, size = parse_key(vendor.leaf_key)
        assert isinstance(key, rsa.RSAPublicKey if kind == "rsa" else ec.EllipticCurvePublicKey)
        assert key.key_size == size
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    if isinstance(vendor.leaf_validity, int):
        assert timedelta(days=vendor.leaf_validity) <= lifetime <= timedelta(days=vendor.leaf_validity, hours=2)
    elif vendor.leaf_validity == "copy":
        server = x509.load_pem_x509_certificate(open(info.pki["server_chain"], "rb").read())
        assert (leaf.not_valid_before_utc, leaf.not_valid_after_utc) == (
            server.not_valid_before_utc, server.not_valid_after_utc)
    else:  # the engine's own window: valid from two days back
        assert leaf.not_valid_before_utc < datetime.now(timezone.utc) - timedelta(days=1)


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
