"""Open a TLS connection directly or through an HTTP CONNECT proxy, and describe it.

Nothing is written on the TLS channel here: :func:`open_tls` returns once the
handshake is done, with the presented chain's pins and issuer, so the caller
can check pins before its first application byte.  (The CONNECT request goes
to the proxy in clear, as with every explicit proxy; it carries only the host,
and the proxy login when the proxy URL has one.)

A proxy login (``http://USER:PASSWORD@HOST:PORT``, in ``--proxy`` or
``HTTPS_PROXY``) goes only to the proxy, as ``Proxy-Authorization`` on the
CONNECT request, never inside the tunnel to the server; a proxy URL is shown
without it (:class:`ProxyURL`'s ``str``).  A 407 answer is
:class:`ProxyLoginRequired` (:func:`harness.model.proxylogin.login_answer`).
"""

from __future__ import annotations

import os
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field

import h11
from cryptography import x509

from harness.errors import (
    NetworkError,
    ProxyLoginRequired,
    StepTimeout,
    TlsHandshakeAborted,
    TlsVerificationError,
    UsageError,
)
from harness.model.pins import spki_sha256
from harness.model.proxylogin import LOGIN_OK, ProxyLogin, login_answer, login_from_userinfo, login_problem
from harness.model.secrets import mask_text
from harness.model.values import host_problem
from harness.pki.names import common_name, display_name


class Deadline:
    """The whole of one step (an answer, a handshake, a message) gets the socket's timeout,
    not each ``recv``: a server that trickles a byte at a time cannot hold a client forever."""

    def __init__(self, sock: socket.socket, what: str) -> None:
        self.sock, self.what = sock, what
        self.limit = sock.gettimeout()
        self.end = time.monotonic() + self.limit if self.limit else None

    def recv(self) -> bytes:
        if self.end is not None:
            remaining = self.end - time.monotonic()
            if remaining <= 0:
                raise StepTimeout(f"timed out waiting for {self.what} (more than {self.limit:g}s)")
            self.sock.settimeout(remaining)
        try:
            return self.sock.recv(65536)
        except socket.timeout:
            raise StepTimeout(f"timed out waiting for {self.what}"
                               + (f" (more than {self.limit:g}s)" if self.limit else "")) from None
        except OSError as e:
            raise NetworkError(f"connection broke while waiting for {self.what} ({e})") from None
        finally:
            if self.end is not None:
                self.sock.settimeout(self.limit)


@dataclass(frozen=True)
class ProxyURL:
    """An explicit proxy, and the login it gets (if any).  ``str()`` never shows the login."""

    host: str
    port: int
    login: ProxyLogin | None = None

    def __str__(self) -> str:
        return f"http://{self.host}:{self.port}"


def parse_proxy_url(text: str) -> ProxyURL:
    """Parse ``http://[USER:PASSWORD@]host:port``; raises :class:`UsageError` with the fix.
    The login's user and password are percent-decoded; the sentence never shows them."""
    try:
        u = urllib.parse.urlsplit(text if "://" in text else f"http://{text}")
        port = u.port
    except ValueError:  # "Invalid IPv6 URL", "Port out of range"
        u, port = None, None
    shown = mask_text(text)  # a login in the URL is masked like every credential (harness.model.secrets)
    shown = repr(shown) if len(shown) <= 100 else repr(shown[:80]) + f"... ({len(shown)} characters)"
    if u is None or u.scheme != "http" or not u.hostname or not port or " " in u.hostname:
        raise UsageError(
            f"proxy URL {shown} is malformed; write it as http://HOST:PORT (e.g. http://127.0.0.1:8080)."
        )
    if problem := host_problem(u.hostname):  # a label of 64 characters would fail deep in getaddrinfo
        raise UsageError(f"proxy URL {shown} is malformed (its host: {problem}); write it as http://HOST:PORT "
                         "(e.g. http://127.0.0.1:8080).")
    try:
        login = login_from_userinfo(u.username, u.password)
    except ValueError as e:
        raise UsageError(f"proxy URL {shown} has a bad login: {e}; write it as http://USER:PASSWORD@HOST:PORT "
                         "('%' escapes for reserved characters).") from None
    return ProxyURL(u.hostname, port, login)


def proxy_from_environment(host: str) -> ProxyURL | None:
    """HTTPS_PROXY / https_proxy, unless NO_PROXY lists ``host`` (or ``*``)."""
    value = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if not value:
        return None
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    for entry in (e.strip().lower().lstrip(".") for e in no_proxy.split(",")):
        if entry and (entry == "*" or host == entry or host.endswith("." + entry)):
            return None
    return parse_proxy_url(value)


