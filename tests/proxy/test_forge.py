"""harness.proxy.forge: the forging plan (pure) and the certificates it builds from a lab PKI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from harness.model.policy import Policy
from harness.model.vendors import load_vendors
from harness.pki.ca import CA
from harness.pki.lab import LabPKI
from harness.proxy import forge

VENDORS = load_vendors()
INSPECT = Policy("inspect")


def _p(**kw) -> Policy:
    return Policy("p", **kw)


# -- plan: pure decisions ------------------------------------------------------------

def test_no_vendor_and_a_plain_policy_leave_forging_to_mitmproxy():
    assert forge.plan(INSPECT, None, upstream_failed=False) == forge.Plan()
    assert forge.plan(INSPECT, VENDORS["generic"], upstream_failed=False).kind == forge.ENGINE


def test_a_vendor_with_its_own_leaves_is_forged_by_the_lab():
    p = forge.plan(INSPECT, VENDORS["zscaler"], upstream_failed=False)
    assert (p.kind, p.leaf_key, p.validity, p.blocked) == (forge.FORGE, "rsa-2048", 14, False)
    assert forge.plan(INSPECT, VENDORS["palo-alto"], upstream_failed=False).validity == "copy"


@pytest.mark.parametrize("policy,field,value", [
    (_p(tls_max="1.2"), "tls_max", "1.2"),
    (_p(tls_min="1.3"), "tls_min", "1.3"),
    (_p(leaf_key="ec-256"), "leaf_key", "ec-256"),
    (_p(forge="expired"), "case", "expired"),
])
def test_policy_tuning_makes_the_lab_forge_even_for_generic(policy, field, value):
    p = forge.plan(policy, None, upstream_failed=False)
    assert p.kind == forge.FORGE and getattr(p, field) == value


@pytest.mark.parametrize("vendor,kind,case,blocked", [
    ("generic", forge.ENGINE, "", True),             # mitmproxy's own forging, then its 502
    ("zscaler", forge.FORGE, "", True),              # Zscaler's leaf, then its block page
    ("palo-alto", forge.FORGE, "untrusted-root", False),   # Forward Untrust
    ("cisco-wsa", forge.FORGE, "untrusted-root", False),   # "Untrusted Certificate Warning"
    ("forcepoint", forge.FORGE, "self-signed", False),
])
def test_untrusted_upstream_follows_the_vendor(vendor, kind, case, blocked):
    p = forge.plan(INSPECT, VENDORS[vendor], upstream_failed=True)
    assert (p.kind, p.case, p.blocked) == (kind, case, blocked)
    assert p.untrusted_action == VENDORS[vendor].untrusted_upstream
    # Negative: the same vendor with a trusted upstream neither blocks nor forges a bad certificate.
    ok = forge.plan(INSPECT, VENDORS[vendor], upstream_failed=False)
    assert not ok.blocked and not ok.case and not ok.untrusted_action


def test_the_policy_overrides_the_vendors_action():
    p = forge.plan(_p(untrusted_upstream="block-reset"), VENDORS["zscaler"], upstream_failed=True)
    assert (p.kind, p.untrusted_action) == (forge.REFUSE, "block-reset")
    assert forge.untrusted_action(_p(untrusted_upstream="allow"), VENDORS["fortinet"]) == "allow"
    assert forge.untrusted_action(INSPECT, VENDORS["fortinet"]) == "re-sign-untrusted"
    assert forge.untrusted_action(INSPECT, None) == "block-page"


def test_names_put_the_sni_first_and_copy_the_upstreams():
    ca = CA(common_name="x", key_type="ec")
    up = ca.issue_cert("screenmeet.com", "*.screenmeet.com", "127.0.0.1").cert
    assert forge.names_for("api.screenmeet.com", None, up) == (
        "api.screenmeet.com", "screenmeet.com", "*.screenmeet.com", "127.0.0.1")
    assert forge.names_for(None, "beam.screenmeet.com", None) == ("beam.screenmeet.com",)
    assert forge.names_for("API.screenmeet.com", None, ca.issue_cert("api.screenmeet.com").cert) == (
        "api.screenmeet.com",)


# -- Forger: certificates from a lab PKI ----------------------------------------------

@pytest.fixture(scope="module")
def forgers(tmp_path_factory):
    out = {}
    for name in ("zscaler", "fortinet"):
        pki = LabPKI.generate(tmp_path_factory.mktemp(name), vendor=VENDORS[name])
        out[name] = forge.Forger(pki.mitmproxy_confdir, pki.public_root.parent)
    return out


def _cn(name: x509.Name) -> str:
    return name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_zscaler_leaf_is_signed_by_the_intermediate_and_sent_with_it(forgers):
    f = forgers["zscaler"]
    p = forge.plan(INSPECT, VENDORS["zscaler"], upstream_failed=False)
    cert, key, chain = f.leaf(p, ("api.screenmeet.com",), None)
    assert _cn(cert.issuer) == VENDORS["zscaler"].issuing_cn
    # Both intermediates go along, the signer first; the root stays out, as in the captures.
    assert [_cn(c.subject) for c in chain] == [VENDORS["zscaler"].issuing_cn,
                                              "Zscaler Intermediate Root CA (zscalerthree.net)"]
    cert.verify_directly_issued_by(chain[0])
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert key.public_key().public_numbers() != f.signer.private_key.public_key().public_numbers()
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc)
    assert timedelta(days=14) <= days <= timedelta(days=14, hours=2)
    # Cached: the same names and upstream give the same leaf.
    assert f.leaf(p, ("api.screenmeet.com",), None)[0] is cert


def test_a_root_shaped_vendor_sends_no_chain(forgers):
    f = forgers["fortinet"]
    cert, _, chain = f.leaf(forge.plan(INSPECT, VENDORS["fortinet"], upstream_failed=False), ("a.scrn.mt",), None)
    assert chain == [] and _cn(cert.issuer) == "FG100FTK20000001"


def test_copied_validity(forgers):
    up_ca = CA(common_name="up", key_type="ec")
    start = datetime(2025, 1, 2, tzinfo=timezone.utc)
    upstream = up_ca.issue_cert("api.screenmeet.com", not_before=start, not_after=start + timedelta(days=90)).cert
    p = forge.Plan(kind=forge.FORGE, leaf_key="ec-256", validity="copy")
    cert, key, _ = forgers["fortinet"].leaf(p, ("api.screenmeet.com",), upstream)
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (start, start + timedelta(days=90))
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    # Without an upstream certificate there is nothing to copy: the engine's window.
    cert, _, _ = forgers["fortinet"].leaf(p, ("api.screenmeet.com",), None)
    assert cert.not_valid_before_utc < datetime.now(timezone.utc) - timedelta(days=1)


def test_ca_key_leaves_carry_the_signers_key_as_mitmproxy_does(forgers):
    f = forgers["fortinet"]
    _, key, _ = f.leaf(forge.Plan(kind=forge.FORGE, leaf_key="ca-key"), ("api.screenmeet.com",), None)
    assert key is f.signer.private_key


@pytest.mark.parametrize("action,issuer", [("re-sign-untrusted", "Fortinet_CA_Untrusted"),
                                            ("self-signed", "api.screenmeet.com")])
def test_untrusted_actions_forge_with_an_untrusted_issuer(forgers, action, issuer):
    p = forge.plan(_p(untrusted_upstream=action), VENDORS["fortinet"], upstream_failed=True)
    cert, _, chain = forgers["fortinet"].leaf(p, ("api.screenmeet.com",), None)
    assert _cn(cert.issuer) == issuer and chain == []


def test_incomplete_chain_leaves_out_the_intermediate(forgers):
    p = forge.Plan(kind=forge.FORGE, case="incomplete-chain")
    # Zscaler: its own intermediate signs, and is not sent.
    cert, _, chain = forgers["zscaler"].leaf(p, ("api.screenmeet.com",), None)
    assert chain == [] and _cn(cert.issuer) == VENDORS["zscaler"].issuing_cn
    # Fortinet signs with its root: the lab's sub-CA under that root signs, and is not sent.
    cert, _, chain = forgers["fortinet"].leaf(p, ("api.screenmeet.com",), None)
    assert chain == [] and _cn(cert.issuer) == "FG100FTK20000001 Issuing CA"


def test_connections_and_contexts(forgers):
    from OpenSSL import SSL

    f = forgers["zscaler"]
    p = forge.Plan(kind=forge.FORGE, leaf_key="rsa-2048", validity=14, tls_max="1.2")
    leaf = f.leaf(p, ("api.screenmeet.com",), None)
    conn = f.connection(p, {"client_alpn": b"http/1.1", "server_alpn": None, "http2": False}, leaf)
    assert isinstance(conn, SSL.Connection) and conn.get_certificate().to_cryptography() == leaf[0]
    assert conn.get_app_data()["client_alpn"] == b"http/1.1"
    # One context per (versions, weakness, chain).
    assert f._context("", "1.2", False, tuple(leaf[2])) is f._context("", "1.2", False, tuple(leaf[2]))
    assert f._context("", "1.2", False, tuple(leaf[2])) is not f._context("1.3", "", False, tuple(leaf[2]))
    refuse = f.connection(forge.Plan(kind=forge.REFUSE), {})
    assert refuse.get_certificate() is None


def test_leaf_key_label():
    assert forge.leaf_key_label(rsa.generate_private_key(public_exponent=65537, key_size=1024)) == "rsa-1024"
    assert forge.leaf_key_label(ec.generate_private_key(ec.SECP384R1())) == "ec-384"


# -- the profile's leaf shape, forged ---------------------------------------------------

@pytest.mark.parametrize("upstream_key,kind,size", [(("ec", 256), ec.EllipticCurvePrivateKey, 256),
                                                     (("ec", 384), ec.EllipticCurvePrivateKey, 384),
                                                     (("rsa", 3072), rsa.RSAPrivateKey, 3072)])
def test_fortinet_matches_the_servers_key_type(forgers, upstream_key, kind, size):
    """FortiOS: an ECDSA server gets an ECDSA leaf, an RSA server an RSA leaf of its size."""
    from harness.pki.ca import new_key

    upstream = CA(common_name="up", key_type="ec").issue_cert(
        "api.screenmeet.com", private_key=new_key(*upstream_key)).cert
    p = forge.plan(INSPECT, VENDORS["fortinet"], upstream_failed=False)
    assert p.leaf_key == "match"
    cert, key, _ = forgers["fortinet"].leaf(p, ("api.screenmeet.com",), upstream)
    assert isinstance(key, kind) and key.key_size == size
    # The subject is the server's own (the 2009 capture), and the leaf carries the SAN only.
    assert cert.subject == upstream.subject
    assert [type(e.value) for e in cert.extensions] == [x509.SubjectAlternativeName]


def test_a_copied_validity_never_outlives_the_signer(forgers):
    f = forgers["zscaler"]
    start = datetime.now(timezone.utc) - timedelta(days=1)
    upstream = CA(common_name="up", key_type="ec", not_after=start + timedelta(days=40000)).issue_cert(
        "api.screenmeet.com", not_before=start, not_after=start + timedelta(days=30000)).cert
    p = forge.Plan(kind=forge.FORGE, leaf_key="ec-256", validity="copy")
    cert, _, _ = f.leaf(p, ("api.screenmeet.com",), upstream)
    assert cert.not_valid_before_utc == start.replace(microsecond=0)
    assert cert.not_valid_after_utc == f.signer.cert.not_valid_after_utc < upstream.not_valid_after_utc


def test_the_plan_carries_the_vendors_shape():
    p = forge.plan(INSPECT, VENDORS["zscaler"], upstream_failed=False)
    assert (p.shape.subject, p.shape.hash) == ("copy", "sha256") and "crldp" in p.shape.extensions
    assert forge.plan(INSPECT, VENDORS["generic"], upstream_failed=False).shape.is_default


def test_the_labs_own_forging_is_in_the_key_log(forgers, tmp_path, monkeypatch):
    """--keylog covers a vendor profile's forged connections too (their contexts are the lab's, not
    mitmproxy's): a real in-memory handshake writes its secret to mitmproxy's key logger."""
    from mitmproxy.net import tls
    from OpenSSL import SSL

    keylog = tmp_path / "keys.txt"
    monkeypatch.setattr(tls, "log_master_secret", tls.make_master_secret_logger(str(keylog)))
    f = forgers["zscaler"]
    f._contexts.clear()  # contexts made before the logger was installed would not log
    p = forge.Plan(kind=forge.FORGE, leaf_key="rsa-2048", validity=14, tls_max="1.2")
    server = f.connection(p, {"client_alpn": None, "server_alpn": None, "http2": False},
                          f.leaf(p, ("api.screenmeet.com",), None))
    client_ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    client = SSL.Connection(client_ctx)
    client.set_connect_state()
    client.set_tlsext_host_name(b"api.screenmeet.com")
    for _ in range(10):
        for conn in (client, server):
            try:
                conn.do_handshake()
            except SSL.WantReadError:
                pass
        moved = False
        for a, b in ((client, server), (server, client)):
            try:
                data = a.bio_read(65536)
            except SSL.WantReadError:
                continue
            b.bio_write(data)
            moved = True
        if not moved:
            break
    f._contexts.clear()  # the next tests' contexts must not log into this test's file
    assert client.get_peer_certificate() is not None  # the handshake really finished
    assert "CLIENT_RANDOM " in keylog.read_text()
