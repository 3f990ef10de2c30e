"""PolicyLogin: mitmproxy's own proxy authentication (``proxyauth``), per listener.

mitmproxy's ``proxyauth`` option applies to every listener of the process, but
the lab serves several policies at once and only some require a login
(``auth = "basic"`` in ``fixtures/policies.toml``).  So this addon holds its
own instance of mitmproxy's :class:`~mitmproxy.addons.proxyauth.ProxyAuth`
(validator :class:`~mitmproxy.addons.proxyauth.SingleUser` with the lab's
login) and hands it only the flows of listeners whose policy asks for one.
mitmproxy's code does the rest, as for ``--proxyauth USER:PASSWORD``: the
407 answer with ``Proxy-Authenticate: Basic``, the check, removing
``Proxy-Authorization`` before anything goes upstream, and remembering an
authenticated CONNECT for the requests inside its tunnel.

A refused CONNECT gets no tunnel at all: no TLS, nothing forged, nothing
passed through (the exception is decided later, on the ClientHello).
Transparent listeners are never asked: their clients were told about no
proxy, so there is nobody to log in.

The connection's journal record says what became of the login
(``proxy_login``: accepted, missing, rejected; never the login itself).
"""

from __future__ import annotations

from collections.abc import Callable

from mitmproxy import http
from mitmproxy.addons.proxyauth import ProxyAuth, SingleUser
from mitmproxy.connection import Client

from harness.model.proxylogin import LOGIN_MISSING, LOGIN_REJECTED, PROXY_AUTH_REQUIRED, login_answer
from harness.proxy.config import Listener


def requires_login(listener: Listener | None, transparent: bool) -> bool:
    """Whether a connection on ``listener`` must log in: an explicit-proxy listener of a policy with ``auth``."""
    return listener is not None and not transparent and bool(listener.policy.auth)


def login_outcome(status: int | None, sent: bool) -> str:
    """The journal's ``proxy_login`` for an answer ``status`` (None: none yet, the login passed)."""
    answer = login_answer(status or 0, sent)
    return {LOGIN_MISSING: "missing", LOGIN_REJECTED: "rejected"}.get(answer, "accepted")


class PolicyLogin:
    """mitmproxy addon: mitmproxy's ProxyAuth on the listeners whose policy has ``auth``.

    ``login`` is ``USER:PASSWORD`` (None: the lab has no login, and a policy that asks
    for one refuses everybody, which :func:`harness.proxy.run.run` never lets happen);
    ``listener_of`` and ``record_of`` are the inspection addon's: the listener a client
    came in on, and its open journal record.
    """

    def __init__(self, login: str | None, *, listener_of: Callable[[Client], Listener | None],
                 record_of: Callable[[Client], dict | None]) -> None:
        self.auth = ProxyAuth()
        # Set directly, not through the global option, so only this instance checks it.
        self.auth.validator = SingleUser(login) if login else _Nobody()
        self.listener_of, self.record_of = listener_of, record_of

    def _required(self, flow: http.HTTPFlow) -> bool:
        client = flow.client_conn
        mode = getattr(client, "proxy_mode", None)
        return requires_login(self.listener_of(client), mode is not None and mode.type_name == "transparent")

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if self._required(flow):
            self._check(flow, self.auth.http_connect)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # Plain HTTP through the proxy (http://mitm.it); inside a tunnel mitmproxy finds the
        # connection already authenticated by its CONNECT and asks for nothing.
        if self._required(flow):
            first = flow.client_conn not in self.auth.authenticated
            self._check(flow, self.auth.requestheaders, note=first)

    def _check(self, flow: http.HTTPFlow, hook, note: bool = True) -> None:
        sent = "Proxy-Authorization" in flow.request.headers
        hook(flow)
        record = self.record_of(flow.client_conn)
        if note and record is not None:
            status = flow.response.status_code if flow.response is not None else None
            record["proxy_login"] = login_outcome(status if status == PROXY_AUTH_REQUIRED else None, sent)


class _Nobody:
    """A validator that accepts no login."""

    def __call__(self, username: str, password: str) -> bool:
        return False
