"""Grading a ClientHello's security A/B/C/F, with the rules of the NDSS 2017 interception study.

Durumeric et al., "The Security Impact of HTTPS Interception", NDSS 2017,
section "Measuring security impact" (the grading scale Cloudflare's MITMEngine
kept: fputil/grade.go, A optimal, B suboptimal, C known attack, F severely broken)
grade what a client *offers*, since an attacker on the path may pick any of it:

* **F** – it offers a suite with no encryption (NULL), export-grade keys (EXPORT),
  no authentication (anonymous DH/ECDH) or single DES;
* **C** – otherwise, it offers RC4 (broken, RFC 7465);
* **A** – otherwise, its first choice is an AEAD suite with forward secrecy
  (every TLS 1.3 suite; ECDHE/DHE with GCM, CCM or ChaCha20-Poly1305);
* **B** – otherwise (its first choice is CBC, 3DES, or without forward secrecy).

:func:`grade` is pure; the mock server journals it for every ClientHello
(``tls.grade``), which through inspection is the proxy's upstream ClientHello.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.model.ciphersuites import CIPHER_SUITES
from harness.model.tlsfingerprint import is_grease

GRADES = ("A", "B", "C", "F")
_SIGNALS = (0x00FF, 0x5600)  # renegotiation info and fallback SCSVs: signals, not suites


@dataclass(frozen=True)
class Grade:
    """A letter and the reason for it, in one sentence."""

    letter: str
    reason: str

    def to_dict(self) -> dict:
        return {"letter": self.letter, "reason": self.reason}


def _broken(name: str) -> str | None:
    """Why a suite makes the offer severely broken (F), or None."""
    if "_NULL_" in name or name.endswith("_NULL"):
        return "no encryption (NULL)"
    if "EXPORT" in name:
        return "export-grade keys (EXPORT)"
    if "_anon_" in name:
        return "no authentication (anonymous)"
    if "_WITH_DES_" in name or "_DES40_" in name:
        return "single DES"
    return None


def _aead_fs(name: str) -> bool:
    if name.startswith("TLS_") and "_WITH_" not in name:  # TLS 1.3 suites: always AEAD, always (EC)DHE
        return True
    aead = any(m in name for m in ("_GCM_", "_CCM", "_CHACHA20_POLY1305_"))
    return aead and (name.startswith(("TLS_ECDHE_", "TLS_DHE_")) and "_PSK_" not in name)


def grade(ciphers: Iterable[int]) -> Grade:
    """The grade of a ClientHello offering ``ciphers`` (wire order; GREASE and SCSVs ignored)."""
    offered = [c for c in ciphers if not is_grease(c) and c not in _SIGNALS]
    names = [(c, CIPHER_SUITES.get(c)) for c in offered]
    for code, name in names:
        if name and (why := _broken(name)):
            return Grade("F", f"offers {name} (0x{code:04x}): {why}")
    for code, name in names:
        if name and "_RC4_" in name:
            return Grade("C", f"offers {name} (0x{code:04x}): RC4 is broken (RFC 7465)")
    if not names:
        return Grade("F", "offers no cipher suite")
    code, name = names[0]
    if name is None:
        return Grade("B", f"its first suite 0x{code:04x} is not a known AEAD suite with forward secrecy")
    if _aead_fs(name):
        return Grade("A", f"its first suite {name} is AEAD with forward secrecy")
    return Grade("B", f"its first suite {name} is " + (
        "not AEAD (CBC or 3DES)" if not any(m in name for m in ("_GCM_", "_CCM", "_POLY1305_"))
        else "AEAD without forward secrecy"))
