"""Hostile certificates as badssl.com catalogues them: one definition, two places.

* **upstream** (policy key ``upstream = "<case>"``): the mock server presents
  the certificate on extra ports (one per lane); a ``tunnel`` policy relays it
  to the client untouched, an ``inspect`` policy meets it as an untrusted
  upstream and applies the vendor's action (:mod:`harness.model.vendors`);
* **forged** (policy key ``forge = "<case>"``): the inspection proxy itself
  presents a broken certificate, signed with the organisation's CA the client
  trusts (a misconfigured or buggy inspection product).

Either way a client that validates the chain must fail hard (exit 4) and never
show the bypassable pinning warning: the certificate is invalid, not merely
unpinned.  Certificates are generated fresh; nothing here is committed.

certmitm's client tests (issue 13) attack with what an attacker really holds:
``replaced-key`` re-signs the upstream's own certificate with a key of its own
(the signature no longer verifies); ``other-domain`` and ``leaf-as-ca`` use a
valid certificate a public CA issued for another domain, as it is or as a CA
for the target.  Both come from ``public`` (the lab's public intermediate),
wherever they are presented.  Three badssl.com shapes are *valid*
(:data:`VALID_SHAPES`): a client must accept them for what they are, so on a
server's own key (:func:`server_sites`) they connect even a pinned client.
Every name they add lies under ``lab.test``, inside the lab CAs' name
constraints (:mod:`harness.pki.constraints`).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.errors import UnknownNameError
from harness.model.vocab import HOSTILE_CASES as CASES
from harness.pki.ca import CA, Blob, certificate_pem, key_pem, new_key

WRONG_HOST = "wrong.host.lab.test"
OTHER_DOMAIN = "other-domain.lab.test"   # the attacker's own, validly issued name (certmitm's real_cert)
LEAF_CA_HOST = "leaf-as-ca.lab.test"     # the valid leaf leaf-as-ca signs with
SAN_COUNT = 1000
NO_CN_SUBJECT = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TLS-lab no-common-name (test only)")
# Certificates a verifying client accepts: only their shape is unusual (badssl.com lists them).
VALID_SHAPES = ("no-common-name", "no-subject", "1000-sans")
# Cases whose key or signature OpenSSL refuses to present at its default security level.
WEAK = ("sha1", "rsa-1024", "rsa-512", "root-agency")
# What a verifying client (OpenSSL, security level 2) reports for each case: part of its verify message.
VERIFY_ERRORS = {
    "expired": "certificate has expired",
    "not-yet-valid": "certificate is not yet valid",
    "wrong-host": "Hostname mismatch",
    "self-signed": "self-signed certificate",
    "untrusted-root": "unable to get local issuer certificate",
    "incomplete-chain": "unable to get local issuer certificate",
    "sha1": "too weak",
    "rsa-1024": "too weak",
    "replaced-key": "certificate signature failure",
    "other-domain": "Hostname mismatch",
    "leaf-as-ca": "invalid CA certificate",
    "rsa-512": "too weak",
    "root-agency": "self-signed certificate in certificate chain",
}


def _check(case: str) -> None:
    if case not in CASES:
        raise UnknownNameError("hostile certificate case", case, list(CASES))


def parse_cases(text: str | None) -> tuple[str, ...]:
    """``"expired,sha1"`` -> the hostile cases it names, in order, each once ("" or None: none).

    The one spelling of a list of hostile sites on a command line (``harness pki
    --sites``, the mock server's and the proxy's ``--site-cases``, ``LAB_SITES`` in
    compose.yaml).  Raises :class:`UnknownNameError` for a name that is no case.
    """
    cases = tuple(dict.fromkeys(c.strip() for c in (text or "").split(",") if c.strip()))
    for case in cases:
        _check(case)
    return cases


def self_signed_leaf(hostnames: tuple[str, ...], key, *, hash_algorithm=None) -> x509.Certificate:
    """A leaf (CA:FALSE) whose issuer is itself, for ``hostnames`` (SHA-256 unless ``hash_algorithm``)."""
    hash_algorithm = hash_algorithm or hashes.SHA256
    now = datetime.now(timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0].lstrip("*."))])
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False)
        .sign(key, hash_algorithm())
    )


def weak_rsa_key(bits: int = 512) -> rsa.RSAPrivateKey:
    """An RSA key below the 1024 bits ``cryptography`` will generate (badssl.com's rsa512).

    Two random primes of ``bits/2`` (Miller-Rabin, 40 rounds); the numbers are
    then loaded like any key, which ``cryptography`` still accepts.
    """
    def probable_prime(n: int) -> bool:
        if any(n % p == 0 for p in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)):
            return False
        d, s = n - 1, 0
        while d % 2 == 0:
            d, s = d // 2, s + 1
        for _ in range(40):
            x = pow(secrets.randbelow(n - 3) + 2, d, n)
            if x in (1, n - 1):
                continue
            for _ in range(s - 1):
                x = pow(x, 2, n)
                if x == n - 1:
                    break
            else:
                return False
        return True

    def prime(size: int) -> int:
        while True:  # the top two bits set, so p*q has exactly ``bits`` bits
            c = secrets.randbits(size) | (3 << (size - 2)) | 1
            if (c - 1) % 65537 and probable_prime(c):
                return c

    p, q = prime(bits // 2), prime(bits - bits // 2)
    d = pow(65537, -1, (p - 1) * (q - 1))
    public = rsa.RSAPublicNumbers(65537, p * q)
    return rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), public).private_key()


def rebuild(cert: x509.Certificate, sign_key, *, public_key=None, subject: x509.Name | None = None,
            issuer: x509.Certificate | None = None, names: list[str] | None = None,
            hash_algorithm=None) -> x509.Certificate:
    """``cert`` with fields replaced, signed anew with ``sign_key``: every other field and extension
    is kept, as certmitm edits a real certificate.  ``issuer`` sets the issuer name and the
    authority key identifier; ``names`` the DNS SAN, critical when the subject is empty."""
    public_key = public_key or cert.public_key()
    subject = cert.subject if subject is None else subject
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(issuer.subject if issuer is not None else cert.issuer).public_key(public_key)
         .serial_number(x509.random_serial_number())
         .not_valid_before(cert.not_valid_before_utc).not_valid_after(cert.not_valid_after_utc))
    for ext in cert.extensions:
        value, critical = ext.value, ext.critical
        if isinstance(value, x509.SubjectKeyIdentifier):
            value = x509.SubjectKeyIdentifier.from_public_key(public_key)
        elif isinstance(value, x509.AuthorityKeyIdentifier) and issuer is not None:
            value = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())
        elif isinstance(value, x509.SubjectAlternativeName) and names is not None:
            value, critical = x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), not len(subject)
        b = b.add_extension(value, critical=critical)
    return b.sign(sign_key, (hash_algorithm or hashes.SHA256)())


# AlgorithmIdentifiers (DER) of sha256WithRSAEncryption and md5WithRSAEncryption (RFC 3279, 4055).
_RSA_SHA256 = bytes.fromhex("300d06092a864886f70d01010b0500")
_RSA_MD5 = bytes.fromhex("300d06092a864886f70d0101040500")


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    head = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + head + content


def md5_signed(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> x509.Certificate:
    """``cert`` (signed by RSA ``key`` with SHA-256) signed with MD5 instead: ``cryptography``
    refuses MD5 for certificates, so swap the TBS's signature algorithm and sign its bytes."""
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(_RSA_SHA256) == 1, "an RSA key's TBS names sha256WithRSAEncryption once"
    tbs = tbs.replace(_RSA_SHA256, _RSA_MD5)
    sig = key.sign(tbs, padding.PKCS1v15(), hashes.MD5())
    return x509.load_der_x509_certificate(_der(0x30, tbs + _RSA_MD5 + _der(0x03, b"\0" + sig)))


def root_agency() -> CA:
    """badssl.com's weak root: "CN=Root Agency" (Microsoft's old makecert test root), a 512-bit RSA
    key, self-signed with MD5; name-constrained like every lab CA."""
    shape = CA(common_name="Root Agency", key_type="ec")
    key = weak_rsa_key(512)
    cert = rebuild(shape.cert, key, public_key=key.public_key())
    cert = rebuild(cert, key, issuer=cert)  # its authority key identifier from its own new key
    return CA(_cert=md5_signed(cert, key), _key=key)


def issue(case: str, hostnames: tuple[str, ...], *, issuer, chain: list[x509.Certificate], untrusted,
          sub_ca=None, key=None, public=None, original: x509.Certificate | None = None,
          ) -> tuple[x509.Certificate, object, list[x509.Certificate]]:
    """A certificate of ``case`` for ``hostnames``: ``(leaf, its key, the chain to send after it)``.

    ``issuer`` (a :class:`harness.pki.ca.CA`) signs good certificates and ``chain``
    is what goes with them; ``untrusted`` is a CA the client does not trust;
    ``sub_ca`` an intermediate under a trusted root, for ``incomplete-chain``
    when ``issuer`` is itself a root (nothing to leave out otherwise).
    ``key`` is the leaf key to reuse (a fresh EC key by default).
    ``public`` is ``(CA, chain)`` of a public CA the client trusts (default: ``issuer``
    and ``chain``): it issued the attacker's valid certificates and the upstream's own
    (``original``, the certificate ``replaced-key`` edits; a fresh one by default).
    """
    _check(case)
    now = datetime.now(timezone.utc)
    pub, pub_chain = public or (issuer, chain)
    if case == "rsa-1024":
        key = new_key("rsa", 1024)
    elif case == "rsa-512":
        key = weak_rsa_key(512)
    elif case in ("replaced-key", "other-domain", "leaf-as-ca"):
        key = new_key("ec", None)  # the attacker's own key, whatever the leaf key asked for
    else:
        key = key or new_key("ec", None)
    kwargs: dict = {"private_key": key}
    signer, send = issuer, list(chain)
    if case == "expired":
        kwargs.update(not_before=now - timedelta(days=30), not_after=now - timedelta(days=1))
    elif case == "not-yet-valid":
        kwargs.update(not_before=now + timedelta(days=1), not_after=now + timedelta(days=30))
    elif case == "wrong-host":
        hostnames = (WRONG_HOST,)
    elif case == "self-signed":
        return self_signed_leaf(hostnames, key), key, []
    elif case == "untrusted-root":
        signer, send = untrusted, []
    elif case == "incomplete-chain":
        if not chain:
            if sub_ca is None:
                raise ValueError("incomplete-chain under a root issuer needs sub_ca")
            signer = sub_ca
        send = []
    elif case == "sha1":
        kwargs["hash_algorithm"] = "sha1"
    elif case == "replaced-key":
        real = original or pub.issue_cert(*hostnames).cert
        return rebuild(real, key, public_key=key.public_key()), key, list(pub_chain)
    elif case == "other-domain":
        return pub.issue_cert(OTHER_DOMAIN, private_key=key).cert, key, list(pub_chain)
    elif case == "leaf-as-ca":
        own = pub.issue_cert(LEAF_CA_HOST)
        target = pub.issue_cert(*hostnames, private_key=key).cert
        return rebuild(target, own.private_key, issuer=own.cert), key, [own.cert, *pub_chain]
    elif case in VALID_SHAPES:
        cert = signer.issue_cert(*hostnames, private_key=key).cert
        if case == "1000-sans":
            names = [*hostnames, *(f"san{i}.lab.test" for i in range(SAN_COUNT - len(hostnames)))]
            return rebuild(cert, signer.private_key, names=names), key, send
        subject = x509.Name([] if case == "no-subject" else [NO_CN_SUBJECT])
        return rebuild(cert, signer.private_key, subject=subject, names=list(hostnames)), key, send
    elif case == "root-agency":
        weak_root = root_agency()
        return weak_root.issue_cert(*hostnames, private_key=key).cert, key, [weak_root.cert]
    leaf = signer.issue_cert(*hostnames, **kwargs)
    return leaf.cert, key, send


def server_sites(public_intermediate, hostnames: tuple[str, ...], cases=None, *, server_key=None) -> dict:
    """The mock server's hostile certificates: ``{case: (chain PEM Blob, key PEM Blob)}``.

    Issued by the lab's public intermediate (so only the case's defect is
    wrong); ``untrusted-root`` by a fresh root nobody trusts.  The
    :data:`VALID_SHAPES` carry ``server_key`` (the pinned key): the server
    itself presents its certificate in that shape.
    """
    untrusted = CA(common_name="TLS-lab Untrusted Root CA (test only)", key_type="ec")
    sites = {}
    for case in cases or CASES:
        cert, key, chain = issue(case, hostnames, issuer=public_intermediate,
                                 chain=[public_intermediate.cert], untrusted=untrusted,
                                 key=server_key if case in VALID_SHAPES else None)
        sites[case] = (Blob(b"".join(certificate_pem(c).bytes() for c in [cert, *chain])), key_pem(key))
    return sites


# Revocation is a case of its own, outside CASES: OpenSSL (the reference clients, mitmproxy) checks
# no CRL unless told to, so a revoked certificate is no hard-fail row of the matrix; it is what
# `harness audit` asks of a real inspection product, which should fetch the CRL the leaf names.
REVOKED = "revoked"
REVOKED_DESCRIPTION = "revoked by its CA: the CRL its distribution point names (served by the lab over HTTP) lists it"


def revoked(issuer: CA, hostnames: tuple[str, ...], crl_url: str,
            ) -> tuple[x509.Certificate, object, list[x509.Certificate], bytes]:
    """A certificate for ``hostnames`` from ``issuer`` that ``issuer`` has revoked:
    ``(leaf, its key, the chain to send after it, the CRL in DER)``.

    The leaf's CRL distribution point is ``crl_url`` (plain HTTP, as public CAs
    serve CRLs); the CRL, signed by ``issuer``, lists the leaf's serial as
    key-compromised and is valid for a week.
    """
    key = new_key("ec", None)
    issued = issuer.issue_cert(*hostnames, private_key=key).cert
    b = (x509.CertificateBuilder().subject_name(issued.subject).issuer_name(issued.issuer)
         .public_key(issued.public_key()).serial_number(issued.serial_number)
         .not_valid_before(issued.not_valid_before_utc).not_valid_after(issued.not_valid_after_utc))
    for ext in issued.extensions:
        b = b.add_extension(ext.value, critical=ext.critical)
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
    leaf = b.add_extension(x509.CRLDistributionPoints([point]), critical=False).sign(
        issuer.private_key, hashes.SHA256())
    now = datetime.now(timezone.utc)
    entry = (x509.RevokedCertificateBuilder().serial_number(leaf.serial_number)
             .revocation_date(now - timedelta(hours=1))
             .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False).build())
    crl = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
           .last_update(now - timedelta(hours=1)).next_update(now + timedelta(days=7))
           .add_revoked_certificate(entry)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.private_key.public_key()),
                          critical=False)
           .add_extension(x509.CRLNumber(1), critical=False)
           .sign(issuer.private_key, hashes.SHA256()))
    return leaf, key, [issuer.cert], crl.public_bytes(serialization.Encoding.DER)
