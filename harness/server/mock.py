"""The mock ScreenMeet server: HTTPS and WebSocket, answering as the ScreenMeet hosts.

* ``api.screenmeet.com`` – the attended flow: ``POST /api/v1/sessions/join``
  with ``{"code": ...}``, then a WebSocket at ``/api/v1/sessions/<id>/ws``.
* ``beam.screenmeet.com`` – the unattended agent: ``POST /beam/v1/agents/register``
  with ``Authorization: Bearer <agent token>``, then a heartbeat WebSocket at
  ``/beam/v1/agents/<id>/heartbeat``.
* ``screenmeet.com`` – ``GET /`` answers who it is (so do the others).

Each connection's ClientHello is read before the handshake (:mod:`harness.server.peek`)
and every request's record carries what it offered (``tls``: JA3, JA4, versions,
ciphers, groups, ALPN, SNI and its A/B/C/F grade, :mod:`harness.model.tlsgrade`) and
whether it looks intercepted (``interception``, :mod:`harness.server.detect`), judged
against the clients' own fingerprints (``--known``) and the headers products add.

Every TLS port offers ``h2`` and ``http/1.1`` by ALPN (:mod:`harness.server.h2serve`:
the same routes over HTTP/2, except the WebSockets).  The server listens on one TLS port per *lane* (see :mod:`harness.net.journal`) and
journals every request and WebSocket message (their keys are declared by
:data:`harness.model.records.ServerRecord`); the credentials it receives (the
session code, the agent's Authorization) are masked by
:func:`harness.model.secrets.mask_value` unless ``--show-secrets``.  The journal is served on a
separate plain-HTTP admin endpoint which the lab binds to loopback (local) or
keeps off the proxied network (compose), so it is never reachable through the
proxy.

Run it with ``python -m harness.server --cert ... --key ... --ports 0,0``; it
prints one JSON line (``{"ready": ...}``) to stdout once every port listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import ssl
import sys
from collections import OrderedDict
from typing import cast

from aiohttp import WSMsgType, web

from harness.errors import UsageError
from harness.model.records import ServerRequest
from harness.model.secrets import mask_value, redact_headers
from harness.model.tlsfingerprint import Hello
from harness.model.tlsgrade import grade
from harness.model.vendors import load_vendors
from harness.net.addresses import lane_layout, parse_ports, resolve_bind
from harness.net.journal import Journal, announce_ready, start_admin
from harness.pki.hostile import parse_cases
from harness.server.detect import KnownClients, product_headers, suspect
from harness.server.h2serve import ALPN, H2Protocol, alpn_switch
from harness.server.peek import PeekingServer, warm_up

API_HOST = "api.screenmeet.com"
BEAM_HOST = "beam.screenmeet.com"
APEX_HOST = "screenmeet.com"
# ScreenMeet also serves under scrn.mt (its docs list *.scrn.mt next to *.screenmeet.com).
API_HOSTS = (API_HOST, "api.scrn.mt")
BEAM_HOSTS = (BEAM_HOST, "beam.scrn.mt")
MAX_BODY = 64 * 1024
MAX_HELLOS = 10_000  # ClientHellos remembered per client address (a connection's requests look theirs up)


def request_host(request: web.Request) -> str:
    return (request.host or "").split(":")[0].lower()


class MockScreenMeet:
    """Request handlers plus the journal; the I/O setup lives in :func:`serve`."""

    def __init__(self, *, show_secrets: bool = False, journal_first_seq: int = 1,
                 known: KnownClients | None = None, products: dict | None = None) -> None:
        self.journal = Journal(first_seq=journal_first_seq)
        self.show_secrets = show_secrets
        self.lane_of_port: dict[int, int] = {}
        # What each connection's ClientHello offered (harness.server.peek), by the client's HOST:PORT.
        self.hellos: OrderedDict[str, dict | None] = OrderedDict()
        self.known = known or KnownClients()
        self.products = products or {}

    def saw_hello(self, peer: str, hello) -> None:
        """``on_hello`` of :class:`harness.server.peek.PeekingServer`: fingerprint and grade the
        ClientHello (a :class:`mitmproxy.tls.ClientHello`, None when there was none)."""
        seen = None
        if hello is not None:
            h = Hello.from_client_hello(hello)
            seen = {**h.summary(), "grade": grade(h.ciphers).to_dict()}
        self.hellos[peer] = seen
        self.hellos.move_to_end(peer)
        while len(self.hellos) > MAX_HELLOS:
            self.hellos.popitem(last=False)

    def _lane(self, request: web.Request) -> int | None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        return self.lane_of_port.get(sockname[1]) if sockname else None

    def _secret(self, value: str | None) -> str | None:
        """A credential as the journal keeps it: masked (its scheme kept) unless showing secrets."""
        if value is None:
            return None
        return value if self.show_secrets else mask_value(value)

    def _record(self, request: web.Request, *, status: int, **fields) -> ServerRequest:
        """Journal one request: what every :class:`ServerRequest` has, then the route's own ``fields``."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if (proxy_login := request.headers.get("Proxy-Authorization")) is not None:
            # A proxy login meant for the proxy alone reached the server: journal it, so tests can
            # show it never does (redacted unless the server shows secrets).
            fields["proxy_authorization"] = self._secret(proxy_login)
        headers = {k.lower(): v for k, v in request.headers.items()}
        client = f"{peer[0]}:{peer[1]}" if peer else None
        tls = self.hellos.get(client) if client else None
        interception = suspect(user_agent=headers.get("user-agent"), ja4=tls["ja4"] if tls else None,
                               headers=headers, known=self.known, products=self.products)
        record = self.journal.add(
            {
                "kind": "http",
                "lane": self._lane(request),
                "host": request_host(request),
                "method": request.method,
                "path": request.path,
                "client": client,
                "status": status,
                # As received, so what a proxy added toward the server is on record.
                "headers": headers if self.show_secrets else redact_headers(headers),
                "protocol": "HTTP/2" if request.version.major == 2 else f"HTTP/{request.version.major}.{request.version.minor}",
                # What the connection's ClientHello offered, and whether it looks intercepted (issue 15).
                "tls": tls,
                "interception": interception.to_dict(),
                **fields,
            }
        )
        return cast(ServerRequest, record)  # the journal stores plain dicts (they leave as JSON)

    async def h2_dispatch(self, request) -> web.Response:
        """An HTTP/2 request (:class:`harness.server.h2serve.H2Request`) to the handler of its route;
        unknown routes answer 404 and are journaled, as over HTTP/1.1."""
        routes = {("GET", "/"): self.index, ("POST", "/api/v1/sessions/join"): self.join,
                  ("POST", "/beam/v1/agents/register"): self.register}
        handler = routes.get((request.method, request.path))
        if handler is None:
            self._record(request, status=404)
            return web.json_response({"error": "not found (WebSockets are served over HTTP/1.1)"}, status=404)
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/", self.index)
        app.router.add_post("/api/v1/sessions/join", self.join)
        app.router.add_get("/api/v1/sessions/{sid}/ws", self.session_ws)
        app.router.add_post("/beam/v1/agents/register", self.register)
        app.router.add_get("/beam/v1/agents/{aid}/heartbeat", self.heartbeat_ws)
        app.middlewares.append(self._journal_unknown)
        return app

    @web.middleware
    async def _journal_unknown(self, request, handler):
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status in (404, 405):
                self._record(request, status=e.status)
            raise

    def _misdirected(self, request: web.Request, want: tuple[str, ...]) -> web.Response | None:
        host = request_host(request)
        if host not in want:
            self._record(request, status=421)
            return web.json_response({"error": f"this path is served by {' or '.join(want)}, not {host}"},
                                     status=421)
        return None

    async def index(self, request: web.Request) -> web.Response:
        self._record(request, status=200)
        return web.json_response({"service": "screenmeet-mock", "host": request_host(request)})

    async def join(self, request: web.Request) -> web.Response:
        if (bad := self._misdirected(request, API_HOSTS)) is not None:
            return bad
        try:
            body = await request.json()
            code = str(body["code"])
        except (ValueError, KeyError, TypeError):
            self._record(request, status=400)
            return web.json_response({"error": "send JSON {\"code\": \"<session code>\"}"}, status=400)
        if not code.strip():
            self._record(request, status=400, code=self._secret(code))
            return web.json_response({"error": "empty session code"}, status=400)
        sid = secrets.token_hex(6)
        self._record(request, status=200, code=self._secret(code), session=sid)
        return web.json_response({"session_id": sid, "ws_path": f"/api/v1/sessions/{sid}/ws"})

    async def register(self, request: web.Request) -> web.Response:
        if (bad := self._misdirected(request, BEAM_HOSTS)) is not None:
            return bad
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            self._record(request, status=401, authorization=self._secret(auth) if auth else None)
            return web.json_response({"error": "send Authorization: Bearer <agent token>"}, status=401)
        aid = secrets.token_hex(6)
        self._record(request, status=200, authorization=self._secret(auth), agent=aid)
        return web.json_response({"agent_id": aid, "heartbeat_path": f"/beam/v1/agents/{aid}/heartbeat"})

    async def _websocket(self, request: web.Request, want_host: tuple[str, ...], reply) -> web.StreamResponse:
        if (bad := self._misdirected(request, want_host)) is not None:
            return bad
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=MAX_BODY)
        try:
            await ws.prepare(request)
        except ConnectionError:  # the client hung up during the upgrade (aiohttp's reset error is one)
            self._record(request, status=499, websocket=True, error="the client closed the connection during the upgrade")
            return ws
        self._record(request, status=101, websocket=True)
        lane = self._lane(request)
        count = 0
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                count += 1
                # A harness.model.records.ServerMessage.
                self.journal.add(
                    {"kind": "ws-message", "lane": lane, "host": request_host(request), "path": request.path,
                     "direction": "client->server", "length": len(msg.data)}
                )
                await ws.send_str(reply(msg.data, count))
        except ConnectionError:
            pass  # the client went away mid-session: nothing to answer, nothing to log
        return ws

    async def session_ws(self, request: web.Request) -> web.StreamResponse:
        return await self._websocket(request, API_HOSTS, lambda data, n: f"ack {n}")

    async def heartbeat_ws(self, request: web.Request) -> web.StreamResponse:
        return await self._websocket(request, BEAM_HOSTS, lambda data, n: f"pong {data}")


