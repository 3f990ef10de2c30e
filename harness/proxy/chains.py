"""Evidence of what each side was shown: per host, the forged chain and the real one (PEM).

:class:`ChainRecorder` is a mitmproxy addon.  When the client finishes its
handshake with the proxy it writes ``HOST.forged.pem``: the leaf the proxy
presented, followed by its issuers from the lab's CA files (the chain the
client could build); when the proxy finishes its handshake with the upstream,
``HOST.real.pem``: the certificates the server sent.  A pass-through
connection writes neither (the proxy never sees its handshake); the client
sees the real chain then.  Each file is written once per host and proxy life.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

_UNSAFE = re.compile(r"[^a-z0-9.-]")


def host_file(host: str, kind: str) -> str:
    """The file name for ``host``'s ``kind`` (forged, real) chain: ``api.screenmeet.com.forged.pem``."""
    return f"{_UNSAFE.sub('_', host.lower()) or '_'}.{kind}.pem"


def load_pool(paths: list[Path]) -> list[x509.Certificate]:
    """Every certificate in these PEM files (keys and unreadable files are skipped)."""
    pool: list[x509.Certificate] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if b"-----BEGIN CERTIFICATE-----" in data:
            try:
                pool += x509.load_pem_x509_certificates(data)
            except ValueError:
                continue
    return pool


def complete_chain(leaf: x509.Certificate, pool: list[x509.Certificate], limit: int = 8) -> list[x509.Certificate]:
    """``leaf`` and its issuers found in ``pool``, by subject, up to a self-signed one."""
    chain, current = [leaf], leaf
    while len(chain) < limit and current.issuer != current.subject:
        issuer = next((c for c in pool if c.subject == current.issuer and c not in chain), None)
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return chain


def pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


class ChainRecorder:
    """Addon: writes each host's forged and real chain to ``directory`` (see the module docstring)."""

    def __init__(self, directory: str | Path, ca_files: list[Path]) -> None:
        self.directory = Path(directory)
        self.ca_files = ca_files
        self._pool: list[x509.Certificate] | None = None
        self._written: set[str] = set()

    def _write(self, host: str | None, kind: str, certs: list[x509.Certificate]) -> None:
        if not host or not certs:
            return
        name = host_file(host, kind)
        if name in self._written:
            return
        self._written.add(name)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / name).write_bytes(pem(certs))

    def tls_established_client(self, data) -> None:
        cert = data.ssl_conn.get_certificate() if data.ssl_conn is not None else None
        if cert is None:
            return
        if self._pool is None:  # read once: the CA files exist by the time a client connects
            self._pool = load_pool(self.ca_files)
        leaf = cert.to_cryptography()
        self._write(data.conn.sni, "forged", complete_chain(leaf, self._pool))

    def tls_established_server(self, data) -> None:
        certs = [x509.load_pem_x509_certificate(c.to_pem()) for c in data.conn.certificate_list]
        self._write(data.conn.sni, "real", certs)
