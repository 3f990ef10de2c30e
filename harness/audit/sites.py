"""The audit's sites: the lab's hostile certificates, each under a name of its own, served for one audit.

Every site is the mock ScreenMeet server (:mod:`harness.server.mock`, run as
``python -m harness.server``) behind one certificate of
:mod:`harness.pki.hostile`, issued for ``<case>.sites.lab.test`` by the lab's
public intermediate, on a port of its own on ``listen`` (127.0.0.1, or a LAN
address with ``--listen`` so a real appliance reaches them).  ``good`` is the
control: a valid certificate every proxy should let through.  The server's
main port presents the lab's ScreenMeet certificate, for ``api.`` and
``beam.screenmeet.com``: the exception check.  The ``revoked`` site's CRL is
served over plain HTTP from ``crl.sites.lab.test`` (:class:`CrlServer`), whose
log says whether the proxy ever asked for it.

The proxy reaches a site by its name: the audit sends ``CONNECT
<case>.sites.lab.test:PORT`` and the proxy resolves the name (DNS, a hosts
file) to ``listen``.  Each audit works in a directory of its own under
``<state>/audit/`` (keys 0600), removed when the audit ends unless its sites
server failed to start (its log is there).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.errors import BadFileError, UsageError
from harness.lab.process import Child, spawn, stop, wait_ready
from harness.model.vocab import HOSTILE_CASES
from harness.net.journal import JournalReader
from harness.pki.ca import CA, Blob, certificate_pem, key_pem, load_certificates
from harness.pki.hostile import REVOKED, REVOKED_DESCRIPTION, VALID_SHAPES, issue, revoked
from harness.pki.lab import LabPKI

DOMAIN = "sites.lab.test"
CONTROL = "good"
SCREENMEET_HOSTS = ("api.screenmeet.com", "beam.screenmeet.com")
CRL_HOST = f"crl.{DOMAIN}"
# The catalogue, in the order the report lists it: the control, the bad certificates (revoked
# after the weak keys, as issue 15 lists them), then the valid shapes (badssl.com's oddities).
BAD_CASES = tuple(c for c in HOSTILE_CASES if c not in VALID_SHAPES)
CASES = (CONTROL, *BAD_CASES[:BAD_CASES.index("rsa-1024") + 1], REVOKED,
         *BAD_CASES[BAD_CASES.index("rsa-1024") + 1:], *VALID_SHAPES)
DESCRIPTIONS = {CONTROL: "valid, from the lab's public CA (the control: every proxy should let it through)",
                REVOKED: REVOKED_DESCRIPTION, **HOSTILE_CASES}


def site_host(case: str) -> str:
    """The name a proxy is asked to CONNECT to for ``case``."""
    return f"{case}.{DOMAIN}"


def is_bad(case: str) -> bool:
    """True for a site whose certificate a client must refuse (every case but the control and the valid shapes)."""
    return case != CONTROL and case not in VALID_SHAPES


@dataclass(frozen=True)
class Site:
    """One site as the audit client meets it."""

    case: str
    host: str          # what the client asks the proxy for (CONNECT host and SNI)
    port: int
    leaf: bytes        # the site's own leaf (DER): what a tunnel shows the client


class CrlServer:
    """Plain HTTP on ``listen`` serving the lab public intermediate's CRL; counts who fetched it."""

    def __init__(self, listen: str) -> None:
        self.crl = b""
        self.fetches: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.fetches.append(f"{self.client_address[0]} {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(server.crl)))
                self.end_headers()
                self.wfile.write(server.crl)

            def log_message(self, *args) -> None:
                pass  # fetches are counted, not logged

        self._http = ThreadingHTTPServer((listen, 0), Handler)
        self.port = self._http.server_address[1]
        self.url = f"http://{CRL_HOST}:{self.port}/lab-public.crl"
        threading.Thread(target=self._http.serve_forever, name="audit-crl", daemon=True).start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def lab_pki(state_dir: Path) -> LabPKI:
    """The lab PKI under ``state_dir`` (its public root is what an audited proxy must trust
    upstream), generated once if there is none; a corrupt one is a :class:`BadFileError`."""
    if not (state_dir / "pki").is_dir():
        return LabPKI.generate(state_dir)
    return LabPKI.load(state_dir)


def issue_sites(pki: LabPKI, out: Path, crl_url: str) -> tuple[dict[str, dict], dict[str, bytes], bytes]:
    """Issue every case's certificate into ``out``: ``(the server's --sites table without ports,
    {case: leaf DER}, the CRL DER)``."""
    public = CA.load(pki.public_intermediate, pki.public_intermediate.with_suffix(".key"))
    untrusted = CA(common_name="TLS-lab Untrusted Root CA (test only)", key_type="ec")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    table, leaves, crl = {}, {}, b""
    for case in CASES:
        names = (site_host(case),)
        if case == CONTROL:
            leaf = public.issue_cert(*names)
            cert, key, chain = leaf.cert, leaf.private_key, [public.cert]
        elif case == REVOKED:
            cert, key, chain, crl = revoked(public, names, crl_url)
        else:
            cert, key, chain = issue(case, names, issuer=public, chain=[public.cert], untrusted=untrusted)
        pem = Blob(b"".join(certificate_pem(c).bytes() for c in [cert, *chain]))
        pem.write_to_path(out / f"{case}.pem")
        key_pem(key).write_to_path(out / f"{case}.key", private=True)
        table[case] = {"cert": str(out / f"{case}.pem"), "key": str(out / f"{case}.key")}
        leaves[case] = cert.public_bytes(serialization.Encoding.DER)
    return table, leaves, crl


class AuditSites:
    """The sites of one audit, up: ``with AuditSites(state_dir, listen) as sites: sites.sites[case]``."""

    def __init__(self, state_dir: Path, listen: str = "127.0.0.1", *, timeout: float = 60.0) -> None:
        self.state_dir, self.listen, self.timeout = Path(state_dir), listen, timeout
        self.sites: dict[str, Site] = {}
        self.screenmeet: list[Site] = []
        self.crl: CrlServer | None = None
        self.journal: JournalReader | None = None
        self.work: Path | None = None  # this audit's directory (certificates, keys, the server's log)
        self._child: Child | None = None
        self._keep = False

    def __enter__(self) -> AuditSites:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        pki = lab_pki(self.state_dir)
        (self.state_dir / "audit").mkdir(mode=0o700, exist_ok=True)
        work = self.work = Path(tempfile.mkdtemp(prefix="run-", dir=self.state_dir / "audit"))
        try:
            self.crl = CrlServer(self.listen)
        except OSError as e:
            raise UsageError(f"cannot listen on {self.listen} for the audit's sites ({e.strerror or e}); "
                             "give --listen an address of this machine.") from None
        table, leaves, self.crl.crl = issue_sites(pki, work / "sites", self.crl.url)
        sites_file = work / "sites.json"
        sites_file.write_text(json.dumps({c: t | {"ports": [0]} for c, t in table.items()}, indent=2))
        self._child = spawn("audit sites server", [
            sys.executable, "-m", "harness.server", "--cert", str(pki.server_chain), "--key", str(pki.server_key),
            "--host", self.listen, "--ports", "0", "--sites", str(sites_file), "--admin", "127.0.0.1:0"],
            work / "sites-server.log")
        try:
            ready = wait_ready([self._child], self.timeout)["audit sites server"]
        except Exception:
            self._keep = True  # the error names the log in work/
            raise
        self.journal = JournalReader(ready["admin"])
        self.sites = {c: Site(c, site_host(c), int(ready["sites"][c][0]), leaves[c]) for c in CASES}
        screenmeet_leaf = load_certificates(pki.server_chain)[0].public_bytes(serialization.Encoding.DER)
        self.screenmeet = [Site(h, h, int(ready["ports"][0]), screenmeet_leaf) for h in SCREENMEET_HOSTS]

    def close(self) -> None:
        if self._child is not None:
            stop([self._child])
            self._child = None
        if self.crl is not None:
            self.crl.close()
            self.crl = None
        if self.work is not None and not self._keep:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None

    def reached(self) -> set[str]:
        """The audit markers (``X-Lab-Audit`` header) of every request that reached a site."""
        if self.journal is None:
            return set()
        return {r["headers"]["x-lab-audit"] for r in self.journal.read()
                if r.get("kind") == "http" and "x-lab-audit" in (r.get("headers") or {})}

    def hosts_lines(self) -> list[str]:
        """``/etc/hosts`` lines that resolve every site name to ``listen`` (for an appliance without
        a wildcard DNS record for ``*.sites.lab.test``)."""
        names = [site_host(c) for c in CASES] + [CRL_HOST, *SCREENMEET_HOSTS]
        return [f"{self.listen} {n}" for n in names]


def load_trust(path: str) -> list[x509.Certificate]:
    """``--trust FILE``: the organisation's CA certificates (PEM); a file holding a certificate
    that is no CA is a :class:`UsageError`."""
    certs = load_certificates(path, hint="give the organisation's inspection CA certificate (PEM)")
    for cert in certs:
        try:
            ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if not ca:
            raise BadFileError(f"--trust {path} holds a certificate that is no CA "
                               f"({cert.subject.rfc4514_string() or 'an empty subject'}); give the "
                               "organisation's inspection CA certificate (PEM) that signs the forged leaves.")
    return certs
