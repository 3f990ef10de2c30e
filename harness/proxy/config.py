"""The proxy's configuration: listeners, policies, upstream mapping.  Plain data.

Every (policy, lane) pair gets its own listener port, so several policies are
served at once and parallel scenarios (one per lane) never share a listener:
the listener a connection arrived on says which scenario it belongs to.

The ScreenMeet names reach the mock server without DNS or /etc/hosts changes:
the proxy rewrites the upstream address of lab hosts to ``upstream_host`` (or
keeps the name, for compose where Docker's DNS resolves the aliases) and the
lane's server port.  Hosts outside the lab's domains are refused, so the lab
never sends traffic anywhere else; the one IP literal served is ``upstream_host:443``
(a client connecting by address reaches the lab as by name).

Transparent (gateway) listeners serve clients that were told about no proxy:
iptables REDIRECTs their connections to a *gateway address* (``IP:443``, one
per (policy, lane)) to the listener, and mitmproxy reads the original
destination (SO_ORIGINAL_DST).  That address is the only destination such a
listener serves; it stands for the lane's mock server (see
:mod:`harness.lab.gateway`).
"""

from __future__ import annotations

import ipaddress
import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from harness.errors import BadFileError
from harness.model.files import JSON_LIMIT, read_text_bounded
from harness.model.policy import Policy, is_lab_host
from harness.model.values import split_host_port
from harness.net.addresses import lane_layout

LAB_DOMAINS = ("screenmeet.com", "scrn.mt", "lab.test")
# The names '--upstream live' sends to their real addresses (system DNS); lab.test stays the mock's.
LIVE_DOMAINS = ("screenmeet.com", "scrn.mt")
UPSTREAM_MODES = ("mock", "live")


@dataclass(frozen=True)
class Listener:
    """One listener of the proxy: the policy it applies for one lane, on one port."""

    policy: Policy
    lane: int
    port: int
    # Transparent listeners only: the gateway address (IP, port) redirected here, the one
    # original destination the listener serves.  None for an explicit-proxy listener.
    gateway: tuple[str, int] | None = None


def gateway_addresses(first: str, policies: list[str], lanes: int, port: int = 443) -> dict[str, list[str]]:
    """One gateway address per (policy, lane), consecutive from ``first``, policy-major:
    ``{policy: ["IP:PORT" per lane]}``."""
    layout = lane_layout(ipaddress.IPv4Address(first), policies, lanes)
    return {name: [f"{address}:{port}" for address in addresses] for name, addresses in layout.items()}


