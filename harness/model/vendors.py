"""Vendor profiles: how real inspection products forge certificates, as data.

``fixtures/vendors.toml`` describes each product (issuer names, chain shape,
key types, leaf validity, what it does with an untrusted upstream
certificate), every value with a cited source.  This module loads and checks
it; :func:`harness.pki.lab.vendor_cas` turns a profile into lab CAs, and the
proxy (:mod:`harness.proxy.forge`) forges leaves the way the profile says.

::

    load_vendors()            {name: VendorProfile}, or one BadFileError sentence
    get_vendor("zscaler")     one profile, or UnknownNameError listing the known ones
    profile.issuing_cn        the CN a client sees as the issuer of a forged leaf
    profile.source_kind(key)  "doc" | "sample" | "lab"
    profile.ca_names()        each CA's DN attributes, root first, signer last

The certificate-shape keys (``ca_dns``, ``ca_path_lens``, ``ca_days``, ``leaf_subject``,
``leaf_hash``, ``leaf_extensions``, and ``leaf_key = "match"``) are turned into
certificates by :mod:`harness.pki.shapes`.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import UnknownNameError
from harness.model.datafile import Table, fixtures_dir, named_tables, read_toml
from harness.model.policy import MATCH_MODES
from harness.model.values import MAX_NAME
from harness.model.vocab import ACTIONS, KEYS

CHAINS = ("root", "intermediate")
SOURCE_KINDS = ("doc", "sample", "lab")
DEFAULT_VENDOR = "generic"

# Certificate shape (keys kept together so other vendor keys merge cleanly).
_SHAPE_KEYS = ("ca_dns", "ca_path_lens", "ca_days", "leaf_subject", "leaf_subject_dn", "leaf_hash",
               "leaf_extensions")
# Keys that describe the product; every other key is a value that cites a source.
_LABEL_KEYS = ("product", "source")
_VALUE_KEYS = ("issuer_cn", "issuer_o", "root_cn", "root_o", "chain", "key", "leaf_key", "leaf_validity",
               "untrusted_upstream", "untrusted_issuer_cn", "block_status", "block_page", *_SHAPE_KEYS,
               # proxy behaviour (issue 13): how exceptions match, which CONNECT ports, added headers
               "exception_match", "connect_ports", "request_headers",
               # upstream TLS (issue 15): the ClientHello the proxy sends the server
               "upstream_tls_min", "upstream_tls_max", "upstream_ciphers")
UPSTREAM_VERSIONS = ("1.2", "1.3")  # what this OpenSSL sends at its default security level
_VALIDITY = "a number of days (1-3650), copy or engine"
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
_HEADER_VALUE = "a printable string of at most 200 characters ({client_ip} stands for the client's address)"


def _header_value(value) -> bool:
    return isinstance(value, str) and len(value) <= 200 and value.isprintable()


def _ports(t: Table) -> tuple[int, ...] | None:
    """``connect_ports``: the TCP ports a CONNECT may name (a non-empty list of 1-65535), or None for any."""
    if "connect_ports" not in t:
        return None
    value = t.get("connect_ports")
    if (not isinstance(value, list) or not value
            or not all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in value)):
        t.fail(f"connect_ports must be a non-empty list of TCP ports (1-65535), e.g. [443, 563], not {value!r}")
    return tuple(value)

# DN attribute names as OpenSSL prints them (harness.pki.shapes maps them to OIDs).
DN_NAMES = ("C", "ST", "L", "O", "OU", "CN", "emailAddress", "serialNumber", "DC")
# Leaf extensions a profile keeps; the SAN is always there (see harness.pki.shapes).
LEAF_EXTENSIONS = ("aki", "ski", "aia", "crldp", "basic-constraints", "key-usage", "eku")
DEFAULT_LEAF_EXTENSIONS = ("aki", "ski", "basic-constraints", "key-usage", "eku")
LEAF_SUBJECTS = ("copy", "cn", "template")
FORGED_CN = "CN=*"  # in leaf_subject_dn: where the forged name goes
LEAF_HASHES = ("sha256", "sha384", "sha512")
MAX_CA_DAYS = 36500


def parse_key(spec: str) -> tuple[str, int]:
    """``"rsa-2048"`` -> ``("rsa", 2048)``, ``"ec-256"`` -> ``("ec", 256)`` (as :mod:`harness.pki.ca` takes them)."""
    kind, _, size = spec.partition("-")
    return kind, int(size)


@dataclass(frozen=True)
class VendorProfile:
    """One inspection product's forging behaviour; see ``fixtures/vendors.toml`` for the keys."""

    name: str
    product: str
    issuer_cn: str
    chain: str
    key: str
    leaf_key: str
    leaf_validity: int | str
    untrusted_upstream: str
    issuer_o: str | None = None
    root_cn: str | None = None
    root_o: str | None = None
    untrusted_issuer_cn: str | None = None
    block_status: int | None = None
    block_page: str | None = None
    # Certificate shape: every CA's DN root first (None: CN and O only), the
    # intermediates' pathLen top down, every CA's lifetime in days, and the leaf's derivation.
    ca_dns: tuple[tuple[str, ...], ...] | None = None
    ca_path_lens: tuple[int, ...] | None = None
    ca_days: tuple[int, ...] | None = None
    leaf_subject: str = "cn"
    leaf_subject_dn: tuple[str, ...] | None = None
    leaf_hash: str = "sha256"
    leaf_extensions: tuple[str, ...] = DEFAULT_LEAF_EXTENSIONS
    # Proxy behaviour: what an exception is matched against (harness.model.policy.MATCH_MODES),
    # the CONNECT ports allowed (None: any), and the headers added toward the server.
    exception_match: str = "sni"
    connect_ports: tuple[int, ...] | None = None
    request_headers: dict[str, str] = field(default_factory=dict, compare=False)
    # Upstream TLS: the versions and TLS 1.2 cipher suites (OpenSSL names, in preference order) the
    # proxy offers the server (harness.proxy.upstreamtls); None: mitmproxy's (OpenSSL's) defaults.
    upstream_tls_min: str | None = None
    upstream_tls_max: str | None = None
    upstream_ciphers: tuple[str, ...] | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def issuing_cn(self) -> str:
        """The CN of the CA that signs forged leaves: what a client shows as the issuer."""
        return self.issuer_cn

    @property
    def untrusted_cn(self) -> str:
        """The CN of the CA used for untrusted upstreams (a lab name when the product has none)."""
        return self.untrusted_issuer_cn or "Acme Corp Untrusted Issuer CA"

    def ca_names(self) -> tuple[tuple[str, ...], ...]:
        """Each CA's DN as ``NAME=value`` attributes, root first, the signer of leaves last."""
        if self.ca_dns is not None:
            return self.ca_dns

        def dn(cn, o):
            return (f"CN={cn}", *((f"O={o}",) if o else ()))
        if self.chain == "intermediate":
            return (dn(self.root_cn, self.root_o), dn(self.issuer_cn, self.issuer_o))
        return (dn(self.issuer_cn, self.issuer_o),)

    def source_kind(self, key: str) -> str:
        """``doc``, ``sample`` or ``lab``: where the value of ``key`` comes from."""
        return self.sources[key].split(":", 1)[0]

    def to_dict(self) -> dict:
        """Every field, for the proxy's JSON configuration."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VendorProfile":
        """The inverse of :meth:`to_dict` (the lab's own JSON: checked when the file was loaded)."""
        data = dict(data)
        for key in ("ca_path_lens", "ca_days", "leaf_extensions", "leaf_subject_dn"):  # JSON gives lists back
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        if data.get("ca_dns") is not None:
            data["ca_dns"] = tuple(tuple(dn) for dn in data["ca_dns"])
        for key in ("connect_ports", "upstream_ciphers"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])  # a JSON list
        return cls(**data)

    def allows_port(self, port: int) -> bool:
        """True when the product relays a CONNECT to ``port`` (any port without ``connect_ports``)."""
        return self.connect_ports is None or port in self.connect_ports


