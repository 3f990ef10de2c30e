"""Where everything of a running lab is: :class:`LabInfo`, written to ``<state>/lab.json``.

A client of a cell needs two things, whatever the backend: the machine it runs
on (this one, a compose container, the gateway's network namespace) and where
it connects (the explicit proxy, the transparent gateway's address for its
policy, or the mock server itself).  :meth:`LabInfo.endpoint` answers both as
an :class:`Endpoint`; nothing reads them from string-keyed dictionaries.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from harness.errors import BadFileError, EnvironmentProblem, UnknownNameError
from harness.lab.identity import ProcessRecord
from harness.lab.statedir import read_state_file
from harness.model.proxylogin import ProxyLogin, with_login


@dataclass(frozen=True)
class Endpoint:
    """Where one client of one cell runs and what it connects to."""

    exec_prefix: tuple[str, ...] = ()  # argv that runs a program on the client's machine; () = here
    proxy_url: str | None = None  # the explicit proxy the client is told about
    connect_to: str | None = None  # HOST:PORT reached instead of the URL's host (no proxy configured)


@dataclass
class Machines:
    """Command prefixes that run a client on its machine; an empty prefix runs it here.

    ``home`` is outside the corporate network (direct scenarios), ``corp`` the
    machines behind the explicit proxy and ``gateway`` those behind the
    transparent gateway, each by reference client name (``attended``, ``beam``).
    """

    home: list[str] = field(default_factory=list)
    corp: dict[str, list[str]] = field(default_factory=dict)
    gateway: dict[str, list[str]] = field(default_factory=dict)

    def prefix(self, network: str, client: str) -> tuple[str, ...]:
        """Where ``client`` runs in a scenario on ``network`` (direct, proxy, transparent)."""
        if network == "direct":
            return tuple(self.home)
        return tuple((self.corp if network == "proxy" else self.gateway).get(client, ()))


@dataclass
class Transparent:
    """The transparent gateway: clients told about no proxy connect to a gateway address per
    (policy, lane), which the gateway redirects to the proxy's transparent listener."""

    gateways: dict[str, list[str]]  # policy -> "IP:443" per lane
    namespace: str | None = None  # local lab: the network namespace the clients run in
    subnet: str | None = None  # local lab: the namespace's /24
    gateway: str | None = None  # local lab: the host's address on it
    client_address: str | None = None  # local lab: the namespace's own address
    network: str | None = None  # compose lab: the clients' network


@dataclass
class Evidence:
    """Where a lab's evidence goes, and how its proxy reaches the ScreenMeet names.

    ``upstream`` is ``mock`` (the lab's server) or ``live`` (their real addresses,
    verified against ``upstream_trust``); ``web`` is mitmweb's URL (with its token
    where mitmproxy has one); the files are absolute paths, None when not asked for.
    """

    upstream: str = "mock"
    upstream_trust: str | None = None
    web: str | None = None
    save_flows: str | None = None
    har: str | None = None
    keylog: str | None = None
    pcap: str | None = None
    chains_dir: str | None = None  # per host: HOST.forged.pem and HOST.real.pem


