"""Transparent (gateway) inspection: clients told about no proxy, redirected to it by iptables.

The clients run with ``--no-proxy --connect-to GATEWAY:443`` (the SNI stays the
ScreenMeet name): a *gateway address* stands for where DNS would put the
ScreenMeet server, one per (policy, lane) so parallel scenarios never share
one.  iptables ``nat PREROUTING ... REDIRECT`` hands each connection to the
proxy's transparent listener for that (policy, lane), which reads the original
destination (SO_ORIGINAL_DST) and serves that address only.

Local lab (root on Linux), :class:`Gateway`: a network namespace is the
corporate LAN, the host is its gateway::

    namespace tlslab-<pid>-<tok>                host (the gateway)
    eth0 198.18.N.2/24  ==== veth pair ====  tg<tok>h 198.18.N.1/24 + gateway addresses /32
    no default route                         nat PREROUTING -i tg<tok>h -j TLSLAB-<tok>:
                                               -d <gateway address> -p tcp --dport 443
                                               -j REDIRECT --to-ports <transparent listener>

The namespace reaches its /24 and nothing else (no default route), so nothing
it sends is ever forwarded off the machine; a gateway address without its rule
is a host address where nothing listens on 443 (connection refused).  The /24
is the first free one in 198.18.0.0/15 (RFC 2544, for network test labs; set
``HARNESS_GATEWAY_POOL`` to use another), chosen under a lock so concurrent
labs never share one.  :meth:`Gateway.destroy` removes the namespace, the veth
pair and the rules; a lab that was killed leaves them behind, and the next
gateway created on the machine removes them (their owner pid is in the name).

Compose lab (``python -m harness.lab.gateway rules|route``): the ``gateway``
service shares the proxy container's network namespace and installs the same
REDIRECT rules there (gateway addresses on its loopback, nothing forwarded,
nothing but redirected traffic accepted from the ``corp-gw`` network); the
``attended-gw`` and ``beam-gw`` clients route everything via the proxy.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import EnvironmentProblem, LabError
from harness.lab.process import pid_alive
from harness.model.policy import load_policies
from harness.model.values import port_number, positive_int
from harness.net.addresses import lane_layout
from harness.proxy.config import gateway_addresses, parse_address, transparent_policy_names

DEFAULT_POOL = "198.18.0.0/15"
FIRST_GATEWAY_HOST = 10  # gateway addresses start at .10 of the /24 (.1 host, .2 namespace)
LOCK_FILE = "/run/lock/tls-lab-gateway.lock"
_NAME = re.compile(r"^tlslab-(\d+)-([0-9a-f]{6})$")


def unavailable_reason() -> str | None:
    """Why the local lab cannot build a gateway here, in one sentence; None when it can."""
    if not sys.platform.startswith("linux"):
        return "transparent mode needs Linux (network namespaces and iptables REDIRECT)."
    if os.geteuid() != 0:
        return "transparent mode needs root (network namespaces, veth pairs and iptables); run as root to include it."
    missing = [tool for tool in ("ip", "iptables", "iptables-restore") if shutil.which(tool) is None]
    if missing:
        return f"transparent mode needs {', '.join(missing)}; install iproute2 and iptables."
    return None


def policies_for(scenarios) -> list[str]:
    """The policies that ``scenarios``' transparent rows use (what a lab's gateway must serve)."""
    return sorted({s.policy for s in scenarios if s.network == "transparent"})


def _run(*argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise EnvironmentProblem(f"'{' '.join(argv[:4])} ...' failed: {(proc.stderr or proc.stdout).strip()}.")
    return proc


@contextlib.contextmanager
def _machine_lock():
    """Serialise address choice and creation across every lab on this machine."""
    path = Path(LOCK_FILE) if Path(LOCK_FILE).parent.is_dir() else Path("/tmp/tls-lab-gateway.lock")
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _taken_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this machine already routes or has an address in."""
    taken = []
    routes = json.loads(_run("ip", "-4", "-j", "route", "show", "table", "all").stdout or "[]")
    for r in routes:
        if r.get("dst") and r["dst"] != "default":
            taken.append(ipaddress.ip_network(r["dst"], strict=False))
    for link in json.loads(_run("ip", "-4", "-j", "addr").stdout or "[]"):
        for a in link.get("addr_info", []):
            taken.append(ipaddress.ip_network(f"{a['local']}/{a.get('prefixlen', 32)}", strict=False))
    return taken


