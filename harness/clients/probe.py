"""``harness probe HOST``: the diagnostic an IT team runs on a network.

It connects exactly as the reference clients do (same proxy handling, trust
context and pin check from :mod:`harness.clients.transport` and
:mod:`harness.model.pins`), completes the TLS handshake, and writes **no
application byte**.  It reports the issuer, the chain (subjects and issuers),
the pin result and one plain-language verdict with the fix.  When the chain is
not trusted it looks again without verification, only to say who issued what
was presented.

The verdict is a pure function, :func:`assess`, of the facts gathered by
:func:`probe`.  Exit codes match the clients': 0 no inspection (or nothing to
tell it by), 4 TLS verification failed, 5 inspected (Beam would refuse), 6
network error; 2 for bad input.
"""

from __future__ import annotations

import ssl
from dataclasses import asdict, dataclass

from cryptography import x509

from harness.clients.transport import (
    open_tls,
    parse_proxy_url,
    peer_chain,
    proxy_from_environment,
    trust_context,
)
from harness.errors import NetworkError, ProxyLoginRequired, TlsVerificationError, UsageError
from harness.model.pins import check_pins, load_pins, spki_sha256
from harness.model.values import parse_https_url, split_host_port
from harness.pki.ca import load_certificates

OK, TLS_FAILED, INSPECTED, NETWORK = 0, 4, 5, 6


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    pin: str
    not_after: str

    @classmethod
    def of(cls, cert: x509.Certificate) -> "CertInfo":
        return cls(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), spki_sha256(cert),
                   cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"))


@dataclass(frozen=True)
class Facts:
    """What one probe saw (no judgement yet)."""

    host: str
    port: int
    proxy: str | None = None
    connect_to: str | None = None
    trust: str | None = None
    network_error: str | None = None
    trusted: bool | None = None
    trust_error: str | None = None
    issuer_cn: str | None = None
    chain: tuple[CertInfo, ...] = ()
    tls_version: str | None = None
    pins_checked: bool = False
    pin_matched: bool | None = None
    matched_pin: str | None = None
    expected_pins: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeResult:
    facts: Facts
    verdict: str  # not-inspected | inspected | untrusted | trusted-unpinned | network-error | proxy-login
    exit_code: int
    message: str
    fix: str | None = None

    def to_dict(self) -> dict:
        f = asdict(self.facts)
        return {
            "host": f["host"], "port": f["port"], "proxy": f["proxy"], "connect_to": f["connect_to"],
            "verdict": self.verdict, "exit_code": self.exit_code, "message": self.message, "fix": self.fix,
            "issuer": f["issuer_cn"], "trusted": f["trusted"], "trust_error": f["trust_error"],
            "tls_version": f["tls_version"], "chain": f["chain"],
            "pins": {"checked": f["pins_checked"], "matched": f["pin_matched"], "matched_pin": f["matched_pin"],
                     "expected": f["expected_pins"]},
            "network_error": f["network_error"],
        }


def exception_pattern(host: str) -> str:
    """The inspection exception that covers ``host`` and its siblings: ``*.`` and the parent domain."""
    labels = host.rstrip(".").split(".")
    return "*." + ".".join(labels[-2:]) if len(labels) >= 2 else host


def assess(f: Facts) -> ProbeResult:
    """The verdict, its exit code, one plain-language message and the fix."""
    where = f" through the proxy {f.proxy}" if f.proxy else ""
    issuer = f"CN={f.issuer_cn}" if f.issuer_cn else "an unknown issuer"
    fix_exception = f"add a TLS inspection exception for {exception_pattern(f.host)}"
    if f.network_error:
        return ProbeResult(f, "network-error", NETWORK, f"Cannot reach {f.host}:{f.port}{where}: {f.network_error}.",
                           f"check the proxy address and that the network allows TCP {f.port} to {f.host}.")
    if not f.trusted:
        message = f"Certificate not trusted: {f.trust_error}. {f.host} presented a certificate issued by {issuer}."
        if f.pins_checked and f.pin_matched:
            return ProbeResult(f, "untrusted", TLS_FAILED, message + " It carries the pinned key, so nothing on "
                               "the path re-signs it: this machine's trust store lacks the public CA.",
                               "install the public root CA in the trust store (or pass the right --trust bundle).")
        if f.pins_checked:
            return ProbeResult(f, "untrusted", TLS_FAILED, message + " Its key is not the pinned one: something on "
                               "the path (most likely a TLS inspection proxy whose CA is not deployed here) re-signs "
                               "the connection. Both clients fail with a TLS error.",
                               fix_exception + " (deploying the inspection CA would only make Beam refuse instead).")
        return ProbeResult(f, "untrusted", TLS_FAILED, message + " Both clients fail with a TLS error.",
                           f"if {issuer} is your inspection proxy, {fix_exception}; pass --pins to be sure.")
    if not f.pins_checked:
        return ProbeResult(f, "trusted-unpinned", OK, f"Chain trusted ({f.host} presented a certificate issued by "
                           f"{issuer}); no pins given, so inspection cannot be told from the real server.",
                           "pass --pins with ScreenMeet's pins file to check.")
    if f.pin_matched:
        return ProbeResult(f, "not-inspected", OK, f"No inspection: the certificate for {f.host} carries ScreenMeet's "
                           f"pinned key (issuer {issuer}). Beam and the attended client will connect.")
    return ProbeResult(f, "inspected", INSPECTED, f"This network inspects TLS to {f.host} (issuer {issuer}). Beam will "
                       "refuse to connect, and the attended client will warn of a certificate mismatch.", fix_exception + ".")


