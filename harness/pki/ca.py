"""The lab's PKI, built with ``cryptography`` the way trustme builds its test CAs.

::

    CA()                          a CA (self-signed, or signed by ``parent=``)
    ├── .create_child_ca()        an intermediate
    ├── .issue_cert(*hostnames)   -> LeafCert (variants are keyword arguments)
    └── .mitmproxy_pem()          key + CA chain, as mitmproxy's ``mitmproxy-ca.pem``
    load_certificates(path)       every certificate of a PEM or DER file, or one BadFileError
    (the lab's own files: :mod:`harness.pki.lab`)

Every lab CA is generated fresh and, by default, name-constrained to the lab's
domains and addresses (:mod:`harness.pki.constraints`) and limited to TLS
(extended key usage), so a reviewer who imports one into a real trust store
cannot be attacked with it (DESIGN.md §7).  Lifetimes are a real product's:
roots :data:`ROOT_LIFETIME`, intermediates :data:`INTERMEDIATE_LIFETIME`, and a
certificate never outlives its issuer.  Keys are written 0600.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.errors import BadFileError, UsageError
from harness.model.files import PEM_LIMIT, read_bounded
from harness.model.pins import spki_sha256
from harness.pki.constraints import LAB_DOMAINS, LAB_NETWORKS, lab_name_constraints
from harness.pki.names import display_name

# Roots live years, as inspection products' and public roots do (mitmproxy's own: ten);
# intermediates shorter; leaves a month unless asked (the lab regenerates them on every start).
ROOT_LIFETIME = timedelta(days=3652)
INTERMEDIATE_LIFETIME = timedelta(days=1826)
LEAF_LIFETIME = timedelta(days=30)
SERVER_HOSTNAMES = ("screenmeet.com", "*.screenmeet.com", "scrn.mt", "*.scrn.mt")
REGENERATE_HINT = "run 'harness pki' to generate a fresh lab PKI"

_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
           "sha512": hashes.SHA512}
_CURVES = {256: ec.SECP256R1, 384: ec.SECP384R1, 521: ec.SECP521R1}
_TLS_ONLY = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
_KEY_USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
               "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
# DER AlgorithmIdentifiers of SHA-1 signatures, which cryptography no longer signs with.
_SHA1_ALG_IDS = {rsa.RSAPrivateKey: bytes.fromhex("300d06092a864886f70d0101050500"),
                 ec.EllipticCurvePrivateKey: bytes.fromhex("300906072a8648ce3d0401")}


class Blob:
    """PEM bytes with trustme's small interface: ``.bytes()`` and ``.write_to_path()``."""

    def __init__(self, data: bytes):
        self._data = bytes(data)

    def bytes(self) -> bytes:
        """The PEM bytes."""
        return self._data

    def __repr__(self) -> str:
        # Never the content: a repr of a key blob ends up in logs and test reports.
        return f"<Blob: {len(self._data)} bytes of PEM>"

    def write_to_path(self, path: str | os.PathLike, *, private: bool = False) -> Path:
        """Write atomically (temp file + ``os.replace``), mode 0600 if ``private`` else 0644.

        The temp file is created with its final mode by ``os.open``, so a key is
        never world-readable, not even between create and chmod.
        """
        path = Path(path)
        mode = 0o600 if private else 0o644
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as f:
                # The exact mode, whatever the umask: reviewers and tests rely on
                # 0644/0600.  No fsync: the PKI is regenerated on every lab start.
                os.fchmod(f.fileno(), mode)
                f.write(self._data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path


def _key_usage(*on: str) -> x509.KeyUsage:
    return x509.KeyUsage(**{name: name in on for name in _KEY_USAGES})


def _der(tag: int, content: bytes) -> bytes:
    n, size = len(content), (len(content).bit_length() + 7) // 8
    head = bytes([n]) if n < 128 else bytes([0x80 | size]) + n.to_bytes(size, "big")
    return bytes([tag]) + head + content


def _der_items(der: bytes) -> list[bytes]:
    """Split DER bytes into their top-level TLVs (enough to take a TBSCertificate apart)."""
    items, i = [], 0
    while i < len(der):
        n, j = der[i + 1], i + 2
        if n & 0x80:
            n, j = int.from_bytes(der[j:j + (n & 0x7F)], "big"), j + (n & 0x7F)
        items.append(der[i:j + n])
        i = j + n
    return items


def _sign(builder: x509.CertificateBuilder, key, hash_algorithm: str) -> x509.Certificate:
    if hash_algorithm not in _HASHES:
        raise UsageError(f"unknown hash algorithm {hash_algorithm!r}; "
                         f"choose one of: {', '.join(_HASHES)}.")
    if hash_algorithm != "sha1":
        return builder.sign(key, _HASHES[hash_algorithm]())
    # cryptography refuses SHA-1 for certificates, yet hostile-cert scenarios
    # need one: sign with SHA-256, swap the TBS's signature AlgorithmIdentifier
    # (3rd field) for SHA-1's, and sign the TBS bytes with the key directly.
    alg = next((der for kind, der in _SHA1_ALG_IDS.items() if isinstance(key, kind)), None)
    if alg is None:
        raise UsageError("SHA-1 certificates need an RSA or EC issuer key.")
    seq = builder.sign(key, hashes.SHA256()).tbs_certificate_bytes
    parts = _der_items(seq[2 + (seq[1] & 0x7F if seq[1] & 0x80 else 0):])  # skip SEQUENCE header
    tbs = _der(0x30, b"".join(parts[:2] + [alg] + parts[3:]))
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    sig = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1()) if is_rsa else key.sign(
        tbs, ec.ECDSA(hashes.SHA1()))
    return x509.load_der_x509_certificate(_der(0x30, tbs + alg + _der(0x03, b"\0" + sig)))


