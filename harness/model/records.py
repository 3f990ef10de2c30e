"""The journals' records: what the proxy and the mock server write, and what the verdict may rely on.

The records cross process boundaries as JSON (the admin endpoint of
:mod:`harness.net.journal`), so they stay plain dicts; these ``TypedDict``
classes declare their keys (DESIGN.md section 4).  The contract:

* a key not marked ``NotRequired`` is in every record, from the moment the
  record is journaled (the proxy opens its record with every such key and
  fills the values in as hooks fire), so readers index it: ``record["action"]``;
* a ``NotRequired`` key appears only once the event that sets it happened
  (a response, a finished handshake, ``--show-secrets``), and readers use
  ``.get``;
* no record carries a key not declared here.

``tests/model/test_records.py`` holds real records from the addon, the server
and a running lab to these declarations, so the contract is enforced, not
only written down.

Writers: :class:`harness.proxy.addon.InspectionAddon` (:class:`ProxyRecord`,
with its :class:`DecryptedRequest` and :class:`DecryptedMessage` entries) and
:class:`harness.server.mock.MockScreenMeet` (:data:`ServerRecord`).  Readers:
:mod:`harness.model.verdict` and :mod:`harness.reports`.
"""

# No "from __future__ import annotations" here: on Python 3.11 TypedDict then cannot see
# NotRequired, and __required_keys__ (which the contract test reads) would list every key.
from typing import Literal, NotRequired, TypedDict

# The proxy's ``action``: its policy's decision (harness.model.vocab.INTERCEPT / PASS_THROUGH), or
# "blocked" when it refused the CONNECT or the transparent destination itself.
Action = Literal["intercepted", "passed-through", "blocked"]
# The client side of a proxy connection: no TLS (yet), not terminated by the proxy (passed
# through), handshake finished, handshake failed.
ClientTLS = Literal["none", "not-terminated", "established", "failed"]
Direction = Literal["client->server", "server->client"]


class Journaled(TypedDict):
    """What :meth:`harness.net.journal.Journal.add` stamps on every record, whoever wrote it."""

    seq: int  # the record's number in its journal; readers keep the last one they saw as a cursor
    time: float  # when it was journaled (Unix time)


class DecryptedRequest(TypedDict):
    """One HTTP request the proxy decrypted (an entry of :attr:`ProxyRecord` ``requests``).

    Its presence is the evidence that the MITM could read the traffic.  ``credentials``
    names the kinds of credential the request carried (``authorization``,
    ``session-code``, ``token``), never their values; ``headers`` has the
    credential headers redacted unless the proxy shows secrets.
    """

    method: str
    host: str
    path: str  # without the query string
    body_length: int
    credentials: list[str]
    headers: dict[str, str]  # lower-case names
    body: NotRequired[str]  # only when the proxy shows secrets: the body's first 4 KiB
    status: NotRequired[int]  # once a response was relayed (or the proxy answered with its block page)


class DecryptedMessage(TypedDict):
    """One WebSocket message the proxy decrypted (an entry of :attr:`ProxyRecord` ``websocket``)."""

    direction: Direction
    length: int
    text: NotRequired[str]  # only when the proxy shows secrets: the message's first 4 KiB