@dataclass
class LabInfo:
    """Everything a client or a reader needs to use a running lab."""

    backend: str
    state_dir: str
    lanes: int
    proxies: dict[str, list[str]]  # policy -> proxy URL per lane
    server_connect: list[str]  # per lane: HOST:PORT that reaches the mock server directly
    proxy_admin: str
    server_admin: str
    pki: dict[str, str]  # file name -> path, as clients see it (trust bundles, pins, org CA ...)
    org_issuer_cn: str
    # The lab's processes by role (up, proxy, server) with their start times, and the token they
    # carry: what 'harness down' checks before it signals anything (harness.lab.identity).
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    token: str | None = None
    vendor: str | None = None  # the vendor profile the proxy emulates
    sites: dict[str, list[str]] = field(default_factory=dict)  # hostile case -> HOST:PORT per lane
    transparent: Transparent | None = None
    transparent_unavailable: str | None = None  # why there is no gateway (one sentence)
    machines: Machines = field(default_factory=Machines)
    containers: dict[str, str] = field(default_factory=dict)  # compose lab: service -> container id
    # Real devices (harness up --listen): the address the proxy listeners and the PAC server are on,
    # the proxy a device types into its settings per policy (HOST:PORT, lane 0), and the PAC/WPAD URLs.
    listen: str = "127.0.0.1"
    device_proxies: dict[str, str] = field(default_factory=dict)
    pac: dict[str, str] = field(default_factory=dict)  # policy -> PAC URL
    pac_default: str | None = None  # the default policy's PAC (/proxy.pac)
    wpad: str | None = None  # the same, under WPAD's name (/wpad.dat)

    @property
    def reachable_from_network(self) -> bool:
        """Whether the proxy listeners are on an address other machines may reach (not loopback)."""
        return not self.listen.startswith("127.") and self.listen != "::1"


    evidence: Evidence = field(default_factory=Evidence)  # upstream mode and evidence files
    # Proxy login (issue 14): policy -> USER:PASSWORD, for the policies that require one (`auth`).
    proxy_logins: dict[str, str] = field(default_factory=dict)

    @property
    def pids(self) -> dict[str, int]:
        """The lab's process ids by role (``up``, ``proxy``, ``server``)."""
        return {role: p.pid for role, p in self.processes.items()}

    def proxy_url(self, policy: str, lane: int = 0, *, login: bool = True) -> str:
        """The proxy URL of ``policy`` on ``lane``; with the lab's login in it (``http://USER:PASSWORD@...``)
        when the policy requires one, unless ``login`` is false."""
        try:
            url = self.proxies[policy][lane]
        except KeyError:
            raise UnknownNameError("policy", policy, list(self.proxies)) from None
        if login and policy in self.proxy_logins:
            return with_login(url, ProxyLogin.parse(self.proxy_logins[policy]))
        return url

    def gateway_address(self, policy: str, lane: int = 0) -> str:
        """``IP:443`` a client behind the transparent gateway connects to for ``policy`` (the
        gateway redirects it to the proxy); raises the reason where the lab has no gateway."""
        if self.transparent is None:
            raise EnvironmentProblem(self.transparent_unavailable or "this lab has no transparent gateway.")
        try:
            return self.transparent.gateways[policy][lane]
        except KeyError:
            raise UnknownNameError("policy", policy, list(self.transparent.gateways)) from None

    def endpoint(self, network: str, policy: str | None, lane: int, client: str, *, login: bool = True) -> Endpoint:
        """Where ``client`` runs and connects in a cell on ``network`` with ``policy``, on ``lane``
        (``login``: the proxy URL carries the proxy login, where the policy requires one)."""
        prefix = self.machines.prefix(network, client)
        if network == "proxy":
            return Endpoint(prefix, proxy_url=self.proxy_url(policy, lane, login=login))
        if network == "transparent":  # no proxy configured: the gateway redirects the connection
            return Endpoint(prefix, connect_to=self.gateway_address(policy, lane))
        return Endpoint(prefix, connect_to=self.server_connect[lane])

    def trust_bundle(self, trust: str) -> str:
        return self.pki["trust_public_org"] if trust == "public+org" else self.pki["trust_public"]

    @property
    def pins_file(self) -> str:
        return self.pki["pins_file"]

    def to_json(self) -> str:
        # "pids" repeats the pids of "processes" for scripts that read lab.json (jq .pids.proxy);
        # read back, it is ignored: "processes" (with start times) is what 'harness down' trusts.
        return json.dumps({**asdict(self), "pids": self.pids}, indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> "LabInfo":
        """The inverse of ``asdict``; raises TypeError or ValueError for a document of another shape."""
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        unknown = set(data) - {f.name for f in fields(cls)} - {"pids"}
        if unknown:
            raise TypeError(f"unknown keys {sorted(unknown)}")
        data = dict(data)
        data.pop("pids", None)
        if data.get("transparent") is not None:
            data["transparent"] = Transparent(**data["transparent"])
        data["machines"] = Machines(**data.get("machines", {}))
        data["evidence"] = Evidence(**data.get("evidence", {}))
        processes = data.get("processes", {})
        if not isinstance(processes, dict):
            raise TypeError(f"processes must be an object, not {type(processes).__name__}")
        data["processes"] = {str(role): ProcessRecord.from_dict(p) for role, p in processes.items()}
        if data.get("token") is not None and not isinstance(data["token"], str):
            raise TypeError("token must be a string")
        return cls(**data)

    def write(self) -> Path:
        path = Path(self.state_dir) / "lab.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json())
        tmp.chmod(0o600)  # it may hold the proxy login
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, state_dir: str | Path) -> "LabInfo":
        path = Path(state_dir) / "lab.json"
        try:
            return cls.from_dict(json.loads(read_state_file(path)))
        except FileNotFoundError:
            raise EnvironmentProblem(f"no lab is running in {state_dir} (no lab.json); start one with 'harness up'.") from None
        except (ValueError, TypeError) as e:
            raise BadFileError(f"{path} is corrupt ({e}); run 'harness down' and 'harness up' again.") from None
        except OSError as e:  # a directory, a state "directory" that is a file, no permission
            raise BadFileError(f"cannot read {path} ({e.strerror or e}); run 'harness down' and 'harness up' again.") from None
