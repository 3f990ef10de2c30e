"""Which ports a local lab binds: ephemeral ones by default, or a fixed layout from ``--base-port``.

The fixed layout is the compose one: proxy listener ``base + policy index *
lanes + lane``, then one mock server port per lane, then the proxy's and the
server's journal endpoints, then each hostile site's port per lane, then the
PAC/WPAD server.  A port already taken is one sentence naming it and its role
(exit 2: the person chose it).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

from harness.errors import EnvironmentProblem, UsageError
from harness.net.addresses import lane_layout, reserve_ports


@dataclass
class PortPlan:
    """The ports of one lab; 0 means "any free port", chosen by the process that binds it."""

    proxy: dict[str, list[int]] = field(default_factory=dict)  # policy -> listener port per lane
    server: list[int] = field(default_factory=list)  # mock server port per lane
    proxy_admin: int = 0
    server_admin: int = 0
    sites: dict[str, list[int]] = field(default_factory=dict)  # hostile case -> port per lane
    pac: int = 0  # the PAC/WPAD server (on the listen address, like the proxy listeners)

    def roles(self) -> list[tuple[int, str]]:
        """Every fixed port with the role a person would look for."""
        return [
            *[(p, f"proxy listener {name} lane {lane}") for name, ports in self.proxy.items()
              for lane, p in enumerate(ports)],
            *[(p, f"mock server lane {lane}") for lane, p in enumerate(self.server)],
            (self.proxy_admin, "proxy journal endpoint"), (self.server_admin, "server journal endpoint"),
            *[(p, f"hostile site {case} lane {lane}") for case, ports in self.sites.items()
              for lane, p in enumerate(ports)],
            *([(self.pac, "PAC/WPAD server")] if self.pac else []),
        ]

    def listen_roles(self) -> list[tuple[int, str]]:
        """The fixed ports bound on the listen address (``--listen``): proxy listeners and the PAC server."""
        public = {p for ports in self.proxy.values() for p in ports} | {self.pac}
        return [(p, role) for p, role in self.roles() if p in public]


def plan_ports(base: int, policies: list[str], lanes: int, sites: list[str] = ()) -> PortPlan:
    """The fixed layout from ``base`` (see the module docstring)."""
    after = base + len(policies) * lanes
    return PortPlan(proxy=lane_layout(base, policies, lanes), server=list(range(after, after + lanes)),
                    proxy_admin=after + lanes, server_admin=after + lanes + 1,
                    sites=lane_layout(after + lanes + 2, list(sites), lanes),
                    pac=after + lanes + 2 + len(sites) * lanes)


def free_ports(host: str, lanes: int, sites: list[str] = ()) -> PortPlan:
    """Ephemeral ports for the mock server and its hostile sites (reserved now, so the proxy,
    starting in parallel, knows them); the proxy and the journals pick their own."""
    free = iter(reserve_ports(host, lanes * (1 + len(sites))))  # one call: all distinct
    server = [next(free) for _ in range(lanes)]
    return PortPlan(server=server, sites={case: [next(free) for _ in range(lanes)] for case in sites})


def check_plan_free(host: str, plan: PortPlan, listen: str | None = None) -> None:
    """:func:`check_ports_free` for every port of ``plan``: on ``host``, or those of
    :meth:`PortPlan.listen_roles` on ``listen`` when the lab listens elsewhere (``--listen``)."""
    if listen is None or listen == host:
        check_ports_free(host, plan.roles())
        return
    public = plan.listen_roles()
    check_ports_free(host, [r for r in plan.roles() if r not in public])
    check_ports_free(listen, public)


def check_ports_free(host: str, wanted: list[tuple[int, str]]) -> None:
    """Raise one clear sentence for the first port in ``wanted`` ((port, role) pairs) that
    cannot be bound on ``host`` the way the lab binds it (SO_REUSEADDR, as asyncio does)."""
    for port, role in wanted:  # a usage error first, whatever is in use
        if not 1 <= port <= 65535:
            raise UsageError(f"port {port} ({role}) is outside 1-65535; choose a lower --base-port.")
    for port, role in wanted:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:  # the person chose the port (--base-port): bad input
                    raise UsageError(
                        f"port {port} on {host} ({role}) is already in use; stop what uses it "
                        "or choose another --base-port.") from None
                if e.errno == errno.EACCES:
                    raise EnvironmentProblem(
                        f"port {port} on {host} ({role}) needs privileges; choose --base-port 1024 or above.") from None
                raise EnvironmentProblem(f"cannot bind port {port} on {host} ({role}): {e.strerror or e}.") from None
