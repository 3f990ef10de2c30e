"""InspectionAddon: the lab's policy wired to mitmproxy's event hooks.

The decisions live in plain objects (:class:`harness.policy.Policy`,
:class:`harness.proxy.config.ProxyConfig`); this class only

* finds the listener (policy, lane) a connection arrived on,
* refuses CONNECTs to hosts outside the lab,
* points lab hosts at the mock server (``server_connect``),
* passes excepted connections through untouched (``tls_clienthello`` sets
  ``ignore_connection``), and
* keeps the proxy journal: one record per client connection with the SNI, the
  action, the forged issuer, whether the client finished the handshake and the
  decrypted requests and WebSocket messages (credentials redacted unless
  ``lab_show_secrets``).

Options: ``lab_config`` (path of the JSON written by the lab) and
``lab_show_secrets``.
"""

from __future__ import annotations

import json
import logging

from cryptography import x509
from cryptography.x509.oid import NameOID
from mitmproxy import ctx, exceptions, http
from mitmproxy.connection import Client
from mitmproxy.proxy import server_hooks
from mitmproxy.tls import ClientHelloData, TlsData

from harness.journal import Journal, announce_ready, start_admin
from harness.netaddr import resolve_bind
from harness.policy import INTERCEPT, PASS_THROUGH
from harness.proxy.config import Listener, ProxyConfig

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie")
MAX_SHOWN_BODY = 4096


def issuer_cn(cert: x509.Certificate) -> str:
    attrs = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else cert.issuer.rfc4514_string()


def credentials_in(method: str, headers: dict[str, str], body: bytes) -> list[str]:
    """Which kinds of credential a decrypted request carried (names only)."""
    found = []
    if any(h in headers for h in SECRET_HEADERS):
        found.append("authorization")
    if body:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and ("code" in data or "token" in data):
            found.append("session-code" if "code" in data else "token")
    return found


