"""ClientHello fingerprints: JA3 and JA4, pure functions over what a ClientHello offers.

:class:`Hello` holds what a fingerprint reads (versions, cipher suites, extensions
in wire order, groups, point formats, signature algorithms, ALPN, SNI);
:meth:`Hello.from_client_hello` takes it from mitmproxy's parser
(:class:`mitmproxy.tls.ClientHello`, duck-typed: this module imports nothing of
mitmproxy) and reads the few extension bodies the fingerprints need.

* JA3 (Salesforce, github.com/salesforce/ja3, README "How it works"):
  ``SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats``, decimal
  values joined by ``-``, GREASE values (RFC 8701) left out, then its MD5.
* JA4 (FoxIO, github.com/FoxIO-LLC/ja4, technical_details/JA4.md): ``a_b_c`` with
  ``a`` = protocol ``t``, TLS version (highest supported_versions entry, else the
  legacy version), ``d``/``i`` (SNI or not), the number of ciphers and of
  extensions (two digits each, GREASE left out), the first and last character of
  the first ALPN value (``00`` without ALPN); ``b`` = first 12 hex of the SHA-256 of
  the sorted cipher list (4-digit hex, comma joined); ``c`` = the same of the sorted
  extensions without SNI and ALPN, ``_``, then the signature algorithms in wire order.

Both are tested against the examples their specifications publish
(``tests/model/test_tlsfingerprint.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SNI, GROUPS, POINT_FORMATS, SIG_ALGS, ALPN, SUPPORTED_VERSIONS = 0x0000, 0x000A, 0x000B, 0x000D, 0x0010, 0x002B
_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2"}
VERSION_NAMES = {0x0304: "TLSv1.3", 0x0303: "TLSv1.2", 0x0302: "TLSv1.1", 0x0301: "TLSv1", 0x0300: "SSLv3"}


def is_grease(value: int) -> bool:
    """RFC 8701's reserved values (0x0A0A, 0x1A1A, ... 0xFAFA): clients send them to keep servers honest."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def _u16_list(body: bytes, length_bytes: int) -> tuple[int, ...]:
    """A list of 16-bit values behind a length of ``length_bytes`` bytes (a malformed body: what fits)."""
    n = int.from_bytes(body[:length_bytes], "big")
    data = body[length_bytes:length_bytes + n]
    return tuple(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data) - 1, 2))


@dataclass(frozen=True)
class Hello:
    """What a ClientHello offers, in wire order (GREASE values kept: the fingerprints drop them)."""

    legacy_version: int
    ciphers: tuple[int, ...]
    extensions: tuple[int, ...]
    groups: tuple[int, ...] = ()
    point_formats: tuple[int, ...] = ()
    sig_algs: tuple[int, ...] = ()
    alpn: tuple[str, ...] = ()
    sni: str | None = None
    supported_versions: tuple[int, ...] = ()

    @classmethod
    def from_client_hello(cls, ch) -> Hello:
        """From a :class:`mitmproxy.tls.ClientHello` (its ``cipher_suites``, ``extensions``,
        ``sni``, ``alpn_protocols`` and ``raw_bytes``)."""
        bodies: dict[int, bytes] = {}
        for ext_type, body in ch.extensions:
            bodies.setdefault(ext_type, body if isinstance(body, bytes) else b"")
        raw = ch.raw_bytes(wrap_in_record=False)
        formats = bodies.get(POINT_FORMATS, b"")
        return cls(
            legacy_version=int.from_bytes(raw[:2], "big"),  # client_version opens the ClientHello body
            ciphers=tuple(ch.cipher_suites),
            extensions=tuple(t for t, _ in ch.extensions),
            groups=_u16_list(bodies.get(GROUPS, b""), 2),
            point_formats=tuple(formats[1:1 + formats[0]]) if formats else (),
            sig_algs=_u16_list(bodies.get(SIG_ALGS, b""), 2),
            alpn=tuple(p.decode("latin-1") for p in ch.alpn_protocols),
            sni=ch.sni,
            supported_versions=_u16_list(bodies.get(SUPPORTED_VERSIONS, b""), 1),
        )

    @property
    def versions(self) -> tuple[int, ...]:
        """The versions offered: supported_versions (TLS 1.3 clients), else the legacy version."""
        return tuple(v for v in self.supported_versions if not is_grease(v)) or (self.legacy_version,)

    def summary(self) -> dict:
        """What the server journals of it (names where TLS has them, hex otherwise)."""
        return {
            "versions": [VERSION_NAMES.get(v, f"0x{v:04x}") for v in self.versions],
            "ciphers": [f"0x{c:04x}" for c in self.ciphers if not is_grease(c)],
            "groups": [f"0x{g:04x}" for g in self.groups if not is_grease(g)],
            "alpn": list(self.alpn),
            "sni": self.sni,
            "ja3": ja3(self),
            "ja4": ja4(self),
        }


def _dec(values) -> str:
    return "-".join(str(v) for v in values if not is_grease(v))


def ja3_string(h: Hello) -> str:
    """The JA3 text before hashing: ``769,47-53-...,0-10-11,23-24-25,0``."""
    return ",".join((str(h.legacy_version), _dec(h.ciphers), _dec(h.extensions), _dec(h.groups),
                     "-".join(str(p) for p in h.point_formats)))


def ja3(h: Hello) -> str:
    """The JA3 fingerprint: the MD5 of :func:`ja3_string`."""
    return hashlib.md5(ja3_string(h).encode()).hexdigest()  # noqa: S324 - JA3 is defined as MD5


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "000000000000"


def _alpn_chars(alpn: tuple[str, ...]) -> str:
    if not alpn or not alpn[0]:
        return "00"
    first = alpn[0]
    if first[0].isascii() and first[0].isalnum() and first[-1].isascii() and first[-1].isalnum():
        return first[0] + first[-1]
    hexed = first.encode("latin-1").hex()
    return hexed[0] + hexed[-1]


def ja4_parts(h: Hello) -> tuple[str, str, str]:
    """JA4's three parts, and the raw strings ``b`` and ``c`` hash: (a, b_raw, c_raw)."""
    ciphers = [c for c in h.ciphers if not is_grease(c)]
    extensions = [e for e in h.extensions if not is_grease(e)]
    version = _JA4_VERSIONS.get(max(h.versions), "00")
    a = (f"t{version}{'d' if h.sni else 'i'}{min(len(ciphers), 99):02d}{min(len(extensions), 99):02d}"
         f"{_alpn_chars(h.alpn)}")
    b_raw = ",".join(f"{c:04x}" for c in sorted(ciphers))
    c_raw = ",".join(f"{e:04x}" for e in sorted(e for e in extensions if e not in (SNI, ALPN)))
    sig = [s for s in h.sig_algs if not is_grease(s)]
    if sig:
        c_raw += "_" + ",".join(f"{s:04x}" for s in sig)
    return a, b_raw, c_raw


def ja4(h: Hello) -> str:
    """The JA4 fingerprint, e.g. ``t13d1516h2_8daaf6152771_e5627efa2ab1``."""
    a, b_raw, c_raw = ja4_parts(h)
    return f"{a}_{_hash12(b_raw)}_{_hash12(c_raw)}"