@dataclass
class TlsConnection:
    """A finished handshake: the socket and what the server presented."""

    sock: ssl.SSLSocket
    host: str
    issuer_cn: str
    subject_cn: str | None
    chain_pins: list[str] = field(default_factory=list)
    chain_length: int = 1
    tls_version: str | None = None
    via_proxy: str | None = None
    local: str | None = None  # this end's HOST:PORT: lets a test match the connection to the proxy's journal

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def trust_context(cafile: str | None, *, tls_min: str | None = None, tls_max: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the bundle file if given, else the system store."""
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    # Security level 2 rejects SHA-1 signatures and RSA keys under 2048 bits ("weak").
    ctx.set_ciphers("DEFAULT:@SECLEVEL=2")
    ctx.set_alpn_protocols(["http/1.1"])
    versions = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
    if tls_min:
        ctx.minimum_version = versions[tls_min]
    if tls_max:
        ctx.maximum_version = versions[tls_max]
    return ctx


def peer_chain(sock: ssl.SSLSocket, *, verified: bool = True) -> list[x509.Certificate]:
    """The peer's chain, leaf first: the one OpenSSL verified (``verified``) or the one the
    peer sent, where this Python exposes it; else the leaf alone."""
    name = "get_verified_chain" if verified else "get_unverified_chain"
    getter = getattr(sock, name, None)  # public from Python 3.13
    if getter is None and getattr(sock, "_sslobj", None) is not None:
        getter = getattr(sock._sslobj, name, None)  # 3.10-3.12: only on the private object
    ders: list[bytes] = []
    if getter is not None:
        try:
            for c in getter() or []:
                ders.append(c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER))
        except (AttributeError, ValueError, ssl.SSLError):
            ders = []
    if not ders and (leaf := sock.getpeercert(binary_form=True)):
        ders = [leaf]
    return [x509.load_der_x509_certificate(d) for d in ders]


def _connect_tcp(host: str, port: int, timeout: float, what: str | None = None) -> socket.socket:
    what = what or f"{host}:{port}"
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except socket.timeout:
        raise NetworkError(f"timed out connecting to {what}") from None
    except OSError as e:
        raise NetworkError(f"cannot connect to {what} ({e.strerror or e})") from None


def connect_tunnel(sock: socket.socket, host: str, port: int, proxy: ProxyURL | None = None) -> None:
    """Ask an HTTP proxy for a CONNECT tunnel to ``host:port`` (h11 does the HTTP), with
    ``proxy``'s login if it has one; a 407 answer raises :class:`ProxyLoginRequired`."""
    conn = h11.Connection(h11.CLIENT)
    target = f"{host}:{port}"
    login = proxy.login if proxy is not None else None
    headers = [("Host", target)] + ([("Proxy-Authorization", login.header())] if login else [])
    deadline = Deadline(sock, f"the proxy's answer to CONNECT {target}")
    try:
        sock.sendall(conn.send(h11.Request(method="CONNECT", target=target, headers=headers)))
        sock.sendall(conn.send(h11.EndOfMessage()))
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = deadline.recv()
                conn.receive_data(data)
                if not data and conn.their_state is not h11.SWITCHED_PROTOCOL:
                    raise NetworkError(f"the proxy closed the connection before answering CONNECT {target}")
                continue
            if isinstance(event, h11.Response):
                answer = login_answer(event.status_code, sent=login is not None)
                if answer != LOGIN_OK:
                    raise ProxyLoginRequired(login_problem(answer, str(proxy or "(unnamed)"), login.user if login else None))
                if not 200 <= event.status_code < 300:
                    reason = event.reason.decode("latin-1", "replace")
                    raise NetworkError(f"the proxy refused CONNECT {target}: {event.status_code} {reason}")
                return
            if isinstance(event, h11.ConnectionClosed):
                raise NetworkError(f"the proxy closed the connection before answering CONNECT {target}")
    except socket.timeout:
        raise NetworkError(f"the proxy did not answer CONNECT {target} in time") from None
    except h11.RemoteProtocolError as e:
        raise NetworkError(f"the proxy answered CONNECT {target} with something that is not HTTP ({e})") from None
    except OSError as e:
        raise NetworkError(f"the proxy connection failed during CONNECT {target} ({e})") from None


def open_tls(
    host: str,
    port: int,
    context: ssl.SSLContext,
    *,
    proxy: ProxyURL | None = None,
    connect_to: tuple[str, int] | None = None,
    timeout: float = 10.0,
) -> TlsConnection:
    """Connect (through ``proxy`` if given), complete the TLS handshake, describe the chain.

    ``connect_to`` sends the TCP connection elsewhere while keeping ``host`` for
    SNI, certificate checks and the CONNECT target (like curl's ``--connect-to``).
    Raises :class:`NetworkError` or :class:`TlsVerificationError`.
    """
    tunnel_host, tunnel_port = connect_to or (host, port)
    if proxy is not None:
        sock = _connect_tcp(proxy.host, proxy.port, timeout, f"the proxy {proxy}")
        try:
            connect_tunnel(sock, tunnel_host, tunnel_port, proxy)
        except Exception:
            sock.close()
            raise
    else:
        sock = _connect_tcp(tunnel_host, tunnel_port, timeout)
    try:
        local = "%s:%d" % sock.getsockname()[:2]
    except OSError:
        local = None
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as e:
        sock.close()
        raise TlsVerificationError(e.verify_message or str(e)) from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as e:
        sock.close()
        raise TlsHandshakeAborted(f"TLS handshake failed: {e.reason or e}") from None
    except ssl.SSLError as e:
        sock.close()
        raise TlsVerificationError(f"TLS handshake failed: {e.reason or e}") from None
    except socket.timeout:
        sock.close()
        raise NetworkError(f"TLS handshake with {host} timed out") from None
    except OSError as e:
        sock.close()
        raise NetworkError(f"connection to {host} broke during the TLS handshake ({e})") from None
    chain = peer_chain(tls)
    leaf = chain[0]
    return TlsConnection(
        sock=tls,
        host=host,
        issuer_cn=display_name(leaf.issuer),
        subject_cn=common_name(leaf.subject),
        chain_pins=[spki_sha256(c) for c in chain],
        chain_length=len(chain),
        tls_version=tls.version(),
        via_proxy=str(proxy) if proxy else None,
        local=local,
    )