def vendors_file() -> Path:
    """The shipped profiles: ``vendors.toml`` in :func:`harness.model.datafile.fixtures_dir`."""
    return fixtures_dir() / "vendors.toml"


# The CA names become X.509 name attributes, which hold at most 64 characters (RFC 5280).
_X509_NAME = f"a certificate name (1-{MAX_NAME} printable characters)"


def _fits_x509(value: str) -> bool:
    return bool(value.strip()) and len(value) <= MAX_NAME and value.isprintable()


def _profile(path: Path, name: str, table: dict) -> VendorProfile:
    t = Table(f"{path}: vendor {name!r}", table)
    t.unknown_keys([*_LABEL_KEYS, *_VALUE_KEYS])
    values = {
        "issuer_cn": t.str("issuer_cn", required=True, nonempty=True, ok=_fits_x509, valid=_X509_NAME),
        "issuer_o": t.str("issuer_o", ok=_fits_x509, valid=_X509_NAME),
        "root_cn": t.str("root_cn", nonempty=True, ok=_fits_x509, valid=_X509_NAME),
        "root_o": t.str("root_o", ok=_fits_x509, valid=_X509_NAME),
        "chain": t.str("chain", required=True, choices=CHAINS, valid=" or ".join(CHAINS)),
        "key": t.str("key", required=True, choices=KEYS, valid=", ".join(KEYS)),
        # "match": the real server's key type and size (FortiOS, PAN-OS).
        "leaf_key": t.str("leaf_key", required=True, choices=("ca-key", "match", *KEYS)),
        # Days, or a word for "as the real certificate" / "as mitmproxy does".
        "leaf_validity": (t.str("leaf_validity", choices=("copy", "engine"), valid=_VALIDITY)
                          if isinstance(t.get("leaf_validity"), str) else
                          t.number("leaf_validity", 1, 3650, whole=True, required=True, valid=_VALIDITY)),
        "untrusted_upstream": t.str("untrusted_upstream", required=True, choices=ACTIONS),
        "untrusted_issuer_cn": t.str("untrusted_issuer_cn", nonempty=True, ok=_fits_x509, valid=_X509_NAME),
        "block_status": t.number("block_status", 400, 599, whole=True, valid="an HTTP error status (400-599)"),
        "block_page": t.str("block_page", nonempty=True),
        "exception_match": t.str("exception_match", default="sni", choices=MATCH_MODES),
        "connect_ports": _ports(t),
        "request_headers": t.mapping("request_headers", what="header names to values",
                                     example='{ "Z-Forwarded-For" = "{client_ip}" }',
                                     values=_header_value, valid=_HEADER_VALUE),
    }
    values.update(_upstream(t))
    if bad := [k for k in values["request_headers"] if not _HEADER_NAME.fullmatch(k)]:
        t.fail(f"request_headers names {bad[0]!r}, which is not an HTTP header name (letters, digits, '-')")
    sources = t.mapping("source", what="each value's key to where it comes from",
                        example='{ chain = "doc: <where it is documented>" }')
    for key in [k for k in table if k not in _LABEL_KEYS]:
        text = sources.get(key)
        if not isinstance(text, str) or ":" not in text or text.split(":", 1)[0] not in SOURCE_KINDS:
            t.fail(f"{key} needs a source, e.g. source.{key} = \"doc: <where it is documented>\" "
                   f"(kinds: {', '.join(SOURCE_KINDS)})")
    if extra := set(sources) - set(table):
        t.fail(f"sources given for keys it does not set: {', '.join(sorted(extra))}")
    intermediate = values["chain"] == "intermediate"
    if intermediate != (values["root_cn"] is not None):
        t.fail(f"chain = {values['chain']!r} " + (
            "needs root_cn (the root that signs the intermediate)" if intermediate else
            "takes no root_cn (the issuer is the root); use chain = \"intermediate\""))
    action = values["untrusted_upstream"]
    if action == "re-sign-untrusted" and values["untrusted_issuer_cn"] is None:
        t.fail("untrusted_upstream = \"re-sign-untrusted\" needs untrusted_issuer_cn")
    blocks = [k for k in ("block_status", "block_page") if values[k] is not None]
    if action != "block-page" and blocks:
        t.fail("block_status and block_page apply to untrusted_upstream = \"block-page\" only")
    if len(blocks) == 1:
        t.fail("give both block_status and block_page, or neither")
    values.update(_shape(t, values))
    return VendorProfile(name=name, product=t.str("product", default=name), sources=sources, **values)