def choose_subnet(pool: str, taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first /24 of ``pool`` that overlaps nothing in ``taken``."""
    try:
        net = ipaddress.IPv4Network(pool)
    except ValueError:
        raise EnvironmentProblem(f"HARNESS_GATEWAY_POOL={pool!r} is not an IPv4 network such as 198.18.0.0/15.") from None
    for candidate in (net.subnets(new_prefix=24) if net.prefixlen <= 24 else [net]):
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise EnvironmentProblem(f"no free /24 left in {pool} for the lab's gateway; set HARNESS_GATEWAY_POOL to another range.")


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _run("ip", "netns", "list", check=False).stdout.splitlines() if line.strip()]


def _remove(namespace: str, host_if: str, chain: str) -> list[str]:
    """Delete a gateway's rules, veth pair and namespace; returns what could not be deleted."""
    left = []
    nat = ("iptables", "-w", "-t", "nat")
    if chain and _run(*nat, "-S", chain, check=False).returncode == 0:
        while _run(*nat, "-D", "PREROUTING", "-i", host_if, "-j", chain, check=False).returncode == 0:
            pass
        _run(*nat, "-F", chain, check=False)
        if _run(*nat, "-X", chain, check=False).returncode != 0:
            left.append(f"iptables nat chain {chain}")
    if Path("/sys/class/net", host_if).exists() and _run("ip", "link", "del", host_if, check=False).returncode != 0:
        left.append(f"link {host_if}")
    if namespace in _namespaces() and _run("ip", "netns", "del", namespace, check=False).returncode != 0:
        left.append(f"network namespace {namespace}")
    return left


def build_veth_namespace(namespace: str, host_if: str, subnet: ipaddress.IPv4Network,
                         host_addresses: list[str] | tuple[str, ...] = ()) -> None:
    """A network namespace joined to this machine by a veth pair: ``host_if`` here with the
    subnet's first address (and ``host_addresses`` as /32s), ``eth0`` inside with its second.
    No route leaves the subnet, so nothing the namespace sends is forwarded off the machine.
    Undo with :func:`remove_namespace`."""
    host = [
        f"netns add {namespace}",
        f"link add {host_if} type veth peer name eth0 netns {namespace}",
        f"addr add {subnet[1]}/{subnet.prefixlen} dev {host_if}",
        *[f"addr add {a}/32 dev {host_if}" for a in host_addresses],
        f"link set {host_if} up",
    ]
    _run("ip", "-batch", "-", stdin="\n".join(host) + "\n")
    inside = [f"addr add {subnet[2]}/{subnet.prefixlen} dev eth0", "link set eth0 up", "link set lo up"]
    _run("ip", "-n", namespace, "-batch", "-", stdin="\n".join(inside) + "\n")


def create_lan_namespace(namespace: str, host_if: str, *, pool: str | None = None) -> ipaddress.IPv4Network:
    """:func:`build_veth_namespace` on the first free /24 of ``pool`` (as the gateway's, chosen
    under the same machine-wide lock); returns the /24.  Stands in for a real device's LAN
    (tests name ``namespace`` and ``host_if`` with their own prefix)."""
    if reason := unavailable_reason():
        raise EnvironmentProblem(reason.replace("transparent mode", "a network namespace"))
    with _machine_lock():
        subnet = choose_subnet(pool or os.environ.get("HARNESS_GATEWAY_POOL", DEFAULT_POOL), _taken_networks())
        try:
            build_veth_namespace(namespace, host_if, subnet)
        except BaseException:
            remove_namespace(namespace, host_if)
            raise
    return subnet


def remove_namespace(namespace: str, host_if: str) -> list[str]:
    """Delete a namespace and its veth pair (idempotent); returns what could not be deleted."""
    return _remove(namespace, host_if, "")


def _names(token: str) -> tuple[str, str]:
    return f"tg{token}h", f"TLSLAB-{token}"


def sweep_stale() -> list[str]:
    """Remove gateways whose lab process is gone (killed before it could clean up); returns their names."""
    swept = []
    for ns in _namespaces():
        m = _NAME.match(ns)
        if m and not pid_alive(int(m.group(1))):
            _remove(ns, *_names(m.group(2)))
            swept.append(ns)
    live = {m.group(2) for ns in _namespaces() if (m := _NAME.match(ns))}
    rules = _run("iptables", "-w", "-t", "nat", "-S", check=False).stdout
    for token in set(re.findall(r"^-N TLSLAB-([0-9a-f]{6})$", rules, re.MULTILINE)) - live:
        _remove(f"tlslab-0-{token}", *_names(token))
        swept.append(f"TLSLAB-{token}")
    return swept


@dataclass
class Gateway:
    """A namespace behind an iptables REDIRECT on this machine (see the module docstring)."""

    namespace: str
    host_if: str
    chain: str
    subnet: ipaddress.IPv4Network
    gateways: dict[str, list[str]]  # policy -> gateway address "IP:443" per lane
    redirects: dict[str, int] = field(default_factory=dict)  # gateway address -> listener port

    def __repr__(self) -> str:
        return f"Gateway(namespace={self.namespace!r}, subnet={str(self.subnet)!r}, gateways={sum(map(len, self.gateways.values()))})"

    @property
    def host_address(self) -> str:
        """The gateway's own address: transparent listeners bind it (REDIRECT delivers there)."""
        return str(self.subnet[1])

    @property
    def client_address(self) -> str:
        return str(self.subnet[2])

    @classmethod
    def create(cls, policies: list[str], lanes: int, *, pool: str | None = None) -> "Gateway":
        """Build the namespace, the veth pair, the gateway addresses and an (empty) REDIRECT chain.

        Raises :class:`EnvironmentProblem` with :func:`unavailable_reason` where it cannot.
        """
        if reason := unavailable_reason():
            raise EnvironmentProblem(reason)
        count = len(policies) * lanes
        if FIRST_GATEWAY_HOST + count > 254:
            raise EnvironmentProblem(
                f"{len(policies)} policies x {lanes} lanes need {count} gateway addresses, more than a /24 holds; use fewer lanes.")
        token = secrets.token_hex(3)
        host_if, chain = _names(token)
        with _machine_lock():
            sweep_stale()
            subnet = choose_subnet(pool or os.environ.get("HARNESS_GATEWAY_POOL", DEFAULT_POOL), _taken_networks())
            gw = cls(f"tlslab-{os.getpid()}-{token}", host_if, chain, subnet,
                     gateway_addresses(str(subnet[FIRST_GATEWAY_HOST]), policies, lanes))
            try:
                gw._build()
            except BaseException:
                gw.destroy()
                raise
        return gw

    def _build(self) -> None:
        addresses = [parse_address(a)[0] for per_lane in self.gateways.values() for a in per_lane]
        build_veth_namespace(self.namespace, self.host_if, self.subnet, addresses)
        nat = ("iptables", "-w", "-t", "nat")
        _run(*nat, "-N", self.chain)
        # First in PREROUTING, ahead of Docker's DNAT for published ports on local addresses.
        _run(*nat, "-I", "PREROUTING", "1", "-i", self.host_if, "-j", self.chain)

    def redirect(self, ports: dict[str, list[int]]) -> None:
        """(Re)write the REDIRECT rules: each gateway address of policy P, lane L -> ``ports[P][L]``.
        Policies missing from ``ports`` get no rule (their gateway addresses refuse connections)."""
        rules = {address: port for name, per_lane in self.gateways.items()
                 for address, port in zip(per_lane, ports.get(name, [])) if port}
        lines = ["*nat", f":{self.chain} - [0:0]"]  # with --noflush: flush this chain only
        for address, port in rules.items():
            ip, dport = parse_address(address)
            lines.append(f"-A {self.chain} -d {ip}/32 -p tcp -m tcp --dport {dport} -j REDIRECT --to-ports {port}")
        _run("iptables-restore", "-w", "--noflush", stdin="\n".join([*lines, "COMMIT"]) + "\n")
        self.redirects = rules

    def exec_prefix(self, bin_dir: str | Path | None = None) -> list[str]:
        """argv prefix that runs a program inside the namespace, with ``bin_dir`` (a ``harness``
        launcher) and this interpreter's directory first on PATH."""
        dirs = [str(d) for d in (bin_dir, Path(sys.executable).parent) if d]
        return ["ip", "netns", "exec", self.namespace, "env", f"PATH={':'.join(dirs)}:{os.environ.get('PATH', '/usr/bin:/bin')}"]

    def destroy(self) -> None:
        """Remove the rules, the veth pair and the namespace (idempotent)."""
        left = _remove(self.namespace, self.host_if, self.chain)
        if left:
            raise LabError(f"could not remove {', '.join(left)}; remove it by hand (see 'ip netns', 'iptables -t nat -S').")

    def describe(self) -> dict:
        return {"namespace": self.namespace, "subnet": str(self.subnet), "gateway": self.host_address,
                "client_address": self.client_address, "gateways": self.gateways}


def write_launcher(directory: str | Path, python: str = sys.executable) -> Path:
    """A ``harness`` launcher for this interpreter in ``directory`` (for programs run in the namespace)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    launcher = d / "harness"
    launcher.write_text(f'#!/bin/sh\nexec {python} -m harness "$@"\n')
    launcher.chmod(0o755)
    return d


# -- compose: the same rules inside containers ---------------------------------------------

def _resolve(name: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0]
        except OSError:
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"cannot resolve {name!r}; is this container on the corp-gw network?") from None
            time.sleep(0.2)


def _interface_with(address: str) -> str:
    for link in json.loads(_run("ip", "-4", "-j", "addr").stdout or "[]"):
        if any(a.get("local") == address for a in link.get("addr_info", [])):
            return link["ifname"]
    raise EnvironmentProblem(f"no interface here has the address {address}.")


def container_rules(alias: str, gateways: dict[str, list[str]], ports: dict[str, list[int]]) -> list[str]:
    """Install the gateway in the proxy container's network namespace; returns the rules written.

    ``alias`` resolves to the proxy's address on the corp-gw network, whose interface is the LAN side.
    """
    own = _resolve(alias, 30)
    lan = _interface_with(own)
    addresses = [parse_address(a)[0] for per_lane in gateways.values() for a in per_lane]
    # Gateway addresses are local (on lo): without a rule a connection is refused, never forwarded.
    _run("ip", "-batch", "-", stdin="".join(f"addr replace {a}/32 dev lo\n" for a in addresses))
    nat = ["*nat", ":TLSLAB-GW - [0:0]", f"-A PREROUTING -i {lan} -j TLSLAB-GW"]
    for name, per_lane in gateways.items():
        for address, port in zip(per_lane, ports[name]):
            ip, dport = parse_address(address)
            nat.append(f"-A TLSLAB-GW -d {ip}/32 -p tcp -m tcp --dport {dport} -j REDIRECT --to-ports {port}")
    # From the LAN: only what was redirected (now addressed to our LAN address); nothing forwarded.
    flt = ["*filter",
           f"-A INPUT -i {lan} ! -d {own}/32 -p tcp -j REJECT --reject-with tcp-reset",
           f"-A INPUT -i {lan} ! -d {own}/32 -j DROP",
           f"-A FORWARD -i {lan} -j DROP"]
    text = "\n".join([*nat, "COMMIT", *flt, "COMMIT"]) + "\n"
    _run("iptables-restore", "-w", "--noflush", stdin=text)
    return text.splitlines()


def route_via(name: str) -> str:
    """Send everything via ``name`` (the gateway): this machine's default route."""
    via = _resolve(name, 60)
    _run("ip", "route", "replace", "default", "via", via)
    return via


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.lab.gateway",
                                description="Compose lab: the transparent gateway's rules, and clients' routes via it.")
    sub = p.add_subparsers(dest="command", required=True)
    rules = sub.add_parser("rules", help="in the proxy's network namespace: gateway addresses and REDIRECT rules")
    rules.add_argument("--alias", default="gateway", help="name of the proxy on the corp-gw network")
    rules.add_argument("--policies", required=True, help="policies TOML (the proxy's)")
    rules.add_argument("--lanes", type=positive_int, required=True)
    rules.add_argument("--gateways", required=True, metavar="IP", help="first gateway address (as the proxy's --gateways)")
    rules.add_argument("--transparent-base-port", type=port_number, default=8300)
    rules.add_argument("--transparent-policies", metavar="A,B", help="as the proxy's (default all)")
    route = sub.add_parser("route", help="route everything via the gateway, then run a command")
    route.add_argument("--via", default="gateway")
    route.add_argument("then", nargs=argparse.REMAINDER, help="command to exec afterwards, e.g. sleep infinity")
    args = p.parse_args(argv)
    try:
        if args.command == "rules":
            names = transparent_policy_names(args.transparent_policies, load_policies(args.policies))
            gateways = gateway_addresses(args.gateways, names, args.lanes)
            ports = lane_layout(args.transparent_base_port, names, args.lanes)
            for line in container_rules(args.alias, gateways, ports):
                print(line)
            return 0
        via = route_via(args.via)
        print(f"default route via {args.via} ({via})", flush=True)
        if args.then:
            os.execvp(args.then[0], args.then)
        return 0
    except LabError as e:
        print(f"gateway: {e}", file=sys.stderr)
        return e.exit_code
    except ValueError as e:
        print(f"gateway: {e}.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
