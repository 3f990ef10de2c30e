"""SPKI SHA-256 pins: computing, parsing and checking them.  Pure functions, no I/O
beyond :func:`load_pins` reading a file.

A pin is the base64 SHA-256 digest of a certificate's DER SubjectPublicKeyInfo,
written ``sha256/<base64>`` as OkHttp and HPKP do (curl's ``sha256//<base64>``
is accepted too).  A pins file holds one pin per line; ``#`` starts a comment.
The set should hold the server's current key and a backup key, so that a key
rotation does not lock clients out.

The pin check passes when *any* certificate of the presented chain matches
*any* pin, like OkHttp.  Under TLS inspection the leaf carries the proxy's key
and the chain ends in the organisation's CA, so nothing matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.errors import BadFileError
from harness.model.files import PINS_LIMIT, read_text_bounded


def spki_sha256(obj) -> str:
    """Return the ``sha256/<base64>`` pin of a certificate, public key or private key.

    Accepts :class:`cryptography.x509.Certificate`, public or private key objects,
    or DER certificate bytes.
    """
    if isinstance(obj, (bytes, bytearray)):
        obj = x509.load_der_x509_certificate(bytes(obj))
    if isinstance(obj, x509.Certificate):
        key = obj.public_key()
    elif hasattr(obj, "public_key"):
        key = obj.public_key()
    else:
        key = obj
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256/" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def parse_pin(text: str) -> bytes:
    """Parse one ``sha256/<base64>`` pin into its 32-byte digest.

    Raises :class:`ValueError` with a precise reason for anything else.
    """
    s = text.strip()
    if not s.startswith("sha256/"):
        raise ValueError(f"pin {s[:60]!r} does not start with 'sha256/'")
    body = s[len("sha256/"):]
    # A base64 digest may itself start with '/', so 'sha256//x' is ambiguous:
    # read it as OkHttp's form first and as curl's 'sha256//' form second.
    candidates = [body, body[1:]] if body.startswith("/") else [body]
    for candidate in candidates:
        try:
            digest = base64.b64decode(candidate, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(digest) == 32:
            return digest
    try:
        digest = base64.b64decode(candidates[-1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"pin {s[:60]!r} is not valid base64") from None
    raise ValueError(f"pin {s[:60]!r} decodes to {len(digest)} bytes, a SHA-256 pin has 32")
    return digest


def parse_pins(text: str) -> tuple[bytes, ...]:
    """Parse a pins file's text: one pin per line, blank lines and ``#`` comments ignored.

    Raises :class:`ValueError` naming the line of the first bad pin, or if there is none.
    """
    pins = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            pins.append(parse_pin(line))
        except ValueError as e:
            raise ValueError(f"line {lineno}: {e}") from None
    if not pins:
        raise ValueError("it holds no pin")
    return tuple(pins)


def load_pins(path: str | Path) -> tuple[bytes, ...]:
    """Read and parse a pins file, raising :class:`BadFileError` with advice.

    The file must be a regular UTF-8 text file of at most
    :data:`~harness.model.files.PINS_LIMIT` bytes (a FIFO or ``/dev/zero`` is refused, not read).
    """
    p = Path(path)
    text = read_text_bounded(p, "pins file", PINS_LIMIT,
                             hint="run 'harness pki' or pass --pins with an existing pins file",
                             fix="write one 'sha256/<base64 SPKI digest>' per line")
    try:
        return parse_pins(text)
    except ValueError as e:
        raise BadFileError(
            f"pins file {p} is malformed ({e}); write one 'sha256/<base64 SPKI digest>' per line."
        ) from None


def format_pins(pins: Iterable[str], comment: str = "") -> str:
    """Render pins (``sha256/...`` strings) as a pins file."""
    lines = [f"# {line}" for line in comment.splitlines()] if comment else []
    lines += list(pins)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class PinResult:
    """The outcome of a pin check: ``matched`` and, for messages, what was seen."""

    matched: bool
    matched_pin: str | None
    expected: tuple[str, ...]
    presented: tuple[str, ...]

    def describe(self) -> str:
        if self.matched:
            return f"pin {self.matched_pin} matched"
        return (
            f"no pin matched: expected one of {', '.join(self.expected)}; "
            f"got {', '.join(self.presented) or 'no certificate'}"
        )


def check_pins(chain_spki_pins: Sequence[str], pins: Sequence[bytes]) -> PinResult:
    """Check the pins of a presented chain (``sha256/...`` strings, leaf first) against a pin set.

    Compares in constant time, like urllib3's fingerprint check.
    """
    expected = tuple("sha256/" + base64.b64encode(p).decode() for p in pins)
    for presented in chain_spki_pins:
        try:
            digest = parse_pin(presented)
        except ValueError:
            continue
        for pin, text in zip(pins, expected):
            if hmac.compare_digest(digest, pin):
                return PinResult(True, text, expected, tuple(chain_spki_pins))
    return PinResult(False, None, expected, tuple(chain_spki_pins))
