"""Forging the client-facing certificate as the vendor profile and the listener's policy say.

mitmproxy forges on its own (its ``tlsconfig`` addon): every leaf carries the
CA's own key, validity two days back to ``CERT_EXPIRY`` ahead, chain from
``mitmproxy-ca.pem``.  That is the lab's ``generic`` profile, and it stays
untouched.  When a profile or policy asks for something else (another leaf
key, a fixed or copied validity, TLS versions, a hostile certificate, an
untrusted upstream's action), :class:`InspectionAddon.tls_start_client`
(which runs after mitmproxy's) swaps ``data.ssl_conn`` for one built here.

* :func:`plan` – pure: what to present, from (policy, vendor, upstream verdict)
* :class:`Forger` – builds the certificate and the pyOpenSSL connection
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from mitmproxy.addons.tlsconfig import alpn_select_callback
from mitmproxy.certs import CERT_EXPIRY
from mitmproxy.net import tls as mitmproxy_tls
from OpenSSL import SSL

from harness.model.policy import Policy
from harness.model.vendors import VendorProfile, parse_key
from harness.pki import hostile
from harness.pki.ca import CA, LEAF_LIFETIME, general_name, load_certificates, new_key, validity
from harness.pki.shapes import LeafShape, forge_leaf, leaf_key_spec, leaf_subject

ENGINE = "engine"   # mitmproxy forges by itself
FORGE = "forge"     # the lab builds the leaf and the connection
REFUSE = "refuse"   # no certificate at all: the client's handshake fails (block-reset)

_SHA256 = hashes.SHA256()
# An untrusted upstream's action as a hostile certificate of harness.pki.hostile.
_ACTION_CASES = {"re-sign-untrusted": "untrusted-root", "self-signed": "self-signed"}
_ENGINE_DEFAULTS = {"leaf_key": "ca-key", "leaf_validity": "engine", "untrusted_upstream": "block-page"}


@dataclass(frozen=True)
class Plan:
    """What the proxy presents to one client (pure data, see :func:`plan`)."""

    kind: str = ENGINE
    case: str = ""                  # a harness.pki.hostile case to forge instead of a good copy
    leaf_key: str = "ca-key"
    validity: int | str = "engine"
    tls_min: str = ""
    tls_max: str = ""
    blocked: bool = False           # requests get the block page (or mitmproxy's 502)
    untrusted_action: str = ""      # the action applied to an untrusted upstream, if any
    shape: LeafShape = LeafShape()  # subject, hash and extensions of a good copy (harness.pki.shapes)


def _profile_value(vendor: VendorProfile | None, key: str):
    return getattr(vendor, key) if vendor is not None else _ENGINE_DEFAULTS[key]


def untrusted_action(policy: Policy, vendor: VendorProfile | None) -> str:
    """What the listener does with an untrusted upstream certificate: the policy's, else the vendor's."""
    return policy.untrusted_upstream or _profile_value(vendor, "untrusted_upstream")


def plan(policy: Policy, vendor: VendorProfile | None, *, upstream_failed: bool) -> Plan:
    """Decide what an intercepted client is shown.

    ``upstream_failed``: the proxy could not establish a verified TLS session
    with the upstream (``pass-through`` and ``allow`` are decided earlier, when
    the ClientHello arrives: they need no forging decision here).
    """
    base = Plan(leaf_key=policy.leaf_key or _profile_value(vendor, "leaf_key"),
                validity=_profile_value(vendor, "leaf_validity"),
                tls_min=policy.tls_min, tls_max=policy.tls_max, case=policy.forge, shape=LeafShape.of(vendor))
    if upstream_failed:
        action = untrusted_action(policy, vendor)
        if action == "block-reset":
            return replace(base, kind=REFUSE, untrusted_action=action)
        if action in _ACTION_CASES:
            return replace(base, kind=FORGE, case=_ACTION_CASES[action], untrusted_action=action)
        # block-page (and pass-through/allow when their early check passed but TLS still failed)
        base = replace(base, blocked=True, untrusted_action="block-page")
    custom = (base.case or base.tls_min or base.tls_max or base.leaf_key != "ca-key"
              or base.validity != "engine" or not base.shape.is_default)
    return replace(base, kind=FORGE if custom else ENGINE)


class Forger:
    """Builds forged leaves and client-facing connections from the lab's PKI files.

    ``confdir`` holds ``mitmproxy-ca.pem`` (signing CA key, its certificate, its
    chain); ``pki_dir`` the untrusted CA and the org sub-CA.  Leaves are cached
    per (plan, names, upstream certificate), contexts per (versions, chain).
    """

    def __init__(self, confdir: str | Path, pki_dir: str | Path) -> None:
        confdir, pki_dir = Path(confdir), Path(pki_dir)
        self.signer = CA.load(confdir / "mitmproxy-ca.pem")
        certs = load_certificates(confdir / "mitmproxy-ca.pem")
        # Sent along: every intermediate, the signer first, as the products send them (the
        # client holds only the root, which stays out: Zscaler and Umbrella captures show none).
        self.chain = [c for c in certs if c.issuer != c.subject]
        self.untrusted = CA.load(pki_dir / "untrusted-ca.pem", pki_dir / "untrusted-ca.key")
        # The attacker's public CA (certmitm's valid certificates for other names, harness.pki.hostile).
        inter = pki_dir / "public-intermediate.pem"
        self.public = (CA.load(inter, inter.with_suffix(".key")), ) if inter.exists() else ()
        sub = pki_dir / "org-sub-ca.pem"
        self.sub_ca = CA.load(sub, pki_dir / "org-sub-ca.key") if sub.exists() else None
        self._keys: dict[str, object] = {}
        self._leaves: dict[tuple, tuple] = {}
        self._contexts: dict[tuple, object] = {}

    def _key(self, spec: str):
        if spec == "ca-key":
            return self.signer.private_key
        if spec not in self._keys:
            self._keys[spec] = new_key(*parse_key(spec))
        return self._keys[spec]

    def leaf(self, p: Plan, hostnames: tuple[str, ...], upstream: x509.Certificate | None):
        """``(certificate, key, chain to send)`` for ``p`` and ``hostnames`` (first name first)."""
        fingerprint = upstream.fingerprint(_SHA256) if upstream is not None else b""
        cache_key = (p.case, p.leaf_key, p.validity, p.shape, hostnames, fingerprint)
        if cache_key not in self._leaves:
            self._leaves[cache_key] = self._make_leaf(p, hostnames, upstream)
        return self._leaves[cache_key]

    def _make_leaf(self, p: Plan, hostnames: tuple[str, ...], upstream):
        key = self._key(leaf_key_spec(p.leaf_key, upstream.public_key() if upstream is not None else None))
        if p.case:
            public = (self.public[0], [self.public[0].cert]) if self.public else None
            return hostile.issue(p.case, hostnames, issuer=self.signer, chain=self.chain,
                                 untrusted=self.untrusted, sub_ca=self.sub_ca, key=key,
                                 public=public, original=upstream)
        # Never past the signer's own end, whatever the profile's days or the copied dates.
        dates = validity(LEAF_LIFETIME, *_validity(p.validity, upstream), self.signer.cert)
        cert = forge_leaf(p.shape, issuer_cert=self.signer.cert, issuer_key=self.signer.private_key,
                          names=[general_name(h) for h in hostnames],
                          subject=leaf_subject(p.shape.subject, hostnames, upstream, p.shape.subject_dn), key=key, dates=dates)
        return cert, key, list(self.chain)

    def connection(self, p: Plan, app_data, leaf=None):
        """A server-side pyOpenSSL connection presenting ``leaf`` (``None``: no certificate, so
        the handshake fails) with ``app_data`` (mitmproxy's ALPN bookkeeping) carried over."""
        cert, key, chain = leaf if leaf is not None else (None, None, [])
        weak = cert is not None and (p.case in hostile.WEAK or _is_weak_key(key))
        conn = SSL.Connection(self._context(p.tls_min, p.tls_max, weak, tuple(chain)))
        if cert is not None:
            conn.use_certificate(cert)
            conn.use_privatekey(key)
        conn.set_app_data(app_data)
        conn.set_accept_state()
        return conn

    def _context(self, tls_min: str, tls_max: str, weak: bool, chain: tuple):
        cache_key = (tls_min, tls_max, weak, tuple(c.fingerprint(_SHA256) for c in chain))
        if cache_key not in self._contexts:
            ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
            versions = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}
            ctx.set_min_proto_version(versions[tls_min or "1.2"])  # mitmproxy's default minimum
            ctx.set_max_proto_version(versions[tls_max] if tls_max else 0)  # 0: the highest known
            ctx.set_options(SSL.OP_NO_COMPRESSION)
            if weak:
                # OpenSSL refuses to present SHA-1 or RSA-1024 certificates at its default
                # security level; a broken inspection product does present them.
                ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
            ctx.set_alpn_select_callback(alpn_select_callback)
            if mitmproxy_tls.log_master_secret:  # --keylog: the lab's own forging is logged as mitmproxy's is
                ctx.set_keylog_callback(mitmproxy_tls.log_master_secret)
            for cert in chain:
                ctx.add_extra_chain_cert(cert)
            self._contexts[cache_key] = ctx
        return self._contexts[cache_key]


