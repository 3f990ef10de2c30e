"""``harness probe HOST``: the diagnostic an IT team runs on a network.

It connects exactly as the reference clients do (same proxy handling, trust
context and pin check from :mod:`harness.clients.transport` and
:mod:`harness.model.pins`), completes the TLS handshake, and writes no
application byte to a connection it has not found decrypted.  It reports the
issuer, the chain (subjects and issuers), the pin result and one
plain-language verdict with the fix.  Three more looks, each only where the
first cannot tell:

* chain not trusted: it looks again without verification, to say who issued
  what was presented, and once more with a made-up name under the host's
  domain as SNI (:func:`probe_name`): a decrypting proxy forges a certificate
  for that name, a tunnel relays the server's own, which does not name it;
* decrypted (no pin matched, or without ``--pins`` an issuer outside the
  public bundle): one credential-free ``HEAD /``, to see whether the proxy
  answers itself with a block page (:mod:`harness.clients.blockpage`), as
  products do for an upstream they do not trust (``--handshake-only`` skips it);
* no pins: whether the chain leads to a root of the public bundle
  (``--public-trust``, default the system store).

The verdict is a pure function, :func:`assess`, of the facts gathered by
:func:`probe`; it applies the rules below one after another, the first that
speaks wins.  Exit codes match the clients': 0 no inspection (or nothing to
tell it by), 4 TLS verification failed, 5 inspected (Beam would refuse), 6
network error (also: the proxy wants a login); 2 for bad input.
"""

from __future__ import annotations

import re
import secrets
import ssl
from dataclasses import asdict, dataclass, replace

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from harness.clients.blockpage import block_page_message, is_block_page
from harness.clients.transport import (
    open_tls,
    parse_proxy_url,
    peer_chain,
    proxy_from_environment,
    trust_context,
)
from harness.clients.wire import http_request
from harness.errors import NetworkError, ProtocolError, ProxyLoginRequired, TlsVerificationError, UsageError
from harness.model.pins import check_pins, load_pins, spki_sha256
from harness.model.values import is_ip_literal, parse_https_url, split_host_port
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
    proxy_status: int | None = None      # the proxy's refusal of CONNECT (407: it wants a login)
    forges: bool | None = None           # a certificate was forged for the made-up SNI (None: not looked)
    public_issuer: bool | None = None    # the chain leads to a public-bundle root (None: not known)
    block_status: int | None = None      # the proxy answered HEAD / itself with a block page


@dataclass(frozen=True)
class ProbeResult:
    facts: Facts
    verdict: str  # see LABELS
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
            "network_error": f["network_error"], "proxy_status": f["proxy_status"], "forges": f["forges"],
            "public_issuer": f["public_issuer"], "block_status": f["block_status"],
        }


def exception_pattern(host: str) -> str:
    """The inspection exception that covers ``host`` and its siblings: ``*.`` and the parent domain."""
    labels = host.rstrip(".").split(".")
    return "*." + ".".join(labels[-2:]) if len(labels) >= 2 else host


LABELS = {"not-inspected": "OK", "trusted-unpinned": "OK", "inspected": "INSPECTED",
          "inspection-likely": "INSPECTION LIKELY", "blocked": "BLOCKED", "untrusted": "NOT TRUSTED",
          "proxy-login": "PROXY LOGIN", "network-error": "NETWORK ERROR"}


def _where(f: Facts) -> str:
    return f" through the proxy {f.proxy}" if f.proxy else ""


def _issuer(f: Facts) -> str:
    return f"CN={f.issuer_cn}" if f.issuer_cn else "an unknown issuer"


def _fix_exception(f: Facts) -> str:
    return f"add a TLS inspection exception for {exception_pattern(f.host)}"


def rule_proxy_login(f: Facts) -> ProbeResult | None:
    """407 to CONNECT: the proxy wants a login (missing, or refused: ``network_error`` is
    :func:`harness.model.proxylogin.login_problem`'s sentence, never the password) before it opens
    any tunnel.  A network error (exit 6) whose fix is the login, not the network."""
    if f.proxy_status != 407:
        return None
    return ProbeResult(f, "proxy-login", NETWORK, f"The proxy {f.proxy} wants a login (HTTP 407 Proxy Authentication "
                       f"Required) before it opens a tunnel to {f.host}:{f.port}; nothing about TLS could be seen: "
                       f"{f.network_error}.",
                       "put the proxy login in the proxy URL (--proxy http://USER:PASSWORD@HOST:PORT or HTTPS_PROXY; "
                       "a login is never sent beyond the proxy), or ask IT to let "
                       f"{exception_pattern(f.host)} through without a proxy login.")


def rule_network(f: Facts) -> ProbeResult | None:
    if not f.network_error:
        return None
    return ProbeResult(f, "network-error", NETWORK, f"Cannot reach {f.host}:{f.port}{_where(f)}: {f.network_error}.",
                       f"check the proxy address and that the network allows TCP {f.port} to {f.host}.")