def new_key(key_type: str, key_size: int | None):
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=key_size or 2048)
    if key_type == "ec":
        curve = _CURVES.get(key_size or 256)
        if curve is None:
            raise UsageError(f"unknown EC key size {key_size}; choose one of: 256, 384, 521.")
        return ec.generate_private_key(curve())
    raise UsageError(f"unknown key type {key_type!r}; choose one of: ec, rsa.")


def key_pem(key) -> Blob:
    return Blob(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def certificate_pem(cert: x509.Certificate) -> Blob:
    return Blob(cert.public_bytes(serialization.Encoding.PEM))


def validity(lifetime: timedelta, not_before: datetime | None, not_after: datetime | None,
             issuer: x509.Certificate | None) -> tuple[datetime, datetime]:
    """``(not_before, not_after)``: as given, else from a day ago for ``lifetime``, and never past
    ``issuer``'s own end (a certificate that outlives its issuer is invalid for its last part).

    Raises :class:`UsageError` when the issuer has expired before the certificate would begin.
    """
    # A day of back-dating absorbs clock skew between the host and containers.
    now = datetime.now(timezone.utc)
    start = not_before or now - timedelta(days=1)
    end = not_after or now + lifetime
    if issuer is not None and end > issuer.not_valid_after_utc:
        end = issuer.not_valid_after_utc
    if end <= start:
        by = display_name(issuer.subject) if issuer is not None else "the CA"
        raise UsageError(f"{by} is valid only until {end:%Y-%m-%d %H:%M} UTC, before the certificate "
                         f"would begin ({start:%Y-%m-%d %H:%M} UTC); {REGENERATE_HINT}.")
    return start, end


def _builder(subject: x509.Name, issuer: x509.Name, public_key, issuer_public_key,
             dates: tuple[datetime, datetime]) -> x509.CertificateBuilder:
    """What CA and leaf certificates share: names, key, serial, validity, key identifiers."""
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
        .public_key(public_key).serial_number(x509.random_serial_number())
        .not_valid_before(dates[0]).not_valid_after(dates[1])
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),
                       critical=False)
    )


