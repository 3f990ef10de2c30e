"""What an audited proxy did with each site, and the grade: pure functions over what the client saw.

Per site the audit client records a :class:`Seen` (did the tunnel and the TLS
handshake succeed, was the leaf the site's own, did a client that trusts the
organisation's CA accept it, did the request reach the site: the site's journal
says).  :func:`classify` turns that into one of :data:`OUTCOMES`:

* ``blocked``: no tunnel, no handshake, or a certificate the client trusts but
  the request never reached the site (a block page or an error answered instead);
* ``passed-through``: the client was shown the site's own certificate, so a
  verifying client still sees what is wrong with it;
* ``re-signed-untrusted``: a forged certificate the client does not trust
  (the product's "untrusted" CA, a self-signed one): the client still gets an error;
* ``re-signed-trusted``: a forged certificate the client trusts, and the request
  went through: for a bad site the client can no longer tell (the dangerous case).

:func:`judge` says whether that was right for the site (bad certificates must
not be re-signed as trusted; valid ones should get through), and :func:`grade`
sums it up with the forged leaves' keys and the TLS versions accepted from clients.
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCKED, PASSED, RESIGNED_UNTRUSTED, RESIGNED_TRUSTED = (
    "blocked", "passed-through", "re-signed-untrusted", "re-signed-trusted")
OUTCOMES = (BLOCKED, PASSED, RESIGNED_UNTRUSTED, RESIGNED_TRUSTED)
# How an outcome was for the site: a bad certificate re-signed as trusted is dangerous, a valid
# site that does not get through is over-blocked.
SAFE, DANGEROUS, OK, OVER_BLOCKED = "safe", "dangerous", "ok", "over-blocked"
# TLS versions a client may offer the proxy; the two before TLS 1.2 are deprecated (RFC 8996).
TLS_VERSIONS = ("TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
OLD_TLS = ("TLS 1.0", "TLS 1.1")
# The exception for *.screenmeet.com: every ScreenMeet host passed through, some, or none.
IN_PLACE, PARTIAL, MISSING, NOT_JUDGED = "in place", "partial", "missing", "not judged"


@dataclass(frozen=True, kw_only=True)
class Seen:
    """What the audit client saw for one site through the proxy."""

    refused: str | None = None       # no tunnel or no TLS handshake: why (the proxy's answer, the alert)
    site_leaf: bool = False          # the leaf shown is the site's own certificate
    trusted: bool = False            # a client trusting the public roots and the org CA accepts the chain
    reached: bool = False            # the request reached the site (its journal holds it)
    status: int | None = None        # the HTTP status the client got back
    issuer: str | None = None        # the shown leaf's issuer
    leaf_key: str | None = None      # the shown leaf's SPKI SHA-256 (pin format)
    verify_error: str | None = None  # why the client did not trust the chain (when it did not)


def classify(seen: Seen) -> str:
    """One of :data:`OUTCOMES` for what the client saw (rules in the module docstring)."""
    if seen.refused is not None:
        return BLOCKED
    if seen.site_leaf:
        return PASSED  # whatever came next, the client was shown the real (bad) certificate
    if not seen.trusted:
        return RESIGNED_UNTRUSTED  # a verifying client stops here, whatever the proxy would do next
    return RESIGNED_TRUSTED if seen.reached else BLOCKED


def judge(outcome: str, *, bad: bool) -> str:
    """Was ``outcome`` right for a site whose certificate is ``bad`` (invalid) or valid?"""
    if bad:
        return DANGEROUS if outcome == RESIGNED_TRUSTED else SAFE
    return OK if outcome in (PASSED, RESIGNED_TRUSTED) else OVER_BLOCKED


def key_reuse(forged_keys: list[str]) -> bool:
    """True when two forged leaves carry the same key (mitmproxy's default: every leaf carries
    one key), so one stolen key decrypts every forged site."""
    keys = [k for k in forged_keys if k]
    return len(set(keys)) < len(keys)


def exception_state(outcomes: dict[str, str | None]) -> str:
    """The ``*.screenmeet.com`` exception from each ScreenMeet host's outcome (None: not judged,
    e.g. the proxy could not reach the lab's ScreenMeet site): passed through everywhere, somewhere,
    nowhere."""
    judged = [o for o in outcomes.values() if o is not None]
    if not judged or len(judged) < len(outcomes):
        return NOT_JUDGED
    passed = sum(o == PASSED for o in judged)
    return IN_PLACE if passed == len(judged) else PARTIAL if passed else MISSING


@dataclass(frozen=True)
class Grade:
    letter: str          # A (nothing wrong) .. F (a bad certificate re-signed as trusted)
    reasons: list[str]   # every finding that lowered it, worst first


def grade(verdicts: dict[str, str], *, revocation: str | None = None, reused_key: bool = False,
          versions: dict[str, bool] | None = None) -> Grade:
    """The proxy's grade from each site's verdict (``{case: verdict}``), first rule that speaks:

    * F: a bad certificate (other than a revoked one) re-signed as trusted;
    * C: a revoked certificate re-signed as trusted (``revocation``: its case name),
      or TLS 1.0/1.1 accepted from clients;
    * B: forged leaves share one key, or a valid site was blocked;
    * A: otherwise.
    """
    dangerous = [c for c, v in verdicts.items() if v == DANGEROUS and c != revocation]
    old = [v for v in OLD_TLS if (versions or {}).get(v)]
    over = [c for c, v in verdicts.items() if v == OVER_BLOCKED]
    reasons = []
    if dangerous:
        reasons.append(f"re-signs bad certificates as trusted: {', '.join(dangerous)}")
    if revocation and verdicts.get(revocation) == DANGEROUS:
        reasons.append("re-signs a revoked certificate as trusted (it checks no CRL)")
    if old:
        reasons.append(f"accepts {' and '.join(old)} from clients")
    if reused_key:
        reasons.append("its forged leaves share one key")
    if over:
        reasons.append(f"blocks valid sites: {', '.join(over)}")
    if dangerous:
        letter = "F"
    elif (revocation and verdicts.get(revocation) == DANGEROUS) or old:
        letter = "C"
    elif reused_key or over:
        letter = "B"
    else:
        letter = "A"
    return Grade(letter, reasons)