def rule_untrusted(f: Facts) -> ProbeResult | None:
    """Chain not trusted: the server's own chain (pinned key, or relayed untouched) or a re-signing proxy."""
    if f.trusted:
        return None
    message = f"Certificate not trusted: {f.trust_error}. {f.host} presented a certificate issued by {_issuer(f)}."
    if f.pins_checked and f.pin_matched:
        return ProbeResult(f, "untrusted", TLS_FAILED, message + " It carries the pinned key, so nothing on "
                           "the path re-signs it: this machine's trust store lacks the public CA.",
                           "install the public root CA in the trust store (or pass the right --trust bundle).")
    if f.forges is False:
        path = "the proxy is not decrypting (it relays the server's own chain)" if f.proxy else \
            "nothing on the path re-signs it"
        return ProbeResult(f, "untrusted", TLS_FAILED, message + f" This is the server's own chain, untrusted, and "
                           f"{path}: both clients fail with a TLS error.",
                           f"fix the certificate of the server {f.host} reaches (or the address it resolves to); "
                           "an inspection exception changes nothing here.")
    if f.pins_checked:
        return ProbeResult(f, "untrusted", TLS_FAILED, message + " Its key is not the pinned one: something on "
                           "the path (most likely a TLS inspection proxy whose CA is not deployed here) re-signs "
                           "the connection. Both clients fail with a TLS error.",
                           _fix_exception(f) + " (deploying the inspection CA would only make Beam refuse instead).")
    return ProbeResult(f, "untrusted", TLS_FAILED, message + " Both clients fail with a TLS error.",
                       f"if {_issuer(f)} is your inspection proxy, {_fix_exception(f)}; pass --pins to be sure.")


def decrypted(f: Facts) -> bool:
    """Trusted, and evidently not the real server: no pin matched, or (no pins) a non-public issuer."""
    if not f.trusted:
        return False
    return (not f.pin_matched) if f.pins_checked else f.public_issuer is False


def rule_block_page(f: Facts) -> ProbeResult | None:
    """The proxy decrypts and answers itself: an upstream it does not trust (an exception alone will not help)."""
    if f.block_status is None or not decrypted(f):
        return None
    return ProbeResult(f, "blocked", INSPECTED, f"This network inspects TLS to {f.host} (issuer {_issuer(f)}) and "
                       f"{block_page_message(f.block_status)}: the proxy does not trust the certificate of the "
                       f"server it reaches for {f.host}. An inspection exception alone will not help: the clients "
                       "would then meet that untrusted certificate themselves.",
                       f"find out why the proxy rejects {f.host}'s certificate (the server's chain, or the proxy's "
                       f"trust store) and fix that; then {_fix_exception(f)}.")


def rule_pinned(f: Facts) -> ProbeResult | None:
    if not f.pins_checked:
        return None
    if f.pin_matched:
        return ProbeResult(f, "not-inspected", OK, f"No inspection: the certificate for {f.host} carries ScreenMeet's "
                           f"pinned key (issuer {_issuer(f)}). Beam and the attended client will connect.")
    return ProbeResult(f, "inspected", INSPECTED, f"This network inspects TLS to {f.host} (issuer {_issuer(f)}). Beam "
                       "will refuse to connect, and the attended client will warn of a certificate mismatch.",
                       _fix_exception(f) + ".")


def rule_unpinned(f: Facts) -> ProbeResult:
    """No pins: a chain to a root outside the public bundle is most likely an inspection CA."""
    if f.public_issuer is False:
        return ProbeResult(f, "inspection-likely", INSPECTED, f"Inspection likely: {f.host} presented a certificate "
                           f"issued by {_issuer(f)}, which this machine trusts but which leads to no root of the public "
                           "bundle (an organisation's inspection CA, most likely). Beam would refuse it.",
                           f"pass --pins with ScreenMeet's pins file to be sure; if {_issuer(f)} is your inspection "
                           f"proxy, {_fix_exception(f)}.")
    return ProbeResult(f, "trusted-unpinned", OK, f"Chain trusted ({f.host} presented a certificate issued by "
                       f"{_issuer(f)}); no pins given, so inspection cannot be told from the real server.",
                       "pass --pins with ScreenMeet's pins file to check.")


RULES = (rule_proxy_login, rule_network, rule_untrusted, rule_block_page, rule_pinned)


def assess(f: Facts) -> ProbeResult:
    """The verdict, its exit code, one plain-language message and the fix: the first rule that speaks."""
    for rule in RULES:
        if (result := rule(f)) is not None:
            return result
    return rule_unpinned(f)


def proxy_status(network_error: str) -> int | None:
    """The status of a proxy's refusal of CONNECT, from :func:`harness.clients.transport.connect_tunnel`'s sentence."""
    m = re.search(r"the proxy refused CONNECT \S+: (\d{3})\b", network_error)
    return int(m.group(1)) if m else None


def probe_name(host: str) -> str:
    """A made-up name under ``host``'s domain that no real certificate names exactly."""
    return f"tls-lab-probe-{secrets.token_hex(4)}.{exception_pattern(host).removeprefix('*.')}"


