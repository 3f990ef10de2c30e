"""Driving the audited proxy: one client connection per site, as a company machine would make it.

For each site the client asks the proxy for ``CONNECT <site>:<port>``, completes
TLS *without* verifying (so it sees whatever the proxy shows), sends one
``GET /`` marked with an ``X-Lab-Audit`` header, and then, for a certificate that
is not the site's own, checks whether a client that trusts the lab's public root
and the organisation's CA (``--trust``) accepts it: a second handshake with a
verifying context (OpenSSL, security level 2, host name checked).  Whether the
request reached the site is read afterwards from the sites server's journal,
not from what the proxy answered.  The sites run concurrently.

Without ``--trust`` a forged certificate counts as trusted when it has the same
issuer (name and key identifier) as the one the proxy forged for the control
site: the CA a company deploys to its machines.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.audit.sites import CONTROL, DESCRIPTIONS, AuditSites, Site, is_bad, load_trust
from harness.audit.verdict import (
    PASSED,
    RESIGNED_TRUSTED,
    RESIGNED_UNTRUSTED,
    TLS_VERSIONS,
    Seen,
    classify,
    exception_state,
    grade,
    judge,
    key_reuse,
)
from harness.clients.transport import ProxyURL, connect_tunnel, parse_proxy_url, peer_chain, trust_context
from harness.clients.wire import http_request
from harness.errors import NetworkError, ProxyLoginRequired, UsageError
from harness.model.pins import spki_sha256
from harness.pki.ca import certificate_pem, load_certificates
from harness.pki.hostile import REVOKED
from harness.pki.lab import LabPKI

MARKER = "X-Lab-Audit"
_VERSIONS = dict(zip(TLS_VERSIONS, (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2,
                                    ssl.TLSVersion.TLSv1_3)))


@dataclass
class CaseResult:
    case: str
    description: str
    bad: bool
    host: str
    seen: Seen
    outcome: str
    verdict: str


@dataclass
class AuditResult:
    """Everything one audit found; :meth:`to_dict` is the JSON report."""

    proxy: str
    trust: str | None
    listen: str
    cases: list[CaseResult]
    versions: dict[str, bool]
    forged_keys: int              # distinct keys among the forged leaves
    reused_key: bool
    exception: str                # harness.audit.verdict: in place, partial, missing, not judged
    screenmeet: dict[str, str | None]
    crl_fetches: int              # requests for the revoked site's CRL the lab's CRL server saw
    grade: str
    reasons: list[str]
    seconds: float = 0.0
    hosts: list[str] = field(default_factory=list)  # /etc/hosts lines naming every site (for an appliance)
    public_root: str = ""         # the root the proxy must trust for upstream servers

    def to_dict(self) -> dict:
        return asdict(self)


def insecure_context(version: ssl.TLSVersion | None = None, *,
                     maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client context that accepts any certificate and, at security level 0, any key or
    signature (to see what is shown); ``version`` pins the protocol version offered (else TLS 1.2
    up to ``maximum``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.set_alpn_protocols(["http/1.1"])
    if version is not None:
        with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: offering them is the test
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = version
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if maximum is not None:
            ctx.maximum_version = maximum
    return ctx


def same_signer(leaf: x509.Certificate, reference: x509.Certificate) -> bool:
    """True when ``leaf`` has ``reference``'s issuer: the same name and authority key identifier."""
    def aki(cert: x509.Certificate) -> bytes | None:
        try:
            return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        except x509.ExtensionNotFound:
            return None
    return leaf.issuer == reference.issuer and aki(leaf) == aki(reference)


def _tunnel(proxy: ProxyURL, site: Site, timeout: float) -> socket.socket:
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    except OSError as e:
        raise NetworkError(f"cannot connect to the proxy {proxy} ({e.strerror or e})") from None
    try:
        connect_tunnel(sock, site.host, site.port, proxy)
    except BaseException:
        sock.close()
        raise
    return sock


def _tls(proxy: ProxyURL, site: Site, ctx: ssl.SSLContext, timeout: float) -> ssl.SSLSocket:
    sock = _tunnel(proxy, site, timeout)
    try:
        return ctx.wrap_socket(sock, server_hostname=site.host)
    except BaseException:
        sock.close()
        raise


