"""What both reference clients share: exit codes, event output, options, the pinned connect."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import TextIO

from harness.clients.transport import (
    ProxyURL,
    TlsConnection,
    open_tls,
    parse_proxy_url,
    proxy_from_environment,
    trust_context,
)
from harness.errors import ArgumentParser as LabArgumentParser
from harness.errors import LabError, NetworkError, ProtocolError, StepTimeout, TlsVerificationError, UsageError
from harness.model.pins import PinResult, check_pins, load_pins
from harness.model.values import parse_https_url, positive_seconds, split_host_port
from harness.model.vocab import ExitCode
from harness.pki.ca import load_certificates


class Events:
    """Prints events: one JSON object per line with ``--json``, else the human sentence."""

    def __init__(self, out: TextIO, err: TextIO, *, as_json: bool) -> None:
        self.out, self.err, self.as_json = out, err, as_json

    def emit(self, event: str, message: str | None = None, *, error: bool = False, **fields) -> None:
        if self.as_json:
            self.out.write(json.dumps({"event": event, **fields}) + "\n")
            self.out.flush()
        elif message:
            stream = self.err if error else self.out
            stream.write(message + "\n")
            stream.flush()


def add_common_args(p: argparse.ArgumentParser, *, default_url: str) -> None:
    p.add_argument("--url", default=default_url, help=f"server URL (default {default_url})")
    p.add_argument("--proxy", help="explicit HTTP proxy, http://HOST:PORT (default: $HTTPS_PROXY)")
    p.add_argument("--no-proxy", action="store_true", help="ignore $HTTPS_PROXY and connect directly")
    p.add_argument("--connect-to", metavar="HOST:PORT", help="connect here instead of the URL's host (SNI and checks keep the URL's host)")
    p.add_argument("--trust", metavar="PEM", help="CA bundle to validate against (default: the system store)")
    p.add_argument("--pins", metavar="FILE", required=True, help="pins file: one sha256/<base64 SPKI digest> per line")
    p.add_argument("--timeout", type=positive_seconds, default=10.0, help="seconds for each network step (default 10)")
    p.add_argument("--tls-min", choices=("1.2", "1.3"), help="lowest TLS version to offer")
    p.add_argument("--tls-max", choices=("1.2", "1.3"), help="highest TLS version to offer")
    p.add_argument("--json", action="store_true", help="print one JSON event per line")


class ArgumentParser(LabArgumentParser):
    """argparse, but a usage error raises instead of exiting (clients also run in-process)."""

    def exit(self, status=0, message=None):
        if message:
            sys.stderr.write(message)
        raise _ExitRequest(status)


class _ExitRequest(Exception):
    def __init__(self, status: int):
        self.status = status


@dataclass
class Target:
    host: str
    port: int
    proxy: ProxyURL | None
    connect_to: tuple[str, int] | None


def _cut(text: str) -> str:
    """A value as an error sentence quotes it: its repr, cut short."""
    return repr(text) if len(text) <= 100 else repr(text[:80]) + f"... ({len(text)} characters)"


def _host_ok(host: str) -> bool:
    """A host name or address a socket can be given: no spaces, no stray brackets or slashes."""
    return bool(host) and not any(c in host for c in " /\\[]@?#") and host.isprintable()


def resolve_target(args) -> Target:
    try:
        host, port = parse_https_url(args.url)
    except ValueError as e:  # "invalid ipv6 url", a host label of 64 characters ...
        raise UsageError(f"server URL {_cut(args.url)} is malformed ({e}); write it as https://HOST[:PORT].") from None
    connect_to = None
    if args.connect_to:
        try:
            connect_to = split_host_port(args.connect_to)
        except ValueError:
            connect_to = None
        if connect_to is None or not _host_ok(connect_to[0]):
            raise UsageError(f"--connect-to {_cut(args.connect_to)} is malformed; write it as HOST:PORT (port 1-65535).")
    if args.proxy:
        proxy = parse_proxy_url(args.proxy)
    elif args.no_proxy:
        proxy = None
    else:
        proxy = proxy_from_environment(host)
    return Target(host, port, proxy, connect_to)


@dataclass
class PinnedConnection:
    conn: TlsConnection
    pins: PinResult


class Session:
    """One client run: the target, trust, pins and the event printer."""

    def __init__(self, args, events: Events) -> None:
        self.args = args
        self.events = events
        self.target = resolve_target(args)
        self.pins = load_pins(args.pins)
        self.context = self._load_trust()

    def _load_trust(self):
        if self.args.trust:
            load_certificates(self.args.trust)  # one clear sentence if the bundle is missing or corrupt
        return trust_context(self.args.trust, tls_min=self.args.tls_min, tls_max=self.args.tls_max)

    def reload_trust(self) -> None:
        """Read the trust bundle again: a long-running agent picks up a CA that IT deployed
        (or retired) since it started, as a new connection through the system store would."""
        self.context = self._load_trust()

    def lost(self, error: NetworkError, during: str) -> NetworkError:
        """``error`` (a connection that broke after the handshake) said in terms of the session:
        which host, through which proxy, during what.  Protocol errors and timeouts already
        say what they waited for, and the connection was not lost."""
        if isinstance(error, (ProtocolError, StepTimeout)):
            return error
        via = f" through the proxy {self.target.proxy}" if self.target.proxy else ""
        return NetworkError(f"lost the connection to {self.target.host}{via} during {during} ({error})")

    def connect(self, host: str | None = None) -> PinnedConnection:
        """Open TLS to ``host`` (default: the URL's), validate, and check pins. No byte is written.

        Raises NetworkError or TlsVerificationError; emits the ``tls`` event.
        """
        host = host or self.target.host
        try:
            conn = open_tls(
                host, self.target.port, self.context,
                proxy=self.target.proxy, connect_to=self.target.connect_to, timeout=self.args.timeout,
            )
        except TlsVerificationError as e:
            e.host = host
            self.events.emit("tls", host=host, chain_trusted=False, reason=e.reason,
                             via_proxy=str(self.target.proxy) if self.target.proxy else None)
            raise
        result = check_pins(conn.chain_pins, self.pins)
        self.events.emit(
            "tls", host=host, chain_trusted=True, issuer=conn.issuer_cn, subject=conn.subject_cn,
            pin_match=result.matched, chain_pins=conn.chain_pins, chain_length=conn.chain_length,
            tls_version=conn.tls_version, via_proxy=conn.via_proxy, local=conn.local,
        )
        return PinnedConnection(conn, result)


def run_client(body, argv, *, stdout: TextIO | None, stderr: TextIO | None, stdin: TextIO | None, parser) -> int:
    """Parse ``argv``, run ``body(args, events, stdin)`` and map every failure to an exit code."""
    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        stderr.write(f"{e}\n")
        return ExitCode.USAGE
    except _ExitRequest as e:  # --help
        return e.status
    events = Events(stdout, stderr, as_json=args.json)
    try:
        return int(body(args, events, stdin))
    except TlsVerificationError as e:
        events.emit("error", f"ERROR: TLS verification failed for {e.host or 'the server'}: {e.reason}. "
                    "This is not the pinning warning: the certificate itself is not valid here.",
                    error=True, kind="tls", reason=e.reason)
        return ExitCode.TLS_FAILED
    except NetworkError as e:
        events.emit("error", f"ERROR: network error: {e}.", error=True, kind="network", reason=str(e))
        return ExitCode.NETWORK
    except UsageError as e:
        events.emit("error", f"ERROR: {e}", error=True, kind="usage", reason=str(e))
        return ExitCode.USAGE
    except LabError as e:
        events.emit("error", f"ERROR: {e}", error=True, kind="usage", reason=str(e))
        return ExitCode.USAGE