def login_verdict(f: Facts, problem: str) -> ProbeResult:
    """The 407 rule: the proxy wants a login (``problem``, :func:`harness.model.proxylogin.login_problem`'s
    sentence, never the password).  A network error (exit 6) whose fix is the login, not the network."""
    return ProbeResult(f, "proxy-login", NETWORK, f"Cannot reach {f.host}:{f.port}: {problem}.",
                       "put the proxy login in the proxy URL: --proxy http://USER:PASSWORD@HOST:PORT or "
                       "HTTPS_PROXY (a login is never sent beyond the proxy).")


def parse_target(text: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``https://HOST[:PORT]/...`` -> (host, port)."""
    try:
        return parse_https_url(text if "://" in text else f"https://{text}")
    except ValueError as e:
        shown = repr(text) if len(text) <= 100 else repr(text[:80]) + f"... ({len(text)} characters)"
        raise UsageError(f"probe target {shown} is malformed ({e}); write HOST, HOST:PORT or "
                         "https://HOST[:PORT].") from None


def _connect_to(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    try:
        return split_host_port(text)
    except ValueError:
        raise UsageError(f"--connect-to {text!r} is malformed; write it as HOST:PORT.") from None


def probe(target: str, *, proxy: str | None = None, no_proxy: bool = False, pins_file: str | None = None,
          trust: str | None = None, connect_to: str | None = None, timeout: float = 10.0) -> ProbeResult:
    """Connect to ``target`` as the clients do, close after the handshake, and assess what was presented."""
    host, port = parse_target(target)
    pins = load_pins(pins_file) if pins_file else None
    if trust:
        load_certificates(trust)  # one clear sentence if the bundle is missing or corrupt
    proxy_url = parse_proxy_url(proxy) if proxy else (None if no_proxy else proxy_from_environment(host))
    to = _connect_to(connect_to)
    base = dict(host=host, port=port, proxy=str(proxy_url) if proxy_url else None, connect_to=connect_to, trust=trust)
    trusted, trust_error = True, None
    try:
        conn = open_tls(host, port, trust_context(trust), proxy=proxy_url, connect_to=to, timeout=timeout)
    except ProxyLoginRequired as e:
        return login_verdict(Facts(**base, network_error=str(e)), str(e))
    except NetworkError as e:
        return assess(Facts(**base, network_error=str(e)))
    except TlsVerificationError as e:
        trusted, trust_error = False, e.reason
        # Look again, without verification, only to name what was presented.
        look = ssl.create_default_context()
        look.check_hostname, look.verify_mode = False, ssl.CERT_NONE
        try:
            conn = open_tls(host, port, look, proxy=proxy_url, connect_to=to, timeout=timeout)
        except (NetworkError, TlsVerificationError) as again:
            return assess(Facts(**base, trusted=False, trust_error=f"{e.reason} (and a second look failed: {again})"))
    try:
        chain = peer_chain(conn.sock, verified=trusted)
        tls_version = conn.tls_version
    finally:
        conn.close()
    infos = tuple(CertInfo.of(c) for c in chain)
    pin = check_pins([i.pin for i in infos], pins) if pins else None
    return assess(Facts(
        **base, trusted=trusted, trust_error=trust_error, issuer_cn=conn.issuer_cn, chain=infos,
        tls_version=tls_version, pins_checked=pin is not None, pin_matched=pin.matched if pin else None,
        matched_pin=pin.matched_pin if pin else None, expected_pins=pin.expected if pin else (),
    ))


def render_text(r: ProbeResult) -> str:
    """The human report: where, TLS, chain, pins, verdict and fix."""
    f = r.facts
    via = f" via proxy {f.proxy}" if f.proxy else (f" via {f.connect_to}" if f.connect_to else " (direct)")
    lines = [f"target    {f.host}:{f.port}{via}"]
    if not f.network_error:
        trust = f"trusted by {f.trust or 'the system store'}" if f.trusted else f"NOT trusted: {f.trust_error}"
        lines.append(f"TLS       {f.tls_version or '?'}, chain {trust}")
        for n, c in enumerate(f.chain):
            lines.append(f"chain {n:<3} subject {c.subject}")
            lines.append(f"          issuer  {c.issuer}")
            lines.append(f"          key     {c.pin}   (expires {c.not_after})")
        if f.pins_checked:
            lines.append("pins      " + (f"match ({f.matched_pin})" if f.pin_matched else
                                         f"no match: expected one of {', '.join(f.expected_pins)}"))
        else:
            lines.append("pins      not checked (no --pins)")
    label = {"not-inspected": "OK", "trusted-unpinned": "OK", "inspected": "INSPECTED",
             "untrusted": "NOT TRUSTED", "network-error": "NETWORK ERROR", "proxy-login": "PROXY LOGIN"}[r.verdict]
    lines.append(f"verdict   {label}: {r.message}")
    if r.fix:
        lines.append(f"fix       {r.fix[0].upper()}{r.fix[1:]}")
    return "\n".join(lines)