def _reason(e: Exception) -> str:
    if isinstance(e, ssl.SSLCertVerificationError):
        return e.verify_message or str(e)
    if isinstance(e, ssl.SSLError):
        return f"TLS handshake failed: {e.reason or e}"
    return str(e) or type(e).__name__


def look(site: Site, proxy: ProxyURL, marker: str, *, trust_bundle: str | None,
         reference: x509.Certificate | None, timeout: float) -> tuple[Seen, x509.Certificate | None]:
    """Visit ``site`` through ``proxy``: what the client saw (``reached`` is filled in later, from
    the journal) and the leaf it was shown.  A 407 raises :class:`ProxyLoginRequired`."""
    try:
        try:
            tls = _tls(proxy, site, insecure_context(), timeout)
        except ssl.SSLError:
            # Once more offering TLS 1.2 at most: a 512-bit RSA key cannot sign TLS 1.3's RSA-PSS, so a
            # tunnel to such a site fails over 1.3 for want of a key, not because the proxy blocked it.
            tls = _tls(proxy, site, insecure_context(maximum=ssl.TLSVersion.TLSv1_2), timeout)
    except ProxyLoginRequired:
        raise
    except (NetworkError, ssl.SSLError, OSError) as e:
        return Seen(refused=_reason(e)), None
    try:
        leaf = peer_chain(tls, verified=False)[0]
        status = None
        try:
            status = http_request(tls, "GET", site.host, "/", headers={MARKER: marker}).status
        except (NetworkError, OSError):
            pass  # the proxy cut the request off: the journal still tells whether it reached the site
    finally:
        tls.close()
    der = leaf.public_bytes(serialization.Encoding.DER)
    seen = Seen(site_leaf=der == site.leaf, status=status, issuer=leaf.issuer.rfc4514_string(),
                leaf_key=spki_sha256(leaf))
    if seen.site_leaf:
        return seen, leaf
    if trust_bundle is None:
        return replace(seen, trusted=reference is not None and same_signer(leaf, reference),
                       verify_error=None if reference is not None else "no forged control certificate to compare"), leaf
    try:
        _tls(proxy, site, trust_context(trust_bundle), timeout).close()
        return replace(seen, trusted=True), leaf
    except ProxyLoginRequired:
        raise
    except (NetworkError, ssl.SSLError, OSError) as e:
        return replace(seen, trusted=False, verify_error=_reason(e)), leaf


def accepted_version(site: Site, proxy: ProxyURL, version: str, timeout: float) -> bool:
    """True when the proxy completes a handshake with a client offering only ``version``."""
    try:
        _tls(proxy, site, insecure_context(_VERSIONS[version]), timeout).close()
        return True
    except ProxyLoginRequired:
        raise
    except (NetworkError, ssl.SSLError, OSError):
        return False


def check_proxy(proxy: ProxyURL, timeout: float) -> None:
    """A :class:`UsageError` unless something accepts TCP connections at ``proxy``."""
    try:
        socket.create_connection((proxy.host, proxy.port), timeout=timeout).close()
    except OSError as e:
        raise UsageError(f"nothing answers at the proxy {proxy} ({e.strerror or e}); check its address "
                         "and that it runs.") from None


def _control_problem(proxy: ProxyURL, site: Site, listen: str, why: str, public_root: Path) -> UsageError:
    """The one sentence when the control site (a valid certificate) did not come through: nothing
    else can be judged then."""
    if why.startswith("answered") or why.startswith("re-signed"):
        fix = (f"make the proxy trust the lab's public root {public_root} for upstream servers, "
               "and give --trust the CA it forges with")
    else:
        fix = f"it is not an HTTP proxy, or it cannot resolve *.sites.lab.test to {listen}"
    return UsageError(f"the proxy {proxy} did not deliver the lab's valid control site {site.host}:{site.port} "
                      f"({why}); {fix} (see the README, 'Auditing a real inspection proxy').")


def trust_bundle_file(public_root: Path, trust: str, out: Path) -> str:
    """The client's trust: the lab's public root and the ``--trust`` CAs, in one PEM file."""
    certs = [*load_certificates(public_root), *load_trust(trust)]
    out.write_bytes(b"".join(certificate_pem(c).bytes() for c in certs))
    return str(out)


