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
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.errors import UnknownNameError
from harness.model.vocab import HOSTILE_CASES as CASES
from harness.pki.ca import CA, Blob, certificate_pem, key_pem, new_key

WRONG_HOST = "wrong.host.lab.test"
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


def issue(case: str, hostnames: tuple[str, ...], *, issuer, chain: list[x509.Certificate], untrusted,
          sub_ca=None, key=None) -> tuple[x509.Certificate, object, list[x509.Certificate]]:
    """A certificate of ``case`` for ``hostnames``: ``(leaf, its key, the chain to send after it)``.

    ``issuer`` (a :class:`harness.pki.ca.CA`) signs good certificates and ``chain``
    is what goes with them; ``untrusted`` is a CA the client does not trust;
    ``sub_ca`` an intermediate under a trusted root, for ``incomplete-chain``
    when ``issuer`` is itself a root (nothing to leave out otherwise).
    ``key`` is the leaf key to reuse (a fresh EC key by default).
    """
    _check(case)
    now = datetime.now(timezone.utc)
    key = new_key("rsa", 1024) if case == "rsa-1024" else (key or new_key("ec", None))
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
    leaf = signer.issue_cert(*hostnames, **kwargs)
    return leaf.cert, key, send


def server_sites(public_intermediate, hostnames: tuple[str, ...], cases=None) -> dict:
    """The mock server's hostile certificates: ``{case: (chain PEM Blob, key PEM Blob)}``.

    Issued by the lab's public intermediate (so only the case's defect is
    wrong); ``untrusted-root`` by a fresh root nobody trusts.
    """
    untrusted = CA(common_name="TLS-lab Untrusted Root CA (test only)", key_type="ec")
    sites = {}
    for case in cases or CASES:
        cert, key, chain = issue(case, hostnames, issuer=public_intermediate,
                                 chain=[public_intermediate.cert], untrusted=untrusted)
        sites[case] = (Blob(b"".join(certificate_pem(c).bytes() for c in [cert, *chain])), key_pem(key))
    return sites