def _is_weak_key(key) -> bool:
    return isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048


def _validity(validity: int | str, upstream: x509.Certificate | None) -> tuple[datetime, datetime]:
    now = datetime.now(timezone.utc)
    if validity == "copy" and upstream is not None:
        return upstream.not_valid_before_utc, upstream.not_valid_after_utc
    if isinstance(validity, int):
        # An hour back absorbs clock skew, as products do, without the engine's two days.
        return now - timedelta(hours=1), now + timedelta(days=validity)
    # "engine", or "copy" without an upstream certificate: mitmproxy's own window.
    return now - timedelta(days=2), now + CERT_EXPIRY


def names_for(sni: str | None, connect_host: str | None, upstream: x509.Certificate | None) -> tuple[str, ...]:
    """The names of a forged leaf: the SNI (or CONNECT host) first, then the upstream's SANs,
    as mitmproxy and the products copy them."""
    names = [n for n in (sni or connect_host,) if n]
    if upstream is not None:
        try:
            san = upstream.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names += [n for n in san.get_values_for_type(x509.DNSName)]
            names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        except x509.ExtensionNotFound:
            names += [str(a.value) for a in upstream.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n.lower(), None)
    return tuple(seen) or ("localhost",)


def leaf_key_label(key) -> str:
    """``rsa-2048`` / ``ec-256``: how the journal names a forged leaf's key."""
    if isinstance(key, rsa.RSAPrivateKey):
        return f"rsa-{key.key_size}"
    return f"ec-{key.curve.key_size}"