def run_audit(proxy_url: str, *, trust: str | None, state_dir: Path, listen: str = "127.0.0.1",
              timeout: float = 10.0, workers: int = 8) -> AuditResult:
    """Audit the proxy at ``proxy_url`` against every site; bad input is a :class:`UsageError`."""
    started = time.monotonic()
    proxy = parse_proxy_url(proxy_url)
    if trust is not None:
        load_trust(trust)  # a file that is no CA: said before anything starts
    check_proxy(proxy, timeout)
    with AuditSites(state_dir, listen) as sites:
        bundle = None
        if trust is not None:
            bundle = trust_bundle_file(LabPKI.at(state_dir).public_root, trust, sites.work / "trust.pem")
        token = secrets.token_hex(4)

        def visit(site: Site, reference):
            return look(site, proxy, f"{site.case}-{token}", trust_bundle=bundle, reference=reference,
                        timeout=timeout)

        control = sites.sites[CONTROL]
        try:
            seen, reference = visit(control, None)
        except ProxyLoginRequired as e:
            raise UsageError(f"{e}; give the login in the proxy URL (http://USER:PASSWORD@HOST:PORT).") from None
        public_root = LabPKI.at(state_dir).public_root
        if seen.refused is not None:
            raise _control_problem(proxy, control, listen, seen.refused, public_root)
        if not seen.site_leaf and bundle is None:
            seen = replace(seen, trusted=True)  # the control's forger is the reference itself
        others = [s for c, s in sites.sites.items() if c != CONTROL] + sites.screenmeet
        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                futures = {s.case: pool.submit(visit, s, None if seen.site_leaf else reference) for s in others}
                versions = {v: pool.submit(accepted_version, control, proxy, v, timeout) for v in TLS_VERSIONS}
                looks = {CONTROL: (seen, reference)} | {c: f.result() for c, f in futures.items()}
                accepted = {v: f.result() for v, f in versions.items()}
            except ProxyLoginRequired as e:
                raise UsageError(f"{e}; give the login in the proxy URL.") from None
        reached = sites.reached()
        judged = {c: replace(s, reached=f"{c}-{token}" in reached) for c, (s, _) in looks.items()}
        # The control must get through (passed, or re-signed as trusted), else nothing can be judged.
        if (outcome := classify(judged[CONTROL])) == RESIGNED_UNTRUSTED:
            raise _control_problem(proxy, control, listen, "re-signed with a CA the client does not trust: "
                                   f"{judged[CONTROL].verify_error}", public_root)
        if outcome not in (PASSED, RESIGNED_TRUSTED):
            raise _control_problem(proxy, control, listen, f"answered {judged[CONTROL].status or 'nothing'}, "
                                   "not the site", public_root)
        cases = []
        for case in sites.sites:
            outcome = classify(judged[case])
            cases.append(CaseResult(case, DESCRIPTIONS[case], is_bad(case), sites.sites[case].host, judged[case],
                                    outcome, judge(outcome, bad=is_bad(case))))
        # Every leaf the proxy made up, whatever came next (a block page is served under one too).
        forged = [r.seen.leaf_key for r in cases if r.seen.leaf_key and not r.seen.site_leaf]
        # Shown the lab's own ScreenMeet certificate: passed through; another one: inspected (whether or
        # not the request then got through); no handshake: not judged.
        screenmeet = {s.host: PASSED if judged[s.case].site_leaf else
                      None if judged[s.case].refused is not None else "inspected" for s in sites.screenmeet}
        verdicts = {r.case: r.verdict for r in cases}
        g = grade(verdicts, revocation=REVOKED, reused_key=key_reuse(forged), versions=accepted)
        return AuditResult(
            proxy=str(proxy), trust=trust, listen=listen, cases=cases, versions=accepted,
            forged_keys=len({k for k in forged if k}), reused_key=key_reuse(forged),
            exception=exception_state(screenmeet), screenmeet=screenmeet,
            crl_fetches=len(sites.crl.fetches) if sites.crl else 0, grade=g.letter, reasons=g.reasons,
            seconds=round(time.monotonic() - started, 1), hosts=sites.hosts_lines(), public_root=str(public_root))