def tls_context(cert: str, key: str, *, weak: bool = False) -> ssl.SSLContext:
    """The server's TLS context; ``weak`` lets OpenSSL load SHA-1 and RSA-1024 certificates
    (hostile sites must present them; security level 2 refuses to)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if weak:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(ALPN)  # h2 and http/1.1: the client's offer decides
    return ctx


async def serve(args: argparse.Namespace) -> None:
    server = MockScreenMeet(show_secrets=args.show_secrets or os.environ.get("LAB_SHOW_SECRETS") == "1",
                            journal_first_seq=args.journal_first_seq, known=args.known,
                            products=product_headers(load_vendors()))
    runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
    await runner.setup()
    loop = asyncio.get_running_loop()
    # aiohttp serves HTTP/1.1; a connection that negotiated h2 goes to harness.server.h2serve.
    factory = alpn_switch(runner.server, lambda: H2Protocol(server.h2_dispatch, MAX_BODY))
    listeners: list[PeekingServer] = []

    async def listen(ctx: ssl.SSLContext, wanted: list[int]) -> list[int]:
        ports = []
        for lane, port in enumerate(wanted):
            # Each connection's ClientHello is read before the handshake (harness.server.peek).
            listener = await PeekingServer.start(args.host, port, ctx, factory, server.saw_hello)
            listeners.append(listener)
            actual = listener.port
            server.lane_of_port[actual] = lane
            ports.append(actual)
        return ports

    ports = await listen(tls_context(args.cert, args.key), args.ports)
    # Hostile sites: the same service behind a bad certificate, one port per lane (harness.pki.hostile).
    sites = {name: await listen(tls_context(s["cert"], s["key"], weak=True), [int(p) for p in s["ports"]])
             for name, s in (_read_sites(args.sites) | _flag_sites(args)).items()}
    admin_host, admin_port = resolve_bind(args.admin)
    admin_runner, admin_url = await start_admin(server.journal, admin_host, admin_port, name="server")
    announce_ready({"ready": {"ports": ports, "sites": sites, "host": args.host, "admin": admin_url}},
                   args.ready_fd, args.ready_file)
    loop.run_in_executor(None, warm_up)  # mitmproxy's ClientHello parser, after readiness

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for listener in listeners:
        listener.close()
    await admin_runner.close()
    await runner.cleanup()


def _read_sites(path: str | None) -> dict:
    """``--sites FILE``: ``{name: {"cert": PEM, "key": PEM, "ports": [port per lane]}}`` (JSON)."""
    if not path:
        return {}
    with open(path) as f:
        return json.load(f)


def _flag_sites(args: argparse.Namespace) -> dict:
    """``--site-cases A,B --sites-dir DIR --site-base-port N`` (compose, where ports are fixed): the
    sites ``--sites`` would describe, each case's certificate at DIR/<case>.pem and its key at
    DIR/<case>.key, one port per lane laid out as the proxy's ``--site-base-port`` lays them out."""
    cases = parse_cases(args.site_cases)
    layout = lane_layout(args.site_base_port, cases, len(args.ports))
    return {case: {"cert": f"{args.sites_dir}/{case}.pem", "key": f"{args.sites_dir}/{case}.key",
                   "ports": layout[case]} for case in cases}


