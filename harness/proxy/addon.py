"""InspectionAddon: the lab's policy wired to mitmproxy's event hooks.

The decisions live in plain objects (:class:`harness.model.policy.Policy`,
:class:`harness.proxy.config.ProxyConfig`); this class only

* finds the listener (policy, lane) a connection arrived on, and on a roaming
  listener the policy this connection gets (:mod:`harness.proxy.roaming`),
* refuses CONNECTs to hosts outside the lab,
* points lab hosts at the mock server (``server_connect``),
* serves transparent (gateway) listeners: a connection redirected there is
  accepted only when its original destination is that listener's gateway
  address, and goes to the lane's mock server; pass-through or interception is
  still decided from the SNI by the policy,
* passes excepted connections through untouched (``tls_clienthello`` sets
  ``ignore_connection``), matching IP exceptions against the destination too
  where the vendor does (:func:`harness.model.policy.match_subjects`,
  :mod:`harness.proxy.matching`); a client without SNI is forged for, and its
  upstream verified as, the CONNECT host (:mod:`harness.proxy.engine`),
* forges as the lab's vendor profile and the listener's policy say, and
  applies the profile's action to untrusted upstream certificates
  (:mod:`harness.proxy.forge`; a block page in ``request``), and
* keeps the proxy journal: one record per client connection with the SNI, the
  action, the forged issuer, whether the client finished the handshake and the
  decrypted requests and WebSocket messages (credentials redacted by
  :mod:`harness.model.secrets` unless ``lab_show_secrets``: every secret
  header, Basic and Bearer values in any header; bodies and message texts
  only with it), and the local address of each upstream connection (the
  server journal's ``client``, which ties a server request to its proxy
  connection); :class:`harness.model.records.ProxyRecord` declares its keys.

Options: ``lab_config`` (path of the JSON written by the lab) and
``lab_show_secrets``.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import cast

from cryptography import x509
from mitmproxy import ctx, exceptions, http
from mitmproxy.connection import Client
from mitmproxy.proxy import server_hooks
from mitmproxy.tls import ClientHelloData, TlsData
from OpenSSL import SSL

from harness.model.policy import INTERCEPT, PASS_THROUGH, match_subjects
from harness.model.records import DecryptedMessage, DecryptedRequest, ProxyRecord
from harness.model.secrets import credentials_in, redact_headers
from harness.model.vendors import VendorProfile
from harness.net.addresses import resolve_bind
from harness.net.journal import Journal, announce_ready
from harness.pki.names import display_name
from harness.proxy import forge
from harness.proxy.config import Listener, ProxyConfig
from harness.proxy.engine import engine_for_host
from harness.proxy.matching import destination_of
from harness.proxy.roaming import Roaming, RoamingAdmin
from harness.proxy.upstream import UpstreamChecker

logger = logging.getLogger(__name__)

MAX_SHOWN_BODY = 4096


def _is_transparent(client: Client) -> bool:
    mode = getattr(client, "proxy_mode", None)
    return mode is not None and mode.type_name == "transparent"


class InspectionAddon:
    """mitmproxy addon: per-listener inspection policy and the connection journal."""

    def __init__(self, config: ProxyConfig | None = None, *, announce=None) -> None:
        self.config = config
        self.journal = Journal(first_seq=config.journal_first_seq if config else 1)
        self.listeners: dict[int, Listener] = {}
        self.transparent: dict[int, Listener] = {}  # transparent listener port -> listener
        self.admin_url: str | None = None
        self._admin: RoamingAdmin | None = None
        self.roaming = Roaming()  # connection numbers on roaming listeners, reset per cell by the runner
        # Called with the ready report once listeners and admin endpoint are up.
        self.announce = announce
        self._forger: forge.Forger | None = None
        self._vendor: VendorProfile | None = None
        self._checker: UpstreamChecker | None = None
        # Client ids whose upstream TLS failed, and those whose untrusted upstream is allowed.
        self._upstream_failed: set[str] = set()
        self._allow_untrusted: set[str] = set()

    @property
    def vendor(self) -> VendorProfile | None:
        """The emulated product (None: plain mitmproxy, the ``generic`` behaviour)."""
        data = self.config.vendor if self.config else None
        if data and (self._vendor is None or self._vendor.name != data.get("name")):
            self._vendor = VendorProfile.from_dict(data)
        return self._vendor if data else None

    def _get_forger(self) -> forge.Forger:
        # A method, not a property: mitmproxy inspects addon attributes when it loads them.
        if self._forger is None:
            confdir = Path(ctx.options.confdir).expanduser()
            pki_dir = (self.config.pki_dir if self.config else None) or confdir.parent
            self._forger = forge.Forger(confdir, pki_dir)
        return self._forger

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
        self._admin = RoamingAdmin(self.journal, self.roaming, name="proxy")
        self.admin_url = await self._admin.start(host, port)
        report = {"ready": {"admin": self.admin_url, "listeners": [
            {"policy": l.policy.name, "lane": l.lane, "port": l.port} for l in self.listeners.values()
        ]}}
        if self.transparent:
            report["ready"]["transparent"] = [
                {"policy": l.policy.name, "lane": l.lane, "port": l.port, "gateway": "%s:%d" % l.gateway}
                for l in self.transparent.values()
            ]
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
        self.transparent = {l.port: l for l in self.config.transparent_listeners()}

    # -- helpers -------------------------------------------------------------
    def _listener(self, client: Client) -> Listener | None:
        if (roamed := self.roaming.listener(client.id)) is not None:
            return roamed  # a roaming listener, with the policy this connection got
        if _is_transparent(client):
            # mitmproxy put the original destination in sockname; the mode names the listener.
            listener = self.transparent.get(client.proxy_mode.listen_port())
            return listener if listener and client.sockname == listener.gateway else None
        return self.listeners.get(client.sockname[1]) if client.sockname else None

    def _record(self, client: Client) -> ProxyRecord | None:
        # The journal holds plain dicts (they leave as JSON); this one is client_connected's.
        return cast("ProxyRecord | None", self.journal.get_open(client.id))

    # -- connection lifecycle ---------------------------------------------------
    def client_connected(self, client: Client) -> None:
        listener = self._listener(client)
        # Every key ProxyRecord requires, so readers can index them; the journal adds
        # seq, time and open.  Hooks below fill the values in.
        record = self.journal.open(client.id, {
            "kind": "connection",
            "lane": listener.lane if listener else None,
            "policy": listener.policy.name if listener else None,
            "listener": (client.proxy_mode.listen_port() if _is_transparent(client)
                         else client.sockname[1] if client.sockname else None),
            "original_dst": "%s:%d" % client.sockname[:2] if _is_transparent(client) and client.sockname else None,
            "client": f"{client.peername[0]}:{client.peername[1]}" if client.peername else None,
            "connect_host": None,
            "sni": None,
            "action": None,
            "exception": None,
            "forged_issuer": None,
            "forged_key": None,
            "untrusted_upstream": None,
            "blocked": False,
            "client_tls": "none",
            "client_tls_error": None,
            "upstream_error": None,
            "requests": [],
            "websocket": [],
        })
        if listener is not None and (n := self.roaming.connect(client.id, listener)) is not None:
            record.update({"connection": n, "applied_policy": self.roaming.listener(client.id).policy.name})

    def client_disconnected(self, client: Client) -> None:
        self.roaming.disconnect(client.id)
        self._upstream_failed.discard(client.id)
        self._allow_untrusted.discard(client.id)
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
        if _is_transparent(data.client):
            return self._transparent_connect(data)
        listener = self._listener(data.client)
        host, port = data.server.address
        site = listener.policy.upstream if listener else ""
        try:
            target = self.config.upstream_for(host, port, listener.lane if listener else None, site)
        except KeyError:
            data.server.error = f"this lab serves no hostile site {site!r} (policy {listener.policy.name})"
            return
        if target is None:
            data.server.error = f"{host} is not a lab host"
            return
        data.server.address = target

    def _transparent_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        """A redirected connection (mitmproxy's eager strategy opens it before the ClientHello):
        only the listener's gateway address is served, and it means the lane's mock server."""
        listener = self._listener(data.client)
        if listener is None:
            host, port = data.server.address
            data.server.error = f"original destination {host}:{port} is not a gateway address of this lab"
            if (record := self._record(data.client)) is not None:
                record["action"] = "blocked"
            return
        try:
            data.server.address = self.config.gateway_upstream(listener)
        except KeyError:
            data.server.error = f"this lab serves no hostile site {listener.policy.upstream!r} (policy {listener.policy.name})"

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        # Where the server sees this connection come from: its journal's "client" for each request.
        if (record := self._record(data.client)) is not None and data.server.sockname:
            record.setdefault("upstream_local", []).append("%s:%d" % data.server.sockname[:2])

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        if (record := self._record(data.client)) is not None:
            record["upstream_error"] = str(data.server.error)

    # -- TLS ---------------------------------------------------------------------
    def tls_clienthello(self, data: ClientHelloData):
        client = data.context.client
        record = self._record(client)
        listener = self._listener(client)
        sni = data.client_hello.sni
        # Without SNI: the CONNECT host, or a transparent connection's original destination.
        fallback = record and (record["connect_host"] or record["original_dst"])
        host = sni or (fallback.rsplit(":", 1)[0] if fallback else None)
        if not sni and host and record and record["connect_host"] and data.context.server.sni is None:
            # As mitmproxy does without the lab's address rewrite: the upstream is asked for (and
            # verified as) the CONNECT host, not the address the lab sends it to.
            data.context.server.sni = host
        destination = None
        if listener is None:
            action, matched = INTERCEPT, None
        else:
            mode = self.vendor.exception_match if self.vendor else "sni"
            host, destination = match_subjects(mode, host, destination_of(record, self.config, listener))
            matched = listener.policy.exception_for(host, destination)
            action = listener.policy.decide(host, destination)
        if record is not None:
            record.update({"sni": sni, "action": action, "exception": matched.text if matched else None})
            if destination is not None:
                record["destination"] = destination
            if action == PASS_THROUGH:
                record["client_tls"] = "not-terminated"
        if action == PASS_THROUGH:
            data.ignore_connection = True
        elif (listener is not None and data.context.server.address
              and forge.untrusted_action(listener.policy, self.vendor) in ("pass-through", "allow")):
            # mitmproxy awaits what a hook returns, so the check ends before the ClientHello is answered.
            return self._early_untrusted_upstream(data, listener, record, sni)
        return None

    async def _early_untrusted_upstream(self, data: ClientHelloData, listener: Listener,
                                        record: ProxyRecord | None, sni: str | None) -> None:
        """pass-through and allow must be decided now, before mitmproxy meets the server:
        verify the upstream first (as products with those actions do)."""
        if self._checker is None:
            self._checker = UpstreamChecker(ctx.options.ssl_verify_upstream_trusted_ca or None)
        problem = await self._checker.check(data.context.server.address, sni)
        if problem is None:
            return
        action = forge.untrusted_action(listener.policy, self.vendor)
        if record is not None:
            record.update({"untrusted_upstream": action, "upstream_error": problem})
        if action == "allow":
            self._allow_untrusted.add(data.context.client.id)
            return
        if record is not None:
            record.update({"action": PASS_THROUGH, "client_tls": "not-terminated"})
        data.ignore_connection = True

    def tls_start_server(self, data: TlsData) -> None:
        if data.context.client.id in self._allow_untrusted and data.ssl_conn is not None:
            # "allow": the product re-signs an untrusted server with its trusted CA, so it must not refuse it.
            data.ssl_conn.set_verify(SSL.VERIFY_NONE, None)

    def tls_start_client(self, data: TlsData) -> None:
        # Runs after mitmproxy's tlsconfig addon has built its own forged certificate.
        client = data.context.client
        record = self._record(client)
        listener = self._listener(client)
        if data.ssl_conn is None:
            return
        if listener is not None and not data.is_dtls:
            p = forge.plan(listener.policy, self.vendor, upstream_failed=client.id in self._upstream_failed)
            if record is not None:
                record.update({"blocked": p.blocked, "untrusted_upstream": p.untrusted_action or record["untrusted_upstream"]})
            if p.kind != forge.ENGINE:
                self._present(data, p, record)
                return
            if client.sni is None and record is not None and record["connect_host"]:
                engine_for_host(data, record["connect_host"].rsplit(":", 1)[0])
        if record is not None and (cert := data.ssl_conn.get_certificate()) is not None:
            record["forged_issuer"] = display_name(cert.to_cryptography().issuer)

    def _present(self, data: TlsData, p: forge.Plan, record: ProxyRecord | None) -> None:
        """Swap mitmproxy's connection for the lab's: a forged leaf per the plan, or none (refuse)."""
        server = data.context.server
        # Cert.to_pem() exists in mitmproxy 11 and 12 (to_cryptography() only in 12).
        upstream = x509.load_pem_x509_certificate(server.certificate_list[0].to_pem()) if server.certificate_list else None
        leaf = None
        if p.kind == forge.FORGE:
            connect_host = record["connect_host"].rsplit(":", 1)[0] if record and record["connect_host"] else None
            names = forge.names_for(data.context.client.sni, connect_host, upstream)
            leaf = self._get_forger().leaf(p, names, upstream)
        data.ssl_conn = self._get_forger().connection(p, data.ssl_conn.get_app_data(), leaf)
        if record is not None and leaf is not None:
            record.update({"forged_issuer": display_name(leaf[0].issuer), "forged_key": forge.leaf_key_label(leaf[1]),
                           "forged_case": p.case or None})

    def tls_established_client(self, data: TlsData) -> None:
        if (record := self._record(data.context.client)) is not None:
            record["client_tls"] = "established"
            record["tls_version"] = data.conn.tls_version
            record["alpn_client"] = data.conn.alpn.decode() if data.conn.alpn else None

    def tls_established_server(self, data: TlsData) -> None:
        # The protocol each leg negotiated (ALPN): what an HTTP/2 client really got.
        if (record := self._record(data.context.client)) is not None:
            record["alpn_server"] = data.conn.alpn.decode() if data.conn.alpn else None

    def tls_failed_client(self, data: TlsData) -> None:
        if (record := self._record(data.context.client)) is not None:
            record["client_tls"] = "failed"
            record["client_tls_error"] = str(data.conn.error)

    def tls_failed_server(self, data: TlsData) -> None:
        self._upstream_failed.add(data.context.client.id)
        if (record := self._record(data.context.client)) is not None:
            record["upstream_error"] = f"upstream TLS failed: {data.conn.error}"

    # -- decrypted traffic ----------------------------------------------------------
    def request(self, flow: http.HTTPFlow) -> None:
        record = self._record(flow.client_conn)
        if record is None or flow.request.method == "CONNECT":
            return
        headers = {k.lower(): v for k, v in flow.request.headers.items()}
        body = flow.request.raw_content or b""
        entry: DecryptedRequest = {
            "method": flow.request.method,
            "host": flow.request.pretty_host,
            "path": flow.request.path.split("?", 1)[0],  # a query string may carry a token
            "body_length": len(body),
            "credentials": credentials_in(headers, body),
            "headers": headers if self.show_secrets else redact_headers(headers),
        }
        if self.show_secrets:
            entry["body"] = body[:MAX_SHOWN_BODY].decode("utf-8", "replace")
        record["requests"].append(entry)
        if record["blocked"]:
            self._block(flow)

    def _block(self, flow: http.HTTPFlow) -> None:
        """The vendor's block page for an untrusted upstream; without one, mitmproxy's own 502
        (it tries the upstream again, fails verification again, and says so)."""
        vendor = self.vendor
        if vendor is None or not vendor.block_page:
            return
        title = html.escape(vendor.block_page)
        body = (f"<!doctype html><title>{title}</title><h1>{title}</h1>"
                f"<p>{html.escape(vendor.product)} did not connect you to {html.escape(flow.request.pretty_host)}: "
                "its certificate is not trusted.</p>\n")
        flow.response = http.Response.make(vendor.block_status, body.encode(), {"Content-Type": "text/html"})

    def response(self, flow: http.HTTPFlow) -> None:
        record = self._record(flow.client_conn)
        if record and record["requests"] and flow.response is not None and flow.request.method != "CONNECT":
            record["requests"][-1]["status"] = flow.response.status_code

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        record = self._record(flow.client_conn)
        if record is None or flow.websocket is None:
            return
        message = flow.websocket.messages[-1]
        entry: DecryptedMessage = {
            "direction": "client->server" if message.from_client else "server->client",
            "length": len(message.content),
        }
        if self.show_secrets:
            entry["text"] = message.content[:MAX_SHOWN_BODY].decode("utf-8", "replace")
        record["websocket"].append(entry)