def _upstream(t: Table) -> dict:
    """The upstream TLS keys: versions this OpenSSL sends, cipher suites it knows."""
    out = {k: t.str(k, choices=UPSTREAM_VERSIONS) for k in ("upstream_tls_min", "upstream_tls_max")}
    if out["upstream_tls_min"] and out["upstream_tls_max"] and out["upstream_tls_min"] > out["upstream_tls_max"]:
        t.fail(f"upstream_tls_min {out['upstream_tls_min']} is above upstream_tls_max {out['upstream_tls_max']}")
    ciphers = t.str_list("upstream_ciphers", nonempty=True, example='["ECDHE-RSA-AES128-GCM-SHA256"]') \
        if "upstream_ciphers" in t else None
    for name in ciphers or ():
        if re.fullmatch(r"@SECLEVEL=[0-5]", name):
            continue  # not a suite: lets OpenSSL offer suites its default security level drops
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).set_ciphers(f"{name}:@SECLEVEL=0")
        except ssl.SSLError:
            t.fail(f"upstream_ciphers names {name!r}, which this OpenSSL ({ssl.OPENSSL_VERSION}) cannot send; "
                   "use OpenSSL cipher names (openssl ciphers -v ALL)")
    out["upstream_ciphers"] = tuple(ciphers) if ciphers else None
    return out


