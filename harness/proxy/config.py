"""The proxy's configuration: listeners, policies, upstream mapping.  Plain data.

Every (policy, lane) pair gets its own listener port, so several policies are
served at once and parallel scenarios (one per lane) never share a listener:
the listener a connection arrived on says which scenario it belongs to.

The ScreenMeet names reach the mock server without DNS or /etc/hosts changes:
the proxy rewrites the upstream address of lab hosts to ``upstream_host`` (or
keeps the name, for compose where Docker's DNS resolves the aliases) and the
lane's server port.  Hosts outside the lab's domains are refused, so the lab
never sends traffic anywhere else.

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
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BadFileError
from harness.net.addresses import lane_layout
from harness.model.policy import Policy, is_lab_host

LAB_DOMAINS = ("screenmeet.com", "scrn.mt", "lab.test")


@dataclass(frozen=True)
class Listener:
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


def parse_address(text: str) -> tuple[str, int]:
    """``"IP:PORT"`` -> (IP, PORT); raises ValueError naming the text."""
    host, sep, port = text.rpartition(":")
    try:
        return str(ipaddress.ip_address(host.strip("[]"))), int(port)
    except ValueError:
        raise ValueError(f"gateway address {text!r} is not IP:PORT") from None


@dataclass
class ProxyConfig:
    """Everything the proxy process needs, readable from one JSON file."""

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
    # The lab PKI directory (untrusted and sub CAs for forging); default: the confdir's parent.
    pki_dir: str | None = None
    # Transparent listeners, bound on transparent_host: policy -> gateway address "IP:PORT" per lane,
    # and policy -> listener port per lane (0 = any free port, like ``ports``).
    gateways: dict[str, list[str]] = field(default_factory=dict)
    transparent_host: str = "127.0.0.1"
    transparent_ports: dict[str, list[int]] = field(default_factory=dict)

    def upstream_for(self, host: str, port: int, lane: int | None, site: str = "") -> tuple[str, int] | None:
        """Where a connection to ``host:port`` really goes, or None if it is not a lab host.

        ``site`` names a hostile site (a policy's ``upstream``): the lane's port
        of that site instead of the mock server's.  Raises :class:`KeyError` for
        a site this lab does not serve.
        """
        if not is_lab_host(host, self.lab_domains):
            return None
        ports = self.upstream_ports
        if site and lane is not None:
            if site not in self.sites:
                raise KeyError(site)
            ports = self.sites[site]
        if lane is None or not ports:
            return (self.upstream_host or host, port)
        return (self.upstream_host or host, ports[lane % len(ports)])

    def to_dict(self) -> dict:
        return {
            "policies": {n: p.to_dict() for n, p in self.policies.items()},
            "lanes": self.lanes,
            "listen_host": self.listen_host,
            "ports": self.ports,
            "upstream_host": self.upstream_host,
            "upstream_ports": self.upstream_ports,
            "lab_domains": list(self.lab_domains),
            "admin": self.admin,
            "show_secrets": self.show_secrets,
            "journal_first_seq": self.journal_first_seq,
            "sites": self.sites,
            "vendor": self.vendor,
            "pki_dir": self.pki_dir,
            "gateways": self.gateways,
            "transparent_host": self.transparent_host,
            "transparent_ports": self.transparent_ports,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ProxyConfig":
        policies = {n: Policy.from_dict(n, d) for n, d in data["policies"].items()}
        return cls(
            policies=policies,
            lanes=int(data.get("lanes", 1)),
            listen_host=data.get("listen_host", "127.0.0.1"),
            ports={k: [int(p) for p in v] for k, v in data.get("ports", {}).items()},
            upstream_host=data.get("upstream_host", "127.0.0.1"),
            upstream_ports=[int(p) for p in data.get("upstream_ports", [])],
            lab_domains=tuple(data.get("lab_domains", LAB_DOMAINS)),
            admin=data.get("admin", "127.0.0.1:0"),
            show_secrets=bool(data.get("show_secrets", False)),
            journal_first_seq=int(data.get("journal_first_seq", 1)),
            sites={k: [int(p) for p in v] for k, v in data.get("sites", {}).items()},
            vendor=data.get("vendor"),
            pki_dir=data.get("pki_dir"),
            gateways={k: [str(a) for a in v] for k, v in data.get("gateways", {}).items()},
            transparent_host=data.get("transparent_host", "127.0.0.1"),
            transparent_ports={k: [int(p) for p in v] for k, v in data.get("transparent_ports", {}).items()},
        )

    @classmethod
    def load(cls, path: str | Path) -> "ProxyConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise BadFileError(f"proxy configuration {path} does not exist; start the proxy through 'harness up'.") from None
        except (ValueError, KeyError, TypeError) as e:
            raise BadFileError(f"proxy configuration {path} is invalid ({e}); regenerate it with 'harness up'.") from None

    def listener_ports(self, policy: str) -> list[int]:
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
