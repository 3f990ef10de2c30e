"""Ports and listen addresses: parsing port lists, the lane layout, reserving free ports, choosing admin binds."""

from __future__ import annotations

import errno
import ipaddress
import random
import socket
from typing import Iterable, TypeVar

from harness.errors import UsageError

# What lane_layout counts in: port numbers, or IPv4 addresses (gateway addresses).
Consecutive = TypeVar("Consecutive", int, ipaddress.IPv4Address)


def parse_ports(text: str) -> list[int]:
    """``"8443,8444"`` or ``"8443+4"`` (four consecutive ports) -> list of ports; 0 = any free port.

    Raises :class:`ValueError` with a sentence that shows the accepted forms.
    """
    text = text.strip()
    try:
        if "+" in text:
            base, count = (int(x) for x in text.split("+", 1))
            if count < 1:
                raise ValueError
            ports = list(range(base, base + count))
        else:
            ports = [int(p) for p in text.split(",")]
    except ValueError:
        raise ValueError(f"{text!r} is not a port list; write '8443,8444' or '8443+4'") from None
    if not ports or any(not 0 <= p < 65536 for p in ports):
        raise ValueError(f"{text!r}: ports are 0-65535 (0 = any free port)")
    return ports


def lane_layout(first: Consecutive, names: Iterable[str], lanes: int) -> dict[str, list[Consecutive]]:
    """One value per (name, lane), consecutive from ``first``, name-major:
    ``{name: [first + index * lanes + lane for each lane]}``.

    The lab's one layout for proxy listener ports and gateway addresses, so the
    proxy's flags, the gateway's rules and a fixed ``--base-port`` agree:
    ``lane_layout(8100, ["a", "b"], 2) == {"a": [8100, 8101], "b": [8102, 8103]}``.
    """
    return {name: [first + index * lanes + lane for lane in range(lanes)] for index, name in enumerate(names)}


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux; a common default elsewhere)."""
    try:
        low, high = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def reserve_ports(host: str, count: int) -> list[int]:
    """Find ``count`` distinct free ports on ``host`` for listeners that bind them next.

    The ports are chosen at random *outside* the kernel's ephemeral range: a
    port the kernel hands out (bind to 0) can be taken by any outgoing
    connection between this check and the listener's bind, which under load
    (many clients, another test run) happens.  All sockets stay open until
    every port is known (so none repeats), then are released for the caller.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low, high = ephemeral_range()
    pool = [p for p in range(10000, 65536) if not low <= p <= high]
    rng = random.SystemRandom()
    socks = []
    try:
        for port in rng.sample(pool, min(len(pool), max(64, 4 * count))) if pool else []:
            if len(socks) == count:
                break
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        while len(socks) < count:  # the pool is crowded (or empty): let the kernel choose
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def resolve_bind(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``via:NAME:PORT`` -> (address, port).

    ``via:NAME`` binds the local address this host uses to reach ``NAME``: in
    compose, the proxy's admin endpoint binds its leg on the server's network
    only, so clients on the corp network cannot reach it.
    """
    if spec.startswith("via:"):
        _, name, port = spec.split(":", 2)
        target = socket.getaddrinfo(name, 9, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((target, 9))  # UDP connect sends nothing; it only picks the route
            return s.getsockname()[0], int(port)
    host, _, port = spec.rpartition(":")
    return host.strip("[]"), int(port)


def url_host(host: str) -> str:
    """``host`` as it goes in a URL or ``HOST:PORT``: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def check_local_address(host: str) -> None:
    """A :class:`UsageError` (one sentence) unless ``host`` is an address of this machine that a
    listener can bind (``--listen``); bound on port 0 and released at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, 0))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                raise UsageError(f"{host} is not an address of this machine; choose one that 'ip -brief address' "
                                 "lists, on the interface the device reaches.") from None
            raise UsageError(f"cannot listen on {host} ({e.strerror or e}); choose another --listen address.") from None
