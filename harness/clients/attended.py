"""``harness attended``: the attended ScreenMeet client (a person joins a support session).

Validates the chain, then checks the pins before writing anything.  If the
chain is trusted but no pin matches (TLS inspection), it shows the warning and
lets the person decide (``--on-warning ask|continue|abort``); a session that
continues is marked not secure.  Then it joins the session and exchanges
WebSocket messages.
"""

from __future__ import annotations

import secrets
from typing import TextIO

from harness.clients.blockpage import block_page_message, is_block_page
from harness.clients.common import (
    ArgumentParser,
    Events,
    ExitCode,
    Session,
    add_common_args,
    run_client,
)
from harness.clients.decision import ON_WARNING_CHOICES, attended_warning, decide_on_warning, decision_message
from harness.clients.wire import WebSocket, http_request
from harness.errors import NetworkError, ProtocolError
from harness.model.values import non_negative_int
from harness.model.vocab import REFERENCE_URLS

DEFAULT_URL = REFERENCE_URLS["attended"]


def build_parser(prog: str = "harness attended") -> ArgumentParser:
    p = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_common_args(p, default_url=DEFAULT_URL)
    p.add_argument("--code", default=None, help="support session code (default: a random one)")
    p.add_argument("--on-warning", choices=ON_WARNING_CHOICES, default="ask",
                   help="on a certificate mismatch: ask (prompt y/N on a terminal; without one nobody can answer, "
                        "so it declines and says so), continue, or abort")
    p.add_argument("--messages", type=non_negative_int, default=2, help="WebSocket messages to exchange (default 2)")
    return p


def _confirm(events: Events, stdin: TextIO, mode: str, issuer: str, host: str):
    text = attended_warning(issuer)
    events.emit("warning", text, host=host, issuer=issuer, text=text)
    is_tty = bool(getattr(stdin, "isatty", lambda: False)())
    answer = None
    if mode == "ask" and is_tty:
        events.out.write("Continue? [y/N] ")
        events.out.flush()
        answer = stdin.readline()
    decision = decide_on_warning(mode, is_tty=is_tty, answer=answer)
    events.emit("decision", decision_message(decision), proceed=decision.proceed, how=decision.how)
    return decision.proceed


def _body(args, events: Events, stdin: TextIO) -> int:
    session = Session(args, events)
    host = session.target.host
    code = args.code or secrets.token_hex(4)

    first = session.connect()
    secure = first.pins.matched
    accepted_chain = None
    if not secure:
        if not _confirm(events, stdin, args.on_warning, first.conn.issuer_cn, host):
            first.conn.close()
            return ExitCode.DECLINED
        accepted_chain = first.conn.chain_pins
    try:
        resp = http_request(first.conn.sock, "POST", host, "/api/v1/sessions/join", json_body={"code": code})
    except NetworkError as e:
        raise session.lost(e, "the session join") from None
    finally:
        first.conn.close()
    if is_block_page(resp.status, resp.headers.get("content-type"), decrypted=not secure):
        raise ProtocolError(block_page_message(resp.status))  # the proxy's answer, not the server's
    if resp.status != 200:
        raise ProtocolError(f"the server refused to join the session: HTTP {resp.status}")
    joined = resp.json()
    session_id, ws_path = joined.get("session_id"), joined.get("ws_path")
    if not isinstance(ws_path, str) or not ws_path.startswith("/"):
        raise ProtocolError("the server's join answer has no valid ws_path")
    events.emit("joined", f"Joined support session {session_id}.", session=session_id)

    # The WebSocket is a new connection: it is checked again, and only the
    # exact chain the person already accepted may skip the pins.
    second = session.connect()
    if not second.pins.matched and second.conn.chain_pins != accepted_chain:
        if not _confirm(events, stdin, args.on_warning, second.conn.issuer_cn, host):
            second.conn.close()
            return ExitCode.DECLINED
        secure = False
    try:
        ws = WebSocket(second.conn.sock, host, ws_path)
        for n in range(1, args.messages + 1):
            ws.send_text(f"screen-frame {n}")
            reply = ws.receive_text()
            events.emit("ws", None, sent=n, reply=reply)
        ws.close()
    except NetworkError as e:
        raise session.lost(e, f"support session {session_id}") from None
    finally:
        second.conn.close()
    state = "secure" if secure else "NOT secure (certificate mismatch accepted)"
    events.emit("connected", f"Connected to support session {session_id} on {host}; the connection is {state}.",
                host=host, secure=secure, session=session_id)
    return ExitCode.CONNECTED


def main(argv: list[str] | None = None, *, stdout=None, stderr=None, stdin=None) -> int:
    """Run the attended client; returns its exit code (never raises for bad input)."""
    return run_client(_body, argv, stdout=stdout, stderr=stderr, stdin=stdin, parser=build_parser())


if __name__ == "__main__":
    raise SystemExit(main())
