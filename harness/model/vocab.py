"""The lab's fixed vocabularies, in one place.

Scenario files, policy files, vendor profiles, client definitions, the
verdict and the reference clients all speak these words; each validates and
judges against the names here, so a new outcome or action is added once.
"""

from __future__ import annotations

import enum

# What the proxy did with a connection (the journal's ``action``).
INTERCEPT = "intercepted"
PASS_THROUGH = "passed-through"

# How a cell turned out, from the journals and the client's exit.
OUTCOMES = ("connected", "warned-continued", "accepted-inspection", "declined", "refused", "tls-error",
            "network-error", "blocked")
# direct: no proxy; proxy: an explicit HTTP proxy; transparent: no proxy configured, the
# traffic is redirected to the proxy by a gateway (harness.lab.gateway).
NETWORKS = ("direct", "proxy", "transparent")
TRUSTS = ("public", "public+org")
# The lab's reference clients and the ScreenMeet URL each talks to by default.
REFERENCE_URLS = {"attended": "https://api.screenmeet.com", "beam": "https://beam.screenmeet.com"}
CLIENTS = tuple(REFERENCE_URLS)

# What an inspection product does with an upstream certificate it does not trust (vendor profiles).
ACTIONS = ("block-page", "block-reset", "re-sign-untrusted", "pass-through", "self-signed", "allow")
# Key types a profile may give its CAs and forged leaves.
KEYS = ("rsa-2048", "rsa-3072", "rsa-4096", "ec-256", "ec-384")

# Hostile certificates as badssl.com catalogues them (harness.pki.hostile makes them).
HOSTILE_CASES = {
    "expired": "expired yesterday (badssl.com: expired)",
    "not-yet-valid": "valid only from tomorrow (expired's twin: a clock-skewed or premature certificate)",
    "wrong-host": "issued for wrong.host.lab.test, not the ScreenMeet names (badssl.com: wrong.host)",
    "self-signed": "a self-signed leaf (badssl.com: self-signed)",
    "untrusted-root": "chains to a root the client does not trust (badssl.com: untrusted-root)",
    "incomplete-chain": "the issuing intermediate is not sent (badssl.com: incomplete-chain)",
    "sha1": "signed with SHA-1 (badssl.com: sha1-intermediate, sha1-2016)",
    "rsa-1024": "a 1024-bit RSA key (OpenSSL's security level 2 refuses RSA under 2048 bits)",
    # Issue 13: certmitm's client tests, and more of badssl.com's catalogue.
    "replaced-key": "the server's own certificate with its key replaced, so its signature fails (certmitm: replaced_key)",
    "other-domain": "a valid certificate from a public CA for another domain (certmitm: real_cert)",
    "leaf-as-ca": "a valid leaf (CA:FALSE) used as a CA to sign the target (certmitm: real_cert_CA)",
    "no-common-name": "valid, its names only in the SAN, no CN in the subject (badssl.com: no-common-name)",
    "no-subject": "valid, an empty subject and a critical SAN (badssl.com: no-subject)",
    "1000-sans": "valid, with 1000 names in the SAN (badssl.com: 1000-sans)",
    "rsa-512": "a 512-bit RSA key (badssl.com: rsa512); OpenSSL refuses it from security level 1 on",
    "root-agency": "issued by a 512-bit RSA, MD5-signed root named 'Root Agency', sent in the chain "
                   "(badssl.com: root-agency, after Microsoft's old test root)",
}


class ExitCode(enum.IntEnum):
    """Exit codes of both reference clients (DESIGN.md section 3)."""

    CONNECTED = 0
    USAGE = 2
    DECLINED = 3
    TLS_FAILED = 4
    PIN_REFUSED = 5
    NETWORK = 6


# The outcome each reference exit code stands for (the verdict reads a client's exit through this).
EXIT_OUTCOMES: dict[int, str] = {
    ExitCode.CONNECTED: "connected",
    ExitCode.USAGE: "usage-error",
    ExitCode.DECLINED: "declined",
    ExitCode.TLS_FAILED: "tls-error",
    ExitCode.PIN_REFUSED: "refused",
    ExitCode.NETWORK: "network-error",
}