class InspectionAddon:
    """mitmproxy addon: per-listener inspection policy and the connection journal."""

    def __init__(self, config: ProxyConfig | None = None, *, announce=None) -> None:
        self.config = config
        self.journal = Journal(first_seq=config.journal_first_seq if config else 1)
        self.listeners: dict[int, Listener] = {}
        self.admin_url: str | None = None
        self._admin = None
        # Called with the ready report once listeners and admin endpoint are up.
        self.announce = announce

    # -- options -------------------------------------------------------------
    def load(self, loader) -> None:
        loader.add_option("lab_config", str, "", "Path of the lab proxy configuration (JSON) written by 'harness up'.")
        loader.add_option("lab_show_secrets", bool, False, "Journal credentials in clear instead of redacting them.")

    def configure(self, updated) -> None:
        if "lab_config" in updated and ctx.options.lab_config:
            try:
                self.config = ProxyConfig.load(ctx.options.lab_config)
            except Exception as e:  # the sentence from ProxyConfig.load
                raise exceptions.OptionsError(str(e)) from None

    @property
    def show_secrets(self) -> bool:
        return bool(ctx.options.lab_show_secrets or (self.config and self.config.show_secrets))

    async def running(self) -> None:
        if self.config is None:
            return
        self._map_listeners()
        host, port = resolve_bind(self.config.admin)
        self._admin, self.admin_url = await start_admin(self.journal, host, port, name="proxy")
        report = {"ready": {"admin": self.admin_url, "listeners": [
            {"policy": l.policy.name, "lane": l.lane, "port": l.port} for l in self.listeners.values()
        ]}}
        if self.announce is not None:
            self.announce(report)
        else:
            announce_ready(report, None)

    async def done(self) -> None:
        if self._admin is not None:
            await self._admin.close()

    def _map_listeners(self) -> None:
        """Which port serves which (policy, lane): run.py fixed every port before start."""
        self.listeners = {l.port: l for l in self.config.listeners()}

    # -- helpers -------------------------------------------------------------
    def _listener(self, client: Client) -> Listener | None:
        return self.listeners.get(client.sockname[1]) if client.sockname else None

    def _record(self, client: Client) -> dict | None:
        return self.journal.get_open(client.id)

    # -- connection lifecycle ---------------------------------------------------
    def client_connected(self, client: Client) -> None:
        listener = self._listener(client)
        self.journal.open(client.id, {
            "kind": "connection",
            "lane": listener.lane if listener else None,
            "policy": listener.policy.name if listener else None,
            "listener": client.sockname[1] if client.sockname else None,
            "client": f"{client.peername[0]}:{client.peername[1]}" if client.peername else None,
            "connect_host": None,
            "sni": None,
            "action": None,
            "exception": None,
            "forged_issuer": None,
            "client_tls": "none",
            "client_tls_error": None,
            "upstream_error": None,
            "requests": [],
            "websocket": [],
        })

    def client_disconnected(self, client: Client) -> None:
        self.journal.close(client.id)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        record = self._record(flow.client_conn)
        host, port = flow.request.host, flow.request.port
        if record is not None:
            record["connect_host"] = f"{host}:{port}"
        if self.config and self.config.upstream_for(host, port, None) is None:
            # The lab only ever talks to its own hosts.
            if record is not None:
                record["action"] = "blocked"
            flow.response = http.Response.make(
                403, f"This lab proxy only serves {', '.join(self.config.lab_domains)}.\n".encode(),
                {"Content-Type": "text/plain"},
            )

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if not self.config or not data.server.address:
            return
        listener = self._listener(data.client)
        host, port = data.server.address
        target = self.config.upstream_for(host, port, listener.lane if listener else None)
        if target is None:
            data.server.error = f"{host} is not a lab host"
            return
        data.server.address = target

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        if (record := self._record(data.client)) is not None:
            record["upstream_error"] = str(data.server.error)

    # -- TLS ---------------------------------------------------------------------
    def tls_clienthello(self, data: ClientHelloData) -> None:
        client = data.context.client
        record = self._record(client)
        listener = self._listener(client)
        sni = data.client_hello.sni
        host = sni or (record["connect_host"].rsplit(":", 1)[0] if record and record["connect_host"] else None)
        if listener is None:
            action, matched = INTERCEPT, None
        else:
            matched = listener.policy.exception_for(host)
            action = listener.policy.decide(host)
        if record is not None:
            record.update(sni=sni, action=action, exception=matched.text if matched else None)
            if action == PASS_THROUGH:
                record["client_tls"] = "not-terminated"
        if action == PASS_THROUGH:
            data.ignore_connection = True

    def tls_start_client(self, data: TlsData) -> None:
        # Runs after mitmproxy's tlsconfig addon has built the forged certificate.
        record = self._record(data.context.client)
        if record is None or data.ssl_conn is None:
            return
        cert = data.ssl_conn.get_certificate()
        if cert is not None:
            record["forged_issuer"] = issuer_cn(cert.to_cryptography())

    def tls_established_client(self, data: TlsData) -> None:
        if (record := self._record(data.context.client)) is not None:
            record["client_tls"] = "established"
            record["tls_version"] = data.conn.tls_version

    def tls_failed_client(self, data: TlsData) -> None:
        if (record := self._record(data.context.client)) is not None:
            record["client_tls"] = "failed"
            record["client_tls_error"] = str(data.conn.error)

    def tls_failed_server(self, data: TlsData) -> None:
        if (record := self._record(data.context.client)) is not None:
            record["upstream_error"] = f"upstream TLS failed: {data.conn.error}"

    # -- decrypted traffic ----------------------------------------------------------
    def request(self, flow: http.HTTPFlow) -> None:
        record = self._record(flow.client_conn)
        if record is None or flow.request.method == "CONNECT":
            return
        headers = {k.lower(): v for k, v in flow.request.headers.items()}
        body = flow.request.raw_content or b""
        entry = {
            "method": flow.request.method,
            "host": flow.request.pretty_host,
            "path": flow.request.path.split("?", 1)[0],
            "body_length": len(body),
            "credentials": credentials_in(flow.request.method, headers, body),
        }
        if self.show_secrets:
            entry["headers"] = headers
            entry["body"] = body[:MAX_SHOWN_BODY].decode("utf-8", "replace")
        else:
            entry["headers"] = {k: (REDACTED if k in SECRET_HEADERS else v) for k, v in headers.items()}
        record["requests"].append(entry)

    def response(self, flow: http.HTTPFlow) -> None:
        record = self._record(flow.client_conn)
        if record and record["requests"] and flow.response is not None and flow.request.method != "CONNECT":
            record["requests"][-1]["status"] = flow.response.status_code

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        record = self._record(flow.client_conn)
        if record is None or flow.websocket is None:
            return
        message = flow.websocket.messages[-1]
        entry = {
            "direction": "client->server" if message.from_client else "server->client",
            "length": len(message.content),
        }
        if self.show_secrets:
            entry["text"] = message.content[:MAX_SHOWN_BODY].decode("utf-8", "replace")
        record["websocket"].append(entry)