def general_name(name: str) -> x509.GeneralName:
    """An IP address, an e-mail address (``@``), a URI (``://``), else a DNS name (as trustme reads them)."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    if "://" in name:
        return x509.UniformResourceIdentifier(name)
    if "@" in name:
        return x509.RFC822Name(name)
    return x509.DNSName(name.lower() if name.isascii() else name.encode("idna").decode())


class CA:
    """A certificate authority: self-signed, or signed by ``parent``.

    Variants are keyword arguments: ``key_type`` (``"rsa"``/``"ec"``), ``key_size``
    (RSA bits or EC curve size), ``hash_algorithm`` (``"sha1"`` for hostile-cert
    tests), ``not_before``/``not_after`` (default: :data:`ROOT_LIFETIME`, or
    :data:`INTERMEDIATE_LIFETIME` under a ``parent``, never past the parent's
    end), ``path_length``, ``name`` (a whole subject DN instead of ``common_name`` and
    ``organization``), and ``name_constraints`` (critical NameConstraints
    permitting ``permitted_domains`` and ``permitted_networks`` only, and no
    e-mail or URI name but ``permitted_mailboxes``: :func:`harness.pki.constraints.lab_name_constraints`).
    Every CA is limited to TLS server and client certificates (extended key usage).
    """

    def __init__(self, *, common_name: str = "TLS-lab test CA",
                 organization: str | None = None, key_type: str = "rsa",
                 key_size: int | None = None, parent: CA | None = None,
                 name_constraints: bool = True, permitted_domains=LAB_DOMAINS,
                 permitted_networks=LAB_NETWORKS, hash_algorithm: str = "sha256",
                 not_before: datetime | None = None, not_after: datetime | None = None,
                 path_length: int | None = None, name: x509.Name | None = None,
                 permitted_mailboxes=(), _cert=None, _key=None):
        self.parent = parent
        if _cert is not None:  # wrapping files loaded by CA.load()
            self.cert, self.private_key = _cert, _key
        else:
            self.private_key = new_key(key_type, key_size)
            if name is None:  # a full DN (a vendor's, attributes in its order) replaces CN and O
                attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
                if organization:
                    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
                name = x509.Name(attrs)
            signer = parent or self
            dates = validity(INTERMEDIATE_LIFETIME if parent else ROOT_LIFETIME, not_before, not_after,
                             parent.cert if parent else None)
            builder = (
                _builder(name, parent.cert.subject if parent else name,
                         self.private_key.public_key(), signer.private_key.public_key(), dates)
                .add_extension(x509.BasicConstraints(ca=True, path_length=path_length),
                               critical=True)
                .add_extension(_key_usage("digital_signature", "key_cert_sign", "crl_sign"),
                               critical=True)
                # In a CA, the purposes its chain may serve (OpenSSL, Windows, NSS enforce it):
                # an imported lab CA cannot vouch for code signing or S/MIME.
                .add_extension(_TLS_ONLY, critical=False)
            )
            if name_constraints:
                builder = builder.add_extension(
                    lab_name_constraints(permitted_domains, permitted_networks, permitted_mailboxes),
                    critical=True)
            self.cert = _sign(builder, signer.private_key, hash_algorithm)
        self.cert_pem = certificate_pem(self.cert)
        self.private_key_pem = key_pem(self.private_key)

    @classmethod
    def load(cls, cert_path: str | os.PathLike, key_path: str | os.PathLike | None = None, *,
             hint: str = REGENERATE_HINT) -> CA:
        """Load a CA from its PEM certificate and key (``key_path`` defaults to the same file).

        The CA has no ``parent``: its chain is itself.  Raises :class:`BadFileError`.
        """
        cert = load_certificate(cert_path, hint=hint)
        key = load_private_key(key_path or cert_path, hint=hint)
        check_key_pair(cert, key, cert_path, key_path or cert_path)
        return cls(_cert=cert, _key=key)

    def __repr__(self) -> str:
        return f"<CA {self.common_name!r}{' (root)' if self.parent is None else ''}>"

    @property
    def common_name(self) -> str:
        """The CA's subject common name (what a client shows as the issuer)."""
        return display_name(self.cert.subject)

    @property
    def chain(self) -> list[CA]:
        """This CA and its ancestors, up to the root."""
        out, ca = [], self
        while ca is not None:
            out.append(ca)
            ca = ca.parent
        return out

    def create_child_ca(self, **kwargs) -> CA:
        """Create an intermediate CA signed by this one (keyword arguments as :class:`CA`)."""
        return CA(parent=self, **kwargs)

    def issue_cert(self, *hostnames: str, common_name: str | None = None,
                   key_type: str = "ec", key_size: int | None = None, private_key=None,
                   not_before: datetime | None = None, not_after: datetime | None = None,
                   hash_algorithm: str = "sha256") -> LeafCert:
        """Issue a server/client certificate for DNS names, IP addresses, e-mail addresses or URIs.

        ``private_key`` reuses a given key (e.g. to keep a pinned key across
        re-issues, or to forge a cert that carries the CA's own key as mitmproxy
        does).  The common name defaults to the first DNS name.  ``not_after``
        (default :data:`LEAF_LIFETIME` ahead) is clamped to this CA's own end.
        """
        if not hostnames and not common_name:
            raise UsageError("issue_cert needs at least one hostname or a common_name.")
        key = private_key or new_key(key_type, key_size)
        names = [general_name(h) for h in hostnames]
        # The CN defaults to the first DNS name, never an IP address: OpenSSL
        # checks a leaf's CN against DNS name constraints when it has no DNS SAN,
        # and "127.0.0.1" is no permitted DNS name.  No CN means an empty
        # subject, and then the SAN must be critical (RFC 5280 4.2.1.6).
        cn = common_name or next((n.value for n in names if isinstance(n, x509.DNSName)), None)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
        # keyEncipherment only for RSA: only RSA key transport uses it.
        usages = ["digital_signature"] + ["key_encipherment"] * isinstance(key, rsa.RSAPrivateKey)
        builder = (
            _builder(subject, self.cert.subject, key.public_key(), self.private_key.public_key(),
                     validity(LEAF_LIFETIME, not_before, not_after, self.cert))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(*usages), critical=True)
            .add_extension(_TLS_ONLY, critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=not cn)
        cert = _sign(builder, self.private_key, hash_algorithm)
        return LeafCert(cert, key, issuers=[ca.cert for ca in self.chain if ca.parent is not None])

    def mitmproxy_pem(self, *, include_root: bool = True) -> Blob:
        """The key, this CA's cert, then its ancestors' certs: mitmproxy's ``mitmproxy-ca.pem``.

        mitmproxy signs with the first certificate and serves all of them as
        the chain; ``include_root=False`` leaves the root out, as most servers do.
        """
        certs = [ca.cert for ca in self.chain if include_root or ca is self or ca.parent]
        return Blob(self.private_key_pem.bytes() + b"".join(certificate_pem(c).bytes() for c in certs))

    def configure_trust(self, ctx: ssl.SSLContext) -> None:
        """Make ``ctx`` trust this CA."""
        ctx.load_verify_locations(cadata=self.cert_pem.bytes().decode("ascii"))


