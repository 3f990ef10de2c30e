"""``harness beam``: the unattended ScreenMeet agent (Beam).

Beam never connects through TLS inspection: when the chain is trusted but no
pin matches, it refuses, says why (host, issuer, the fix), and sends nothing,
least of all its agent token.  Network errors (and a TLS handshake cut off
half-way, as by a restarting proxy) are retried with capped exponential
backoff and jitter (``--once`` tries once); with ``--retry-refused``
a refusal is retried the same way, for an agent waiting for IT's exception.
Every retry reads the trust bundle again, so a CA that IT deployed or rotated
meanwhile is picked up without restarting the agent.  Once connected it
registers with its bearer token and keeps a heartbeat WebSocket.
"""

from __future__ import annotations

import os
import random
import secrets
import time
from typing import TextIO

from harness.clients.common import (
    ArgumentParser,
    Events,
    ExitCode,
    Session,
    add_common_args,
    run_client,
)
from harness.clients.decision import backoff_delays, beam_refusal
from harness.clients.wire import WebSocket, http_request
from harness.errors import NetworkError, ProtocolError, ProxyLoginRequired, TlsHandshakeAborted
from harness.model.values import non_negative_int, non_negative_seconds, retry_count
from harness.model.vocab import REFERENCE_URLS

DEFAULT_URL = REFERENCE_URLS["beam"]


def build_parser(prog: str = "harness beam") -> ArgumentParser:
    p = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_common_args(p, default_url=DEFAULT_URL)
    p.add_argument("--token", default=None, help="agent token (default: $BEAM_AGENT_TOKEN or a random one)")
    p.add_argument("--heartbeats", type=non_negative_int, default=2, help="heartbeats to exchange before exiting (default 2)")
    p.add_argument("--interval", type=non_negative_seconds, default=0.0, help="seconds between heartbeats (default 0)")
    p.add_argument("--once", action="store_true", help="try once; do not retry network errors")
    p.add_argument("--retries", type=retry_count, default=5, help="retries after a network error (default 5)")
    p.add_argument("--retry-refused", action="store_true",
                   help="also retry after refusing an inspected connection (a service waiting for the exception)")
    p.add_argument("--backoff-base", type=non_negative_seconds, default=0.5, help="first retry delay in seconds (default 0.5)")
    p.add_argument("--backoff-cap", type=non_negative_seconds, default=30.0, help="longest retry delay in seconds (default 30)")
    return p


class Refused(Exception):
    def __init__(self, host: str, issuer: str):
        super().__init__(host, issuer)
        self.host, self.issuer = host, issuer


def _attempt(session: Session, events: Events, token: str, args) -> int:
    host = session.target.host
    first = session.connect()
    if not first.pins.matched:
        first.conn.close()
        raise Refused(host, first.conn.issuer_cn)
    try:
        resp = http_request(first.conn.sock, "POST", host, "/beam/v1/agents/register",
                            headers={"Authorization": f"Bearer {token}"})
    except NetworkError as e:
        raise session.lost(e, "the agent registration") from None
    finally:
        first.conn.close()
    if resp.status != 200:
        raise ProtocolError(f"the server refused the agent registration: HTTP {resp.status}")
    reg = resp.json()
    agent, path = reg.get("agent_id"), reg.get("heartbeat_path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ProtocolError("the server's registration answer has no valid heartbeat_path")
    events.emit("registered", f"Beam registered as agent {agent}.", agent=agent)

    second = session.connect()
    if not second.pins.matched:
        second.conn.close()
        raise Refused(host, second.conn.issuer_cn)
    try:
        ws = WebSocket(second.conn.sock, host, path)
        for n in range(1, args.heartbeats + 1):
            ws.send_text(f"hb-{n}")
            reply = ws.receive_text()
            if reply != f"pong hb-{n}":
                raise ProtocolError(f"heartbeat {n} got {reply!r} instead of 'pong hb-{n}'")
            events.emit("heartbeat", None, n=n)
            if args.interval and n < args.heartbeats:
                time.sleep(args.interval)
        ws.close()
    except NetworkError as e:
        raise session.lost(e, "the heartbeat") from None
    finally:
        second.conn.close()
    events.emit("connected", f"Beam connected to {host} as agent {agent}; heartbeats OK.",
                host=host, secure=True, agent=agent, heartbeats=args.heartbeats)
    return ExitCode.CONNECTED


def _body(args, events: Events, stdin: TextIO) -> int:
    session = Session(args, events)
    token = args.token or os.environ.get("BEAM_AGENT_TOKEN") or f"beam-{secrets.token_hex(12)}"
    delays = backoff_delays(0 if args.once else max(args.retries, 0),
                            base=args.backoff_base, cap=args.backoff_cap, rand=random.random)
    for attempt in range(len(delays) + 1):
        if attempt:
            session.reload_trust()
        try:
            return _attempt(session, events, token, args)
        except Refused as r:
            events.emit("refused", beam_refusal(r.host, r.issuer), error=True,
                        host=r.host, issuer=r.issuer, reason="pin-mismatch", fix="*.screenmeet.com")
            if not args.retry_refused or attempt == len(delays):
                return ExitCode.PIN_REFUSED
            events.emit("retry", f"Beam: waiting for the exception; retrying in {delays[attempt]:.1f}s.",
                        error=True, reason="pin-mismatch", delay=round(delays[attempt], 3), attempt=attempt + 1)
        except ProxyLoginRequired:
            raise  # a missing or refused proxy login does not come right by retrying
        except (NetworkError, TlsHandshakeAborted) as e:
            # A handshake cut off (a proxy restarting) is retried like a network error; if the
            # last attempt still ends so, it is the TLS failure it looks like (exit 4).
            if attempt == len(delays):
                raise
            events.emit("retry", f"Beam: {e}; retrying in {delays[attempt]:.1f}s.", error=True,
                        reason=str(e), delay=round(delays[attempt], 3), attempt=attempt + 1)
        time.sleep(delays[attempt])
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None, *, stdout=None, stderr=None, stdin=None) -> int:
    """Run Beam; returns its exit code (never raises for bad input)."""
    return run_client(_body, argv, stdout=stdout, stderr=stderr, stdin=stdin, parser=build_parser())


if __name__ == "__main__":
    raise SystemExit(main())