def _cases_arg(text: str) -> str:
    try:
        parse_cases(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _read_known(path: str | None) -> KnownClients:
    """``--known FILE`` (see :class:`harness.server.detect.KnownClients`); ValueError says what is wrong."""
    if not path:
        return KnownClients()
    try:
        with open(path) as f:
            return KnownClients.from_json(f.read())
    except (OSError, ValueError) as e:
        raise ValueError(f"mock server: cannot read the known fingerprints {path} ({e}); "
                         "pass the file harness.lab.fingerprints writes.") from None


def _ports_arg(text: str) -> list[int]:
    try:
        return parse_ports(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.server", description=__doc__.split("\n\n")[0])
    p.add_argument("--cert", required=True, help="certificate chain PEM (leaf first)")
    p.add_argument("--key", required=True, help="private key PEM")
    p.add_argument("--host", default="127.0.0.1", help="address the TLS ports bind to")
    p.add_argument("--ports", type=_ports_arg, default=[0], help="one TLS port per lane: 8443,8444 or 8443+2 (0 = free port)")
    p.add_argument("--sites", help="JSON file of hostile sites: {name: {cert, key, ports}} (see harness.pki.hostile)")
    p.add_argument("--site-cases", type=_cases_arg, default="", metavar="A,B",
                   help="hostile sites to serve (compose): certificates from --sites-dir, ports from --site-base-port")
    p.add_argument("--sites-dir", default="/lab/pki/sites", help="with --site-cases: the <case>.pem/.key directory")
    p.add_argument("--site-base-port", type=int, default=9443, help="with --site-cases: the first site's lane-0 port")
    p.add_argument("--known",
                   help="JSON file {client family: [JA4, ...]}: each client's own fingerprint (harness.lab.fingerprints)")
    p.add_argument("--admin", default="127.0.0.1:0", help="HOST:PORT of the journal endpoint (keep it loopback)")
    p.add_argument("--ready-fd", type=int, help="write the ready report to this file descriptor instead of stdout")
    p.add_argument("--ready-file", help="also write the ready report to this file (for container healthchecks)")
    p.add_argument("--show-secrets", action="store_true", help="journal session codes and tokens instead of redacting them")
    p.add_argument("--start-gate", action="store_true", help="wait for a line on stdin before reading files")
    p.add_argument("--journal-first-seq", type=int, default=1,
                   help="number of the first journal record (a restarted server continues above the old ones)")
    args = p.parse_args(argv)
    if args.start_gate:
        sys.stdin.readline()
    try:
        args.known = _read_known(args.known)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args))
    except OSError as e:
        print(f"mock server: cannot listen ({e}); choose free ports or stop what uses them.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