def names_in(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    except x509.ExtensionNotFound:
        return set()


def leads_to(chain: list[x509.Certificate], roots: list[x509.Certificate]) -> bool:
    """Whether a certificate of ``chain`` is a root of ``roots`` or directly issued by one (signature checked)."""
    fingerprints = {r.fingerprint(hashes.SHA256()) for r in roots}
    for cert in chain:
        if cert.fingerprint(hashes.SHA256()) in fingerprints:
            return True
        for root in roots:
            if root.subject == cert.issuer:
                try:
                    cert.verify_directly_issued_by(root)
                    return True
                except (ValueError, TypeError, InvalidSignature):
                    continue
    return False


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


def _public_roots(path: str | None) -> list[x509.Certificate] | None:
    """The public bundle: ``path``, else the system store's file (None when there is none to read)."""
    if path:
        # One clear sentence if missing or corrupt.
        return load_certificates(path, hint="pass --public-trust a PEM bundle of publicly trusted root CAs")
    paths = ssl.get_default_verify_paths()
    for cafile in (paths.cafile, paths.openssl_cafile):
        try:
            with open(cafile or "", "rb") as f:
                return x509.load_pem_x509_certificates(f.read())
        except (OSError, ValueError):
            continue
    return None


def _block_status(conn, host: str) -> int | None:
    """One credential-free ``HEAD /`` on a decrypted connection: the status if the proxy answered with a block page."""
    try:
        resp = http_request(conn.sock, "HEAD", host, "/")
    except (NetworkError, ProtocolError):
        return None
    return resp.status if is_block_page(resp.status, resp.headers.get("content-type"), decrypted=True) else None


def probe(target: str, *, proxy: str | None = None, no_proxy: bool = False, pins_file: str | None = None,
          trust: str | None = None, connect_to: str | None = None, timeout: float = 10.0,
          public_trust: str | None = None, handshake_only: bool = False) -> ProbeResult:
    """Connect to ``target`` as the clients do and assess what was presented (see the module doc for the
    further looks; ``handshake_only`` never writes an application byte)."""
    host, port = parse_target(target)
    pins = load_pins(pins_file) if pins_file else None
    if trust:
        load_certificates(trust)  # one clear sentence if the bundle is missing or corrupt
    roots = _public_roots(public_trust)
    proxy_url = parse_proxy_url(proxy) if proxy else (None if no_proxy else proxy_from_environment(host))
    to = _connect_to(connect_to)
    base = dict(host=host, port=port, proxy=str(proxy_url) if proxy_url else None, connect_to=connect_to, trust=trust)
    # Only to name what was presented, never to trust it.
    look = ssl.create_default_context()
    look.check_hostname, look.verify_mode = False, ssl.CERT_NONE

    def connect(context: ssl.SSLContext, sni: str = host):
        # Another SNI than the host keeps the CONNECT target (or the TCP destination) on the host.
        return open_tls(sni, port, context, proxy=proxy_url, connect_to=to or (None if sni == host else (host, port)),
                        timeout=timeout)

    trusted, trust_error = True, None
    try:
        conn = connect(trust_context(trust))
    except ProxyLoginRequired as e:  # 407: the login is missing or refused (the sentence says which)
        return assess(Facts(**base, network_error=str(e), proxy_status=407))
    except NetworkError as e:
        return assess(Facts(**base, network_error=str(e), proxy_status=proxy_status(str(e))))
    except TlsVerificationError as e:
        trusted, trust_error = False, e.reason
        try:
            conn = connect(look)
        except (NetworkError, TlsVerificationError) as again:
            return assess(Facts(**base, trusted=False, trust_error=f"{e.reason} (and a second look failed: {again})"))
    try:
        chain = peer_chain(conn.sock, verified=trusted)
        infos = tuple(CertInfo.of(c) for c in chain)
        pin = check_pins([i.pin for i in infos], pins) if pins else None
        facts = Facts(
            **base, trusted=trusted, trust_error=trust_error, issuer_cn=conn.issuer_cn, chain=infos,
            tls_version=conn.tls_version, pins_checked=pin is not None, pin_matched=pin.matched if pin else None,
            matched_pin=pin.matched_pin if pin else None, expected_pins=pin.expected if pin else (),
            public_issuer=leads_to(chain, roots) if roots is not None else None,
        )
        block = _block_status(conn, host) if decrypted(facts) and not handshake_only else None
    finally:
        conn.close()
    forges = None
    # An IP literal has no domain to make a name up under (and no SNI): nothing more to tell.
    if not trusted and not (pin and pin.matched) and not is_ip_literal(host):
        name = probe_name(host)
        try:
            other = connect(look, sni=name)
        except (NetworkError, TlsVerificationError):
            pass  # nothing more to tell
        else:
            try:
                forges = name in names_in(peer_chain(other.sock, verified=False)[0])
            finally:
                other.close()
    return assess(replace(facts, block_status=block, forges=forges))


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
    label = LABELS[r.verdict]
    lines.append(f"verdict   {label}: {r.message}")
    if r.fix:
        lines.append(f"fix       {r.fix[0].upper()}{r.fix[1:]}")
    return "\n".join(lines)