class ProxyRecord(Journaled):
    """The proxy journal: one record per client connection.

    Always there (``None`` until the matching hook fired, or when it does not apply):

    * ``kind`` – ``"connection"``;
    * ``lane``, ``policy`` – the listener the client came in on (``None``: an
      address that is no lab listener);
    * ``listener`` – that listener's port; ``original_dst`` – ``HOST:PORT`` a
      transparent (gateway) connection was headed for, else ``None``;
    * ``client`` – the client's ``HOST:PORT``; ``connect_host`` – the CONNECT target;
    * ``sni`` – the ClientHello's server name;
    * ``action`` – :data:`Action`, ``None`` while no ClientHello was seen;
      ``exception`` – the exception pattern that let the connection pass through;
    * ``forged_issuer`` – the common name of the issuer of the certificate the
      proxy showed the client; ``forged_key`` – that leaf's key type, when the lab
      forged it (not mitmproxy's engine);
    * ``untrusted_upstream`` – the vendor action applied to an untrusted upstream
      certificate (one of :data:`harness.model.vocab.ACTIONS`); ``blocked`` –
      whether the proxy answers this connection's requests itself (a block page);
    * ``client_tls`` – :data:`ClientTLS`; ``client_tls_error`` – why it failed;
      ``upstream_error`` – why the upstream connection or its TLS failed;
    * ``requests``, ``websocket`` – what the proxy decrypted, in order;
    * ``open`` – whether the connection is still alive (its record may still change).

    Only after the event: ``closed`` (Unix time the connection closed),
    ``tls_version`` (once the client's handshake finished), ``forged_case``
    (when the lab forged the leaf: the :mod:`harness.pki.hostile` case, or ``None``),
    ``upstream_local`` (once the proxy connected upstream: the local ``HOST:PORT`` of
    each of its connections to the server, which the server journals as ``client``).

    Only under a vendor that matches exceptions against destinations
    (``exception_match = "destination"``): ``destination``, the address the
    connection goes to, which IP exceptions were compared with.  Only when the
    vendor's ``connect_ports`` refused the CONNECT: ``connect_denied`` (why).
    Once a decrypted leg's handshake finished: ``alpn_client`` / ``alpn_server``,
    the protocol (ALPN) negotiated with the client / the server, ``None`` for none.

    Only on a roaming listener (:class:`harness.model.policy.Roam`): ``connection``,
    the connection's number in its cell (from 1), and ``applied_policy``, the
    policy it got (``policy`` stays the listener's).
    """

    kind: Literal["connection"]
    lane: int | None
    policy: str | None
    listener: int | None
    original_dst: str | None
    client: str | None
    connect_host: str | None
    sni: str | None
    action: Action | None
    exception: str | None
    forged_issuer: str | None
    forged_key: str | None
    untrusted_upstream: str | None
    blocked: bool
    client_tls: ClientTLS
    client_tls_error: str | None
    upstream_error: str | None
    requests: list[DecryptedRequest]
    websocket: list[DecryptedMessage]
    open: bool
    closed: NotRequired[float]
    tls_version: NotRequired[str]
    forged_case: NotRequired[str | None]
    upstream_local: NotRequired[list[str]]
    connection: NotRequired[int]
    applied_policy: NotRequired[str]
    # Only on a listener whose policy requires a login (harness.proxy.login): what became of the
    # client's login on its CONNECT (or plain proxy request): accepted, missing or rejected.
    proxy_login: NotRequired[Literal["accepted", "missing", "rejected"]]
    destination: NotRequired[str]
    connect_denied: NotRequired[str]
    alpn_client: NotRequired[str | None]
    alpn_server: NotRequired[str | None]


class Grade(TypedDict):
    """The NDSS 2017 grade of a ClientHello (:func:`harness.model.tlsgrade.grade`)."""

    letter: Literal["A", "B", "C", "F"]
    reason: str


class TlsSeen(TypedDict):
    """A ClientHello as the mock server journals it (:meth:`harness.model.tlsfingerprint.Hello.summary`)."""

    versions: list[str]
    ciphers: list[str]  # 0x hex, wire order, GREASE left out
    groups: list[str]
    alpn: list[str]
    sni: str | None
    ja3: str
    ja4: str
    grade: Grade


class Interception(TypedDict):
    """The server's verdict on a request (:class:`harness.server.detect.Interception`)."""

    suspected: bool
    reasons: list[str]
    product: str | None


class ServerRequest(Journaled):
    """The server journal: one HTTP request the mock server received (``kind`` ``"http"``).

    Always there: ``lane`` (the TLS port's lane), ``host`` (the Host header's
    name, lower case), ``method``, ``path``, ``client`` (the peer's ``HOST:PORT``)
    and ``status`` (what the server answered; 101 for a WebSocket upgrade).

    Only where the route has them: ``code`` and ``session`` (a session join),
    ``authorization`` (an agent registration: the header, ``None`` when it was
    missing) and ``agent``, ``websocket`` (``True`` on upgrades) and ``error``
    (why an upgrade did not finish).  Every request also has ``headers`` (the
    request headers as received, names lower case: what a proxy added shows here),
    ``protocol`` (``HTTP/1.1``), ``tls`` (what the connection's ClientHello offered:
    :class:`TlsSeen`, ``None`` when none was read; through inspection, the proxy's) and
    ``interception`` (the server's suspicion: :class:`Interception`).  Credentials are
    redacted unless the server shows secrets.
    """

    kind: Literal["http"]
    lane: int | None
    host: str
    method: str
    path: str
    client: str | None
    status: int
    code: NotRequired[str]
    session: NotRequired[str]
    authorization: NotRequired[str | None]
    agent: NotRequired[str]
    websocket: NotRequired[bool]
    error: NotRequired[str]
    # Only when the request carried a Proxy-Authorization header: a proxy login that went
    # beyond the proxy (never, with the lab's proxy and clients; harness.proxy.login).
    proxy_authorization: NotRequired[str]
    headers: NotRequired[dict[str, str]]
    protocol: NotRequired[str]
    # What the connection's ClientHello offered (TlsSeen; None: no ClientHello was read), and the
    # server's suspicion (Interception): through inspection, this is the proxy's upstream hello.
    tls: NotRequired[TlsSeen | None]
    interception: NotRequired[Interception]


class ServerMessage(Journaled):
    """The server journal: one WebSocket text message the mock server received (``kind`` ``"ws-message"``)."""

    kind: Literal["ws-message"]
    lane: int | None
    host: str
    path: str
    direction: Literal["client->server"]
    length: int


# A server journal record; ``kind`` tells which.
ServerRecord = ServerRequest | ServerMessage