def transparent_policy_names(text: str | None, policies) -> list[str]:
    """``--transparent-policies a,b`` -> [a, b] (every policy when empty); unknown names are an error."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()] or list(policies)
    if unknown := [n for n in names if n not in policies]:
        raise ValueError(f"--transparent-policies names {unknown[0]!r}; known policies: {', '.join(policies)}")
    return names


def parse_address(text: str) -> tuple[str, int]:
    """``"IP:PORT"`` -> (IP, PORT); raises ValueError naming the text."""
    try:
        host, port = split_host_port(text)
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        raise ValueError(f"gateway address {text!r} is not IP:PORT") from None


@dataclass(kw_only=True)
class ProxyConfig:
    """Everything the proxy process needs, readable from one JSON file.

    A field is declared once, here: :meth:`to_dict` and :meth:`from_dict` follow
    the declarations (a field's type is what its JSON value is checked against).
    """

    policies: dict[str, Policy]
    lanes: int = 1
    listen_host: str = "127.0.0.1"
    ports: dict[str, list[int]] = field(default_factory=dict)  # policy -> port per lane; 0 = any free port
    upstream_host: str | None = "127.0.0.1"  # None: keep the name (DNS resolves it)
    upstream_ports: list[int] = field(default_factory=list)  # server port per lane
    lab_domains: tuple[str, ...] = LAB_DOMAINS
    admin: str = "127.0.0.1:0"
    show_secrets: bool = False
    journal_first_seq: int = 1  # above the previous journal's numbers when the lab restarts the proxy
    # Hostile sites of the mock server: case -> port per lane (harness.pki.hostile; a policy's `upstream`).
    sites: dict[str, list[int]] = field(default_factory=dict)
    # The vendor profile the proxy emulates (VendorProfile.to_dict()); None: plain mitmproxy forging.
    vendor: dict | None = None
    # The mitmproxy confdir holding mitmproxy-ca.pem (the organisation CA's key and certificate), so
    # mitmproxy forges with the org CA; required, as without it mitmproxy would make up its own CA.
    confdir: str
    # The CA bundle upstream certificates are verified against (the lab's public root, as a real
    # inspection proxy verifies against the public web PKI); None: mitmproxy's default bundle.
    upstream_trust: str | None = None
    # The lab PKI directory (untrusted and sub CAs for forging); default: the confdir's parent.
    pki_dir: str | None = None
    # Transparent listeners, bound on transparent_host: policy -> gateway address "IP:PORT" per lane,
    # and policy -> listener port per lane (0 = any free port, like ``ports``).
    gateways: dict[str, list[str]] = field(default_factory=dict)
    transparent_host: str = "127.0.0.1"
    transparent_ports: dict[str, list[int]] = field(default_factory=dict)
    # Live upstream and evidence (harness up --upstream live, --web, --save-flows, --har, --keylog).
    # "live": ScreenMeet names go to their real addresses on the requested port (system DNS), verified
    # against upstream_trust; hostile sites and lab.test stay the lab's.
    upstream_mode: str = "mock"
    web_port: int | None = None  # mitmweb's UI on 127.0.0.1 at this port; None: no mitmweb
    web_token: str | None = None  # mitmweb's login token where mitmproxy has one (12+)
    save_flows: str | None = None  # mitmproxy flow file (its save_stream_file option)
    har: str | None = None  # mitmproxy's HAR export (its hardump option), written when the proxy stops
    keylog: str | None = None  # TLS key log (NSS format) of both legs
    chains_dir: str | None = None  # per host: the forged chain shown and the real chain met (PEM)

    def __post_init__(self) -> None:
        if self.upstream_mode not in UPSTREAM_MODES:
            raise ValueError(f"upstream_mode is {self.upstream_mode!r}; it must be one of {', '.join(UPSTREAM_MODES)}")
    # Proxy login (issue 14): USER:PASSWORD that listeners of policies with `auth` require
    # (harness.proxy.login); None: the proxy makes one up at start and reports it when ready.
    proxy_login: str | None = None

    def upstream_for(self, host: str, port: int, lane: int | None, site: str = "") -> tuple[str, int] | None:
        """Where a connection to ``host:port`` really goes, or None if it is not a lab host.

        ``site`` names a hostile site (a policy's ``upstream``): the lane's port
        of that site instead of the mock server's.  Raises :class:`KeyError` for
        a site this lab does not serve.
        """
        if not (is_lab_host(host, self.lab_domains) or self.is_lab_address(host, port)):
            return None
        if self.upstream_mode == "live" and not site and is_lab_host(host, LIVE_DOMAINS):
            return (host, port)  # the real server: the name resolves through the system's DNS
        ports = self.upstream_ports
        if site and lane is not None:
            if site not in self.sites:
                raise KeyError(site)
            ports = self.sites[site]
        if lane is None or not ports:
            return (self.upstream_host or host, port)
        return (self.upstream_host or host, ports[lane % len(ports)])

    def is_lab_address(self, host: str, port: int) -> bool:
        """True when ``host:port`` is the lab's HTTPS address: ``upstream_host`` (the IP the lab's
        hosts are served from) on port 443, so a client connecting by IP literal reaches the lab as
        by name.  Other ports of that address (the journals' admin endpoints) stay refused;
        compose, where names are resolved by DNS, has no such address."""
        try:
            return port == 443 and self.upstream_host is not None and \
                ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address(self.upstream_host)
        except ValueError:
            return False

    def to_dict(self) -> dict:
        """The JSON form: every field under its name, policies as their tables (:meth:`Policy.to_dict`)."""
        # asdict copies every container, so the caller may change the result freely.
        return asdict(self) | {"policies": {name: p.to_dict() for name, p in self.policies.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "ProxyConfig":
        """The configuration :meth:`to_dict` wrote, every value checked against its field's type.

        A missing field takes its default; a wrong type, a missing required
        field or an unknown key is a :class:`ValueError` naming the field.
        """
        if not isinstance(data, dict):
            raise ValueError(f"the configuration must be a JSON object, not {_shown(data)}")
        known = {f.name: f for f in fields(cls)}
        if unknown := [key for key in data if key not in known]:
            raise ValueError(f"unknown field {unknown[0]!r}; the fields are {', '.join(known)}")
        hints = typing.get_type_hints(cls)
        values = {}
        for name, f in known.items():
            if name in data:
                values[name] = _typed(data[name], _STORED_AS.get(name, hints[name]), name)
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"field {name!r} is missing")
        values["policies"] = {name: Policy.from_dict(name, table) for name, table in values["policies"].items()}
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "ProxyConfig":
        """Read the JSON file at ``path``; a missing, oversized, non-regular or invalid file is a
        :class:`BadFileError`."""
        text = read_text_bounded(path, "proxy configuration", JSON_LIMIT,
                                 hint="start the proxy through 'harness up'", fix="regenerate it with 'harness up'")
        try:
            return cls.from_dict(json.loads(text))
        except RecursionError:
            raise BadFileError(f"proxy configuration {path} nests too deeply; regenerate it with 'harness up'.") from None
        except (ValueError, KeyError, TypeError) as e:
            raise BadFileError(f"proxy configuration {path} is invalid ({e}); regenerate it with 'harness up'.") from None

    def listener_ports(self, policy: str) -> list[int]:
        """The explicit listener port of each lane of ``policy``, 0 where not chosen yet."""
        ports = self.ports.get(policy) or []
        return ports + [0] * (self.lanes - len(ports))

    def listeners(self) -> list[Listener]:
        """Every (policy, lane) listener, policy-major; ports must be fixed (non-zero) by now."""
        return [
            Listener(policy, lane, port)
            for name, policy in self.policies.items()
            for lane, port in enumerate(self.listener_ports(name))
        ]

    def transparent_listener_ports(self, policy: str) -> list[int]:
        """The transparent listener port of each gateway address of ``policy``, 0 where not chosen yet."""
        ports = self.transparent_ports.get(policy) or []
        return ports + [0] * (len(self.gateways.get(policy, [])) - len(ports))

    def transparent_listeners(self) -> list[Listener]:
        """Every transparent (policy, lane) listener with its gateway address; ports fixed by now."""
        return [
            Listener(self.policies[name], lane, port, parse_address(address))
            for name, addresses in self.gateways.items()
            for lane, (address, port) in enumerate(zip(addresses, self.transparent_listener_ports(name)))
        ]

    def gateway_upstream(self, listener: Listener) -> tuple[str, int]:
        """Where a transparent listener's connections go: its lane's mock server (or the policy's
        hostile site), by the first lab name where DNS resolves it.  The original destination is
        an address, and with mitmproxy's eager connection strategy the upstream is opened before
        the ClientHello names a host, so the gateway address alone decides (never the client)."""
        return self.upstream_for(self.lab_domains[0], 443, listener.lane, listener.policy.upstream)


# Fields whose JSON form is not their type: policies are stored as their tables.
_STORED_AS = {"policies": dict[str, dict]}
_KINDS = {str: "a string", int: "an integer", bool: "true or false", list: "a list", tuple: "a list",
          dict: "an object", types.NoneType: "null"}


def _expected(annotation) -> str:
    """What a value of ``annotation`` looks like in JSON, for an error message."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_expected(option) for option in typing.get_args(annotation))
    return _KINDS[typing.get_origin(annotation) or annotation]


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is(value, kind: type) -> bool:
    if kind is int:  # JSON true is no port number
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (list, tuple) if kind in (list, tuple) else kind)


def _typed(value, annotation, where: str):
    """``value`` (decoded JSON) as ``annotation`` says, or a ValueError naming ``where``.

    Knows what the configuration uses: str, int, bool, ``X | None``, ``list[X]``,
    ``tuple[X, ...]``, ``dict[str, X]`` and a bare ``dict`` (a vendor profile, which
    its own reader checks).
    """
    origin, args = typing.get_origin(annotation) or annotation, typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and types.NoneType in args:
            return None
        (option,) = [a for a in args if a is not types.NoneType]  # the configuration's unions are X | None
        if _is(value, typing.get_origin(option) or option):
            return _typed(value, option, where)
    elif _is(value, origin):
        if origin in (list, tuple):
            items = [_typed(item, args[0], f"{where}[{i}]") for i, item in enumerate(value)]
            return items if origin is list else tuple(items)
        if origin is dict and args:
            return {_typed(key, args[0], where): _typed(item, args[1], f"{where}[{json.dumps(key)}]")
                    for key, item in value.items()}
        return value
    raise ValueError(f"field '{where}' must be {_expected(annotation)}, not {_shown(value)}")
