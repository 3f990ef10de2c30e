"""What a vendor profile's certificates look like, as pure rules (no I/O, no mitmproxy).

A real inspection product is recognised by the shape of what it presents: the
full DNs of its CAs (every attribute, in order, spelled exactly), how many
intermediates it sends and their pathLen, how long each certificate lives, and
how a forged leaf is derived from the real server's certificate (subject
copied or not, key type, signature hash, which extensions it carries).

::

    parse_dn(["C=US", "CN=Zscaler Root CA"])   -> x509.Name, attributes in the order given
    dn_strings(name)                           -> ["C=US", "CN=Zscaler Root CA"] (the inverse)
    dn_mailboxes(dns)                          -> the emailAddress values (to permit in name constraints)
    leaf_key_spec("match", upstream_key)       -> "ec-256" for an ECDSA P-256 server (FortiOS, PAN-OS)
    leaf_subject(mode, names, upstream)        -> the forged leaf's subject
    forge_leaf(...)                            -> the forged leaf, extensions as the shape says
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from harness.model.values import is_ip_literal
from harness.model.vendors import DEFAULT_LEAF_EXTENSIONS, FORGED_CN

# The attribute names the profiles use, as OpenSSL prints them.
DN_ATTRIBUTES = {
    "C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME, "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME,
    "emailAddress": NameOID.EMAIL_ADDRESS, "serialNumber": NameOID.SERIAL_NUMBER,
    "DC": NameOID.DOMAIN_COMPONENT,
}
_NAMES = {oid: name for name, oid in DN_ATTRIBUTES.items()}

# Leaf extensions (harness.model.vendors.LEAF_EXTENSIONS): the SAN is always there (every
# client stack matches names against it; cryptography cannot build the extension-less v1
# certificates some products sent).  "aia" and "crldp" are the product's own, and point
# under .invalid (RFC 6761): no client ever fetches anything from the real vendor.
NOWHERE_URL = "http://{vendor}.invalid/{what}"


def parse_dn(attributes) -> x509.Name:
    """``["C=US", "O=Zscaler Inc.", "CN=..."]`` -> an :class:`x509.Name` with the attributes in that order.

    Values are kept exactly (a trailing space is part of a real CN).  Raises
    :class:`ValueError` naming the first attribute that is not ``NAME=value``
    with a known NAME.
    """
    out = []
    for text in attributes:
        name, sep, value = str(text).partition("=")
        if not sep or name not in DN_ATTRIBUTES or not value.strip():
            raise ValueError(f"{text!r} is not NAME=value with NAME one of {', '.join(DN_ATTRIBUTES)}")
        out.append(x509.NameAttribute(DN_ATTRIBUTES[name], value))
    if not out:
        raise ValueError("a DN needs at least one attribute")
    return x509.Name(out)


def dn_strings(name: x509.Name) -> list[str]:
    """The inverse of :func:`parse_dn`: every attribute of ``name`` in order, as ``NAME=value``."""
    return [f"{_NAMES.get(a.oid, a.oid.dotted_string)}={a.value}" for a in name]


def dn_common_name(attributes) -> str | None:
    """The CN of a DN written as in :func:`parse_dn` (None without one)."""
    return next((a.split("=", 1)[1] for a in attributes if str(a).startswith("CN=")), None)


def dn_mailboxes(dns) -> tuple[str, ...]:
    """Every ``emailAddress`` of these DNs: a constrained lab CA must permit exactly these
    mailboxes, or OpenSSL rejects the subordinate CA whose subject carries one."""
    return tuple(dict.fromkeys(a.split("=", 1)[1] for dn in dns for a in dn if a.startswith("emailAddress=")))


def key_spec(public_key) -> str:
    """``rsa-2048`` / ``ec-256``: a key as the profiles and the journal name it."""
    if isinstance(public_key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return f"rsa-{public_key.key_size}"
    if isinstance(public_key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return f"ec-{public_key.curve.key_size}"
    raise ValueError(f"unsupported key {type(public_key).__name__}")


def leaf_key_spec(spec: str, upstream_key=None, *, fallback: str = "rsa-2048") -> str:
    """The key a forged leaf gets: ``spec`` itself, or for ``"match"`` the upstream's key type
    and size (FortiOS and PAN-OS: an ECDSA server gets an ECDSA leaf).  Without an upstream
    key (nothing to match, e.g. the upstream failed before its certificate) ``fallback``."""
    if spec != "match":
        return spec
    if upstream_key is None:
        return fallback
    try:
        return key_spec(upstream_key)
    except ValueError:  # Ed25519 and the like: no product forges those; RSA as they do
        return fallback


def leaf_subject(mode: str, names: tuple[str, ...], upstream: x509.Certificate | None,
                 template: tuple[str, ...] | None = None) -> x509.Name:
    """A forged leaf's subject: ``"copy"`` the upstream's whole subject (Zscaler, PAN-OS: "the
    same fields as the original except the issuer"), ``"cn"`` only CN = the first DNS name,
    ``"template"`` the product's own attributes with that CN where ``template`` says ``CN=*``
    (Umbrella).  Without a DNS name (an IP address only) the CN is left out: OpenSSL would
    check an IP-shaped CN against the DNS name constraints."""
    if mode == "copy" and upstream is not None and len(upstream.subject):
        return upstream.subject
    cn = next((n for n in names if not is_ip_literal(n)), None)
    if mode == "template" and template:
        return parse_dn([f"CN={cn}" if a == FORGED_CN else a for a in template if cn or a != FORGED_CN])
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])


@dataclass(frozen=True)
class LeafShape:
    """How a profile derives a leaf from the real certificate (hashable: it keys the forger's cache)."""

    subject: str = "cn"
    subject_dn: tuple[str, ...] | None = None
    hash: str = "sha256"
    extensions: tuple[str, ...] = DEFAULT_LEAF_EXTENSIONS
    vendor: str = "lab"

    @property
    def is_default(self) -> bool:
        """The lab's (and mitmproxy's) own leaf shape: nothing for the lab to forge differently."""
        return (self.subject, self.hash, self.extensions) == ("cn", "sha256", DEFAULT_LEAF_EXTENSIONS)

    @classmethod
    def of(cls, vendor) -> LeafShape:
        """The shape of a :class:`harness.model.vendors.VendorProfile` (defaults without one)."""
        if vendor is None:
            return cls()
        return cls(subject=vendor.leaf_subject, subject_dn=vendor.leaf_subject_dn, hash=vendor.leaf_hash,
                   extensions=tuple(vendor.leaf_extensions), vendor=vendor.name)


def leaf_extensions(shape: LeafShape, names: list[x509.GeneralName], subject: x509.Name, public_key,
                    issuer_public_key) -> list[tuple[x509.ExtensionType, bool]]:
    """The extensions of a forged leaf, in the order products write them: ``(extension, critical)``."""
    on = set(shape.extensions)
    out: list[tuple[x509.ExtensionType, bool]] = []
    if "basic-constraints" in on:
        out.append((x509.BasicConstraints(ca=False, path_length=None), True))
    if "key-usage" in on:
        rsa_key = isinstance(public_key, rsa.RSAPublicKey)
        out.append((x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
                                  data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                  crl_sign=False, encipher_only=False, decipher_only=False), True))
    if "eku" in on:
        out.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                    False))
    if "ski" in on:
        out.append((x509.SubjectKeyIdentifier.from_public_key(public_key), False))
    if "aki" in on:
        out.append((x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), False))
    if "aia" in on:
        url = NOWHERE_URL.format(vendor=shape.vendor, what="ca.crt")
        out.append((x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url))]), False))
    if "crldp" in on:
        url = NOWHERE_URL.format(vendor=shape.vendor, what="crl.crl")
        out.append((x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None,
            crl_issuer=None)]), False))
    if names:
        # RFC 5280 4.2.1.6: with an empty subject the SAN must be critical.
        out.append((x509.SubjectAlternativeName(names), not len(subject)))
    return out


def forge_leaf(shape: LeafShape, *, issuer_cert: x509.Certificate, issuer_key, names: list[x509.GeneralName],
               subject: x509.Name, key, dates: tuple[datetime, datetime]) -> x509.Certificate:
    """Build and sign the forged leaf (``dates`` already clamped to the issuer's end)."""
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(dates[0]).not_valid_after(dates[1]))
    for ext, critical in leaf_extensions(shape, names, subject, key.public_key(), issuer_key.public_key()):
        builder = builder.add_extension(ext, critical=critical)
    algorithm = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[shape.hash]
    return builder.sign(issuer_key, algorithm())