def _dn_ok(dn) -> bool:
    return (isinstance(dn, list) and bool(dn) and all(
        isinstance(a, str) and a.partition("=")[0] in DN_NAMES and a.partition("=")[1]
        and _fits_x509(a.partition("=")[2]) for a in dn))


def _shape(t: Table, values: dict) -> dict:
    """The certificate-shape keys, checked against the chain they describe."""
    shape: dict = {}
    dns = t.get("ca_dns")
    if dns is not None:
        if not isinstance(dns, list) or not dns or not all(_dn_ok(dn) for dn in dns):
            t.fail("ca_dns must list each CA's DN, root first, as NAME=value strings with NAME one of "
                   f"{', '.join(DN_NAMES)}, e.g. ca_dns = [[\"C=US\", \"O=Acme\", \"CN=Acme Root CA\"]]")
        intermediate = values["chain"] == "intermediate"
        if (len(dns) > 1) != intermediate:
            t.fail(f"ca_dns lists {len(dns)} CA(s) but chain = {values['chain']!r} "
                   f"({'needs a root and at least one intermediate' if intermediate else 'takes the root only'})")
        cns = [next((a[3:] for a in dn if a.startswith("CN=")), None) for dn in dns]
        top = values["root_cn"] if intermediate else values["issuer_cn"]
        if cns[0] != top or cns[-1] != values["issuer_cn"]:
            t.fail(f"ca_dns must start with CN={top!r} and end with CN={values['issuer_cn']!r} "
                   "(the root_cn and issuer_cn it spells out)")
        shape["ca_dns"] = tuple(tuple(dn) for dn in dns)
    n_cas = len(dns) if dns is not None else 2 if values["chain"] == "intermediate" else 1
    for key, low, high, length, what in (
            ("ca_path_lens", 0, 9, n_cas - 1, "each intermediate's pathLen, top down"),
            ("ca_days", 1, MAX_CA_DAYS, n_cas, "each CA's lifetime in days, root first")):
        given = t.get(key)
        if given is None:
            continue
        if (not isinstance(given, list) or len(given) != length
                or not all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in given)):
            t.fail(f"{key} must list {length} whole number(s) from {low} to {high}: {what}")
        shape[key] = tuple(given)
    # A pathLen smaller than the number of CAs below it would make the product's own chain invalid.
    for i, path_len in enumerate(shape.get("ca_path_lens", ())):
        below = n_cas - 2 - i
        if path_len < below:
            t.fail(f"ca_path_lens[{i}] = {path_len} is below the {below} CA(s) under that intermediate; "
                   "the chain would not verify")
    shape["leaf_subject"] = t.str("leaf_subject", choices=LEAF_SUBJECTS, default="cn")
    template = t.get("leaf_subject_dn")
    if (template is not None) != (shape["leaf_subject"] == "template"):
        t.fail('leaf_subject = "template" and leaf_subject_dn go together')
    if template is not None:
        if not _dn_ok([a for a in template if a != FORGED_CN] or [None]) or template.count(FORGED_CN) != 1:
            t.fail(f"leaf_subject_dn must list NAME=value attributes and {FORGED_CN} once (where the forged "
                   f"name goes), e.g. leaf_subject_dn = [\"O=Acme\", \"{FORGED_CN}\"]")
        shape["leaf_subject_dn"] = tuple(template)
    shape["leaf_hash"] = t.str("leaf_hash", choices=LEAF_HASHES, default="sha256")
    extensions = t.str_list("leaf_extensions", example='["aki", "ski"]')
    if "leaf_extensions" in t:
        if bad := [e for e in extensions if e not in LEAF_EXTENSIONS]:
            t.fail(f"leaf_extensions names {', '.join(bad)}; known: {', '.join(LEAF_EXTENSIONS)}")
        shape["leaf_extensions"] = extensions
    return shape


def load_vendors(path: str | Path | None = None) -> dict[str, VendorProfile]:
    """Load and check ``vendors.toml``: ``{name: VendorProfile}``."""
    path = Path(path) if path else vendors_file()
    tables = named_tables(path, read_toml(path, missing_hint="pass an existing vendors file"), "vendor")
    return {name: _profile(path, name, table) for name, table in tables.items()}


def get_vendor(name: str, path: str | Path | None = None) -> VendorProfile:
    """The profile called ``name``; :class:`UnknownNameError` lists the known ones."""
    vendors = load_vendors(path)
    if name not in vendors:
        raise UnknownNameError("vendor", name, list(vendors))
    return vendors[name]