class LeafCert:
    """An issued certificate with its key and the chain a server should send."""

    def __init__(self, cert: x509.Certificate, private_key, issuers: list[x509.Certificate]):
        self.cert, self.private_key = cert, private_key
        self.private_key_pem = key_pem(private_key)
        # Leaf, then the issuing CAs up to but excluding the root (the client has the root).
        self.cert_chain_pems = [certificate_pem(c) for c in [cert, *issuers]]
        self.spki_pin = spki_sha256(cert)

    def __repr__(self) -> str:
        return f"<LeafCert {display_name(self.cert.subject)!r} pin={self.spki_pin}>"

    def chain_pem(self) -> Blob:
        """The leaf and its intermediates in one PEM, as a server's certificate file."""
        return Blob(b"".join(b.bytes() for b in self.cert_chain_pems))

    def configure_cert(self, ctx: ssl.SSLContext) -> None:
        """Load this certificate, its chain and its key into ``ctx``."""
        # ssl only loads certificates from files; the key never leaves a 0700 temp dir.
        with tempfile.TemporaryDirectory() as tmp:
            chain = self.chain_pem().write_to_path(Path(tmp, "chain.pem"))
            key = self.private_key_pem.write_to_path(Path(tmp, "key.pem"), private=True)
            ctx.load_cert_chain(chain, key)


def read_file(path: str | os.PathLike, what: str, hint: str) -> bytes:
    """The bytes of a certificate or key file: a regular file of at most
    :data:`~harness.model.files.PEM_LIMIT` bytes, else one :class:`BadFileError` sentence."""
    return read_bounded(path, what, PEM_LIMIT, hint=hint)


def load_certificates(path: str | os.PathLike, *,
                      hint: str = REGENERATE_HINT) -> list[x509.Certificate]:
    """Load every certificate of a PEM file (or the one of a DER file).

    Raises :class:`BadFileError`, one sentence ending with ``hint``, if there is none.
    """
    data = read_file(path, "certificate file", hint)
    try:
        if b"-----BEGIN" not in data:
            # A Windows-exported .cer is DER; accept it rather than call it corrupt.
            return [x509.load_der_x509_certificate(data)]
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise BadFileError(
            f"certificate file {path} holds no valid PEM certificate; {hint}.") from None


def load_certificate(path: str | os.PathLike, *,
                     hint: str = REGENERATE_HINT) -> x509.Certificate:
    """Load the first certificate of a PEM file, raising :class:`BadFileError` with advice."""
    return load_certificates(path, hint=hint)[0]


def load_private_key(path: str | os.PathLike, *, hint: str = REGENERATE_HINT):
    """Load an unencrypted PEM private key, raising :class:`BadFileError` with advice."""
    data = read_file(path, "private key file", hint)
    if b"PRIVATE KEY-----" not in data:
        raise BadFileError(
            f"{path} holds no private key (a certificate without its key?); {hint}.")
    try:
        # Skip RSA's consistency check (~50 ms a key, and load() reads two): these
        # are the lab's own files, and callers compare the key with its cert.
        return serialization.load_pem_private_key(data, password=None,
                                                  unsafe_skip_rsa_key_validation=True)
    except TypeError:  # cryptography's way of saying "encrypted"
        raise BadFileError(
            f"private key {path} is encrypted; give the lab an unencrypted key.") from None
    except (ValueError, UnsupportedAlgorithm):
        raise BadFileError(f"private key file {path} is corrupt; {hint}.") from None


def check_key_pair(cert: x509.Certificate, key, cert_path, key_path) -> None:
    if spki_sha256(cert) != spki_sha256(key):
        raise BadFileError(f"private key {key_path} does not belong to certificate {cert_path}; "
                           f"{REGENERATE_HINT}.")
