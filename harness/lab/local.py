"""The local lab: PKI, mock server and inspection proxy as processes on 127.0.0.1.

Start-up is paid once: a fresh PKI (fast EC keys where realism allows), then
the server and the proxy start *in parallel* (their ports are reserved up
front so neither waits for the other), and readiness is signalled on a pipe.
Everything binds loopback, the admin endpoints too; only the proxy listeners
and the PAC/WPAD server (:mod:`harness.lab.pac`) bind ``listen`` instead, when
a real device is to reach them (``harness up --listen``).

Ports are ephemeral by default; ``base_port`` fixes them (``harness up
--base-port``), laid out as in compose (:mod:`harness.lab.ports`).

Faults, for reliability tests: :meth:`LocalLab.kill_proxy` / :meth:`kill_server`
(a crash), :meth:`restart_proxy` / :meth:`restart_server` (same ports, same
PKI; the proxy optionally with changed policies, which is how a listener's
policy changes at runtime), and :meth:`rotate_org_ca`.  A restarted component
starts a new journal whose numbers continue above the old one's (readers'
cursors stay valid); what the killed process held in memory is gone.

Transparent (gateway) inspection (root on Linux): ``transparent=None`` builds
it where it can, ``True`` requires it, ``False`` (the default) leaves it out;
``transparent_policies`` limits it to those policies (default: all).  A network
namespace behind an iptables REDIRECT to the proxy's transparent listeners
(:mod:`harness.lab.gateway`): clients run there and connect to the gateway
address of their policy (``LabInfo.endpoint(network="transparent", ...)``);
without it, ``LabInfo.transparent_unavailable`` says why in one sentence.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from harness.errors import LabError, UnknownNameError, UsageError
from harness.lab import gateway as transparent_gateway
from harness.lab.early import PROXY, PROXY_CONFIG, proxy_command
from harness.lab.evidence import EvidenceOutputs
from harness.lab.identity import lab_environment, state_marker
from harness.lab.info import LabInfo, Transparent
from harness.lab.lock import LabLock, acquire
from harness.lab.options import LOOPBACK, LabOptions
from harness.lab.pac import PacServer, pac_urls, proxy_address
from harness.lab.ports import check_plan_free, free_ports, plan_ports
from harness.lab.process import Child, kill, spawn, stop, wait_ready
from harness.model.policy import Policy
from harness.model.proxylogin import new_login
from harness.model.vocab import CLIENTS
from harness.net.addresses import check_local_address, url_host
from harness.pki.ca import CA, Blob
from harness.pki.export import write_onboarding
from harness.pki.lab import LabPKI
from harness.proxy.config import ProxyConfig

SERVER = "mock server"
_PID_KEYS = {SERVER: "server", PROXY: "proxy"}
# A restarted component's journal starts at restarts * RESTART_SEQ_STEP + 1.
RESTART_SEQ_STEP = 1_000_000_000
# State directories of the labs running in this process: the lock is re-entrant within a process,
# so two LocalLabs of one process on one directory are caught here.
_running: set[str] = set()


def _port_of(url: str) -> int:
    return urllib.parse.urlsplit(url).port or 0


class LocalLab:
    """Context manager: ``with LocalLab(LabOptions(...), policies=...) as info: ...``.

    ``policies`` are the listeners it serves; ``proxy_child`` is a proxy from
    :func:`harness.lab.early.prespawn_proxy` to adopt instead of starting one.
    """

    backend = "local"

    def __init__(self, options: LabOptions, *, policies: dict[str, Policy], proxy_child: Child | None = None) -> None:
        self.options = options
        self.state_dir = options.state_dir
        self.policies = dict(policies)
        self.lanes = options.lanes
        self.show_secrets = options.show_secrets
        self.org_common_name = options.org_common_name
        self.org_organization = options.org_organization
        self.name_constraints = options.name_constraints
        self.start_timeout = options.start_timeout or 30.0
        self.base_port = options.base_port
        self.python = options.python
        # Its CA names and chain, its forging and untrusted-upstream action.
        self.vendor = options.vendor
        self._learned = False  # the clients' fingerprints, learned on the first server start
        # Hostile sites the policies point at (a policy's `upstream`): case -> server port per lane.
        self._sites: dict[str, list[int]] = {c: [] for c in sorted({p.upstream for p in self.policies.values()
                                                                     if p.upstream})}
        self.children: list[Child] = []
        # A proxy started by prespawn_proxy() before this lab was even configured.
        self._proxy_child = proxy_child
        self.info: LabInfo | None = None
        self._lock: LabLock | None = None  # the state directory's, from start() to stop()
        self._env: dict[str, str] | None = None  # every child's environment: carries the lab's token
        self.pki = LabPKI.at(self.state_dir)
        self.restarts = 0
        # One proxy login for the lab's life (restarts keep it), for the policies with `auth`.
        self.proxy_login = str(new_login())
        # The ports in use, fixed after the first start so restarts reuse them.
        self._proxy_ports: dict[str, list[int]] = {}
        self._proxy_admin = 0
        self._server_ports: list[int] = []
        self._server_admin = 0
        # The transparent gateway (None: not built; the reason in _gateway_unavailable).
        self.transparent = options.transparent
        self.transparent_policies = list(options.transparent_policies or self.policies)
        if unknown := [p for p in self.transparent_policies if p not in self.policies]:
            raise UnknownNameError("policy", unknown[0], list(self.policies))
        self.gateway = None
        self._gateway_unavailable: str | None = None
        self._transparent_ports: dict[str, list[int]] = {}
        # Real devices: where the proxy listeners and the PAC server listen (--listen).
        self.listen = options.listen
        self._pac: PacServer | None = None
        self._pac_port = 0
        # Live upstream and evidence (harness up --upstream live, --web, --save-flows, --har, --keylog, --pcap).
        self.evidence = EvidenceOutputs(options, self.state_dir)

    def __repr__(self) -> str:
        return f"LocalLab(state_dir={str(self.state_dir)!r}, lanes={self.lanes}, policies={list(self.policies)})"

    # -- argv and configuration ------------------------------------------------------
    @property
    def _logs(self) -> Path:
        return self.state_dir / "logs"

    def _first_seq(self) -> int:
        return self.restarts * RESTART_SEQ_STEP + 1

    def _server_argv(self) -> list[str]:
        argv = [
            self.python, "-m", "harness.server", "--cert", str(self.pki.server_chain),
            "--key", str(self.pki.server_key), "--host", LOOPBACK,
            "--ports", ",".join(map(str, self._server_ports)), "--admin", f"{LOOPBACK}:{self._server_admin}",
            "--journal-first-seq", str(self._first_seq()),
            # The clients' own TLS fingerprints, learned once per lab (harness.lab.fingerprints).
            "--known", str(self._known_fingerprints()),
        ]
        if self._sites:
            sites = {case: {"cert": str(self.pki.sites_dir / f"{case}.pem"),
                            "key": str(self.pki.sites_dir / f"{case}.key"), "ports": ports}
                     for case, ports in self._sites.items()}
            path = self.state_dir / "server-sites.json"
            path.write_text(json.dumps(sites, indent=2))
            argv += ["--sites", str(path)]
        return argv + (["--show-secrets"] if self.show_secrets else [])

    def _known_fingerprints(self) -> Path:
        path = self.state_dir / "known-fingerprints.json"
        if not self._learned:
            # Imported here: it pulls in mitmproxy's TLS layer, which only a starting lab needs.
            from harness.lab.fingerprints import write_known

            write_known(path)
            self._learned = True
        return path

    def _proxy_argv(self) -> list[str]:
        """Write the proxy's configuration (for this start: ports, policies, journal numbers) and
        return the command that runs it."""
        config = ProxyConfig(
            policies=self.policies, lanes=self.lanes, listen_host=self.listen, ports=self._proxy_ports,
            upstream_host=LOOPBACK, upstream_ports=self._server_ports,
            admin=f"{LOOPBACK}:{self._proxy_admin}", show_secrets=self.show_secrets,
            journal_first_seq=self._first_seq(), sites=self._sites,
            vendor=self.vendor.to_dict() if self.vendor is not None else None,
            confdir=str(self.pki.mitmproxy_confdir), upstream_trust=str(self.pki.trust_public),
            pki_dir=str(self.pki.public_root.parent), proxy_login=self.proxy_login,
        )
        self.evidence.configure(config)
        if self.gateway is not None:
            config.gateways, config.transparent_host = self.gateway.gateways, self.gateway.host_address
            config.transparent_ports = self._transparent_ports
        path = self.state_dir / PROXY_CONFIG
        path.write_text(json.dumps(config.to_dict(), indent=2))
        return proxy_command(path, self.python)

    def _spawn_or_adopt_proxy(self) -> Child:
        argv = self._proxy_argv()
        child, self._proxy_child = self._proxy_child, None
        if child is None:
            return spawn(PROXY, argv, self._logs / "proxy.log", gate=True, env=self._env)
        # Importing mitmproxy since it was spawned early, with this argv: it reads the file just
        # written once start() opens its gate.
        return child

    # -- start and stop ----------------------------------------------------------------
    def _lock_state_dir(self) -> None:
        """One lab per state directory: lock it (LabBusy names the running lab) before touching it."""
        key = state_marker(self.state_dir) if self.state_dir.exists() else None
        if key in _running:
            raise UsageError(f"a lab of this process already runs in {self.state_dir}; give this one another state_dir.")
        self._lock = acquire(self.state_dir)
        _running.add(state_marker(self.state_dir))
        self._env = lab_environment(self._lock.token, self.state_dir)

    def start(self) -> LabInfo:
        self._lock_state_dir()
        try:
            check_local_address(self.listen)  # one sentence if this machine has no such address
            if self.base_port is not None:
                plan = plan_ports(self.base_port, list(self.policies), self.lanes, list(self._sites))
                check_plan_free(LOOPBACK, plan, self.listen)  # one sentence naming the port and its role
            else:
                plan = free_ports(LOOPBACK, self.lanes, list(self._sites))
            self._proxy_ports, self._server_ports, self._sites = plan.proxy, plan.server, plan.sites
            self._proxy_admin, self._server_admin = plan.proxy_admin, plan.server_admin
            self._pac_port = plan.pac
            self._logs.mkdir(exist_ok=True)
            self.evidence.prepare()
            self._open_gateway()
            # Interpreter and mitmproxy start-up (most of the time) overlap with key generation.
            self.children = [
                spawn(SERVER, self._server_argv(), self._logs / "server.log", gate=True, env=self._env),
                self._spawn_or_adopt_proxy(),
            ]
            pki = LabPKI.generate(
                self.state_dir, org_common_name=self.org_common_name,
                org_organization=self.org_organization, name_constraints=self.name_constraints,
                vendor=self.vendor, hostile_sites=tuple(self._sites),
            )
            for child in self.children:
                child.open_gate()
            ready = wait_ready(self.children, self.start_timeout)
        except BaseException:
            if self._proxy_child is not None:  # prespawned but never adopted
                self.children.append(self._proxy_child)
                self._proxy_child = None
            self.stop()
            raise
        server, proxy = ready[SERVER], ready[PROXY]
        self._remember_ports(server=server, proxy=proxy)
        self._gateway_ready()
        proxies: dict[str, list[str]] = {name: [f"http://{url_host(self.listen)}:{p}" for p in ports]
                                         for name, ports in self._proxy_ports.items()}
        # No policy (a direct-only run): no proxy to point a device at, so no PAC server either.
        pac = self._serve_pac({name: urls[0] for name, urls in proxies.items()}) if proxies else None
        self.info = LabInfo(
            backend=self.backend,
            state_dir=str(self.state_dir),
            lanes=self.lanes,
            proxies=proxies,
            server_connect=[f"{LOOPBACK}:{p}" for p in self._server_ports],
            proxy_admin=proxy["admin"],
            server_admin=server["admin"],
            pki={k: v for k, v in pki.describe().items()},
            org_issuer_cn=pki.org_issuer_cn,
            processes={"server": self.children[0].record, "proxy": self.children[1].record},
            token=self._lock.token,
            vendor=self.vendor.name if self.vendor is not None else None,
            sites={case: [f"{LOOPBACK}:{p}" for p in ports] for case, ports in self._sites.items()},
            transparent_unavailable=self._gateway_unavailable,
            listen=self.listen,
            device_proxies={name: proxy_address(urls[0]) for name, urls in proxies.items()},
            **pac_urls(pac, proxies),
            proxy_logins={name: self.proxy_login for name, p in self.policies.items() if p.auth},
        )
        try:
            ports = [p for ports in self._proxy_ports.values() for p in ports] + self._server_ports
            ports += [p for ports in self._sites.values() for p in ports]
            self.info.evidence = self.evidence.ready(proxy, ports, sorted({LOOPBACK, self.listen}),
                                                     log=self._logs / "tcpdump.log", env=self._env)
        except BaseException:
            self.stop()
            raise
        if self.gateway is not None:
            self.info.transparent = Transparent(**self.gateway.describe())
            prefix = self.gateway.exec_prefix(transparent_gateway.write_launcher(self.state_dir / "bin", self.python))
            self.info.machines.gateway = {c: prefix for c in CLIENTS}
        return self.info

    def _serve_pac(self, proxies: dict[str, str]) -> str:
        """Start the PAC/WPAD server for ``proxies`` (lane 0 per policy) on the listen address;
        its base URL.  Fails (stopping the lab) with one sentence if its fixed port is taken."""
        self._pac = PacServer(proxies)
        try:
            return self._pac.start(self.listen, self._pac_port)
        except OSError as e:
            self.stop()
            raise UsageError(f"the PAC/WPAD server cannot listen on {self.listen}:{self._pac_port} "
                             f"({e.strerror or e}); choose another --base-port.") from None

    def _remember_ports(self, *, server: dict | None = None, proxy: dict | None = None) -> None:
        if server is not None:
            self._server_ports = list(server["ports"])
            self._sites.update({case: list(ports) for case, ports in server.get("sites", {}).items()})
            self._server_admin = _port_of(server["admin"])
        if proxy is not None:
            ports: dict[str, list[int]] = {name: [0] * self.lanes for name in self.policies}
            for listener in proxy["listeners"]:
                ports[listener["policy"]][listener["lane"]] = listener["port"]
            self._proxy_ports = ports
            self._proxy_admin = _port_of(proxy["admin"])
            if self.gateway is not None:
                transparent = {name: [0] * self.lanes for name in self.gateway.gateways}
                for listener in proxy.get("transparent", []):
                    transparent[listener["policy"]][listener["lane"]] = listener["port"]
                self._transparent_ports = transparent

    # -- the transparent gateway ---------------------------------------------------------
    def _open_gateway(self) -> None:
        if self.gateway is not None:
            return
        if self.transparent is False:
            self._gateway_unavailable = "transparent mode is off for this lab; 'harness up --transparent' (root) turns it on."
            return
        reason = transparent_gateway.unavailable_reason()
        if reason is not None and self.transparent is None:
            self._gateway_unavailable = reason
            return
        self.gateway = transparent_gateway.Gateway.create(self.transparent_policies, self.lanes)  # raises with the reason

    def _gateway_ready(self) -> None:
        """Point each gateway address at its transparent listener (ports known once the proxy is up)."""
        if self.gateway is None:
            return
        try:
            self.gateway.redirect(self._transparent_ports)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._pac is not None:
            pac, self._pac = self._pac, None
            pac.close()


        self.evidence.stop()  # first: the capture file is complete before anything else goes
        stop(self.children)
        self.children = []
        if self.gateway is not None:
            gateway, self.gateway = self.gateway, None
            gateway.destroy()
        if self._lock is not None:  # last: nothing of this lab runs any more
            lock, self._lock = self._lock, None
            _running.discard(state_marker(self.state_dir))
            lock.release()

    def __enter__(self) -> LabInfo:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------------
    def _running(self) -> LabInfo:
        if self.info is None or not self.children:
            raise LabError("the local lab is not running; start it first.")
        return self.info

    def _child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def kill_proxy(self) -> None:
        """SIGKILL the proxy (a crash): every connection through it breaks at once."""
        self._running()
        kill(self._child(PROXY))

    def kill_server(self) -> None:
        """SIGKILL the mock server (a crash)."""
        self._running()
        kill(self._child(SERVER))

    def _replace(self, name: str, argv_for) -> dict:
        """Stop ``name`` if it still runs, start it again (same ports) and wait until it is ready."""
        info = self._running()
        index = next(i for i, c in enumerate(self.children) if c.name == name)
        stop([self.children[index]])
        self.restarts += 1
        log = self._logs / ("proxy.log" if name == PROXY else "server.log")
        child = spawn(name, argv_for(), log, env=self._env)
        self.children[index] = child
        report = wait_ready([child], self.start_timeout)[name]  # on failure the caller's stop() reaps it
        info.processes[_PID_KEYS[name]] = child.record
        if (self.state_dir / "lab.json").exists():
            info.write()  # 'harness down' must find the new pid
        return report

    def restart_server(self) -> LabInfo:
        """Start the mock server again (stopping it first if it still runs), on the same ports."""
        report = self._replace(SERVER, self._server_argv)
        if report["ports"] != self._server_ports:
            raise LabError(f"the restarted mock server listens on {report['ports']}, not {self._server_ports}.")
        return self._running()

    def restart_proxy(self, *, policies: dict[str, Policy] | None = None) -> LabInfo:
        """Start the proxy again (stopping it first if it still runs) on the same ports, with the
        same PKI (or the rotated one); ``policies`` changes what the listeners do.

        ``policies`` must have the same names as the running ones: each name owns
        its listener ports, so a proxy URL keeps serving the policy of that name,
        now with its new content (an exception added by IT, for instance).
        """
        self._running()
        if policies is not None:
            if list(policies) != list(self.policies):
                raise UsageError(
                    f"restart_proxy keeps the listeners, so give the same policy names in the same order "
                    f"({', '.join(self.policies)}); got {', '.join(policies)}.")
            self.policies = dict(policies)
        # One clear sentence (not a proxy traceback) if the CA file is broken.
        CA.load(self.pki.mitmproxy_confdir / "mitmproxy-ca.pem")
        report = self._replace(PROXY, self._proxy_argv)
        old = self._proxy_ports
        self._remember_ports(proxy=report)
        self._gateway_ready()
        if self._proxy_ports != old:
            raise LabError(f"the restarted proxy listens on {self._proxy_ports}, not {old}.")
        return self._running()

    def set_policy(self, name: str, policy: Policy) -> LabInfo:
        """Change what the listeners of policy ``name`` do (restarts the proxy on the same ports)."""
        if name not in self.policies:
            raise UnknownNameError("policy", name, list(self.policies))
        return self.restart_proxy(policies={**self.policies, name: policy})

    def rotate_org_ca(self, *, common_name: str | None = None, organization: str | None = None) -> LabInfo:
        """Replace the organisation's inspection CA by a fresh key (and optionally a new name),
        then restart the proxy with it.

        Done the way IT rotates an inspection root: the new root is deployed to
        the clients' trust bundle (``trust-public-org.pem``, next to the old one)
        before the proxy switches, and the old root is retired once it has, so a
        client that re-reads the bundle never meets an untrusted chain.
        """
        info = self._running()
        cn = common_name or self.org_common_name
        org = organization or self.org_organization
        new = CA(common_name=cn, organization=org, key_type="rsa", name_constraints=self.name_constraints)
        public = self.pki.trust_public.read_bytes()
        old = self.pki.org_ca.read_bytes()
        Blob(public + old + new.cert_pem.bytes()).write_to_path(self.pki.trust_public_org)
        new.cert_pem.write_to_path(self.pki.org_ca)
        new.private_key_pem.write_to_path(self.pki.org_ca_key, private=True)
        new.mitmproxy_pem().write_to_path(self.pki.mitmproxy_confdir / "mitmproxy-ca.pem", private=True)
        write_onboarding(new.cert, self.pki.mitmproxy_confdir)  # mitm.it offers the new root
        self.restart_proxy()
        Blob(public + new.cert_pem.bytes()).write_to_path(self.pki.trust_public_org)
        self.org_common_name, self.org_organization = cn, org
        info.org_issuer_cn = cn
        if (self.state_dir / "lab.json").exists():
            info.write()
        return info
