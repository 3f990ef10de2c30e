"""The compose lab: the same lab as containers on a corp and an internet network.

``ComposeLab.start()`` builds the image (offline if no registry answers), runs
``compose up -d`` with a fresh state volume, waits for the healthchecks, and
describes the lab from inside: listeners from the proxy's ready report, admin
endpoints at the containers' addresses, trust bundles and pins at their paths
inside the client containers.  Clients run in the ``attended`` / ``beam``
containers (corp network) or ``home`` (outside, for the direct scenario), so
the runner and verdicts are the same as locally.

The compose CLI runs ``up`` and ``down`` only; the rest goes to the Docker
Engine API (:mod:`harness.lab.engine`): the project's containers in one call,
readiness from the services' ready files (what their healthchecks test, read
without an exec), logs for a failure's message, and each client container's
*client worker* (:data:`CLIENT_WORKER`, one exec stream per container, started
while the proxy comes up), which runs the cells that ``machines`` send there
(``docker exec -i CONTAINER``: what a person types to rerun one).

Everything else the local lab takes works here too: the ``screenmeet``
container serves the hostile sites the policies name (``LAB_SITES``; ports 9443
up, one per case and lane, ``LabInfo.sites``), a vendor profile
(``LAB_VENDOR``) makes the ``pki`` service write its chain and the proxy forge
as it says, and ``name_constraints=False`` reaches the ``pki`` service.  The
image's proxy serves every policy of ``fixtures/policies.toml``, a superset of
any subset asked for.

Transparent (gateway) inspection is always there: ``attended-gw`` / ``beam-gw``
on the ``corp-gw`` network route via the proxy, whose ``gateway`` service
REDIRECTs the gateway addresses (``LabInfo.transparent.gateways``) to its
transparent listeners; ``transparent_policies`` picks the policies served that
way (``LAB_GW_POLICIES``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from cryptography import x509

from harness.errors import LabError, LabStartError
from harness.lab import docker, engine, execstream, images
from harness.lab.composeenv import compose_environment, project_name
from harness.lab.info import LabInfo, Machines, Transparent
from harness.lab.options import LabOptions
from harness.lab.statedir import prepare_state_dir
from harness.model.policy import Policy
from harness.model.vocab import CLIENTS
from harness.pki.names import display_name

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE_FILE = ROOT / "compose.yaml"
PKI_DIR = "/lab/pki"
SERVICES = ("screenmeet", "proxy", "attended", "beam", "home", "gateway", "attended-gw", "beam-gw")
# The client worker each client container runs for the harness (harness.matrix.worker; named, not
# imported: it runs inside the containers, and the matrix package comes after this one).
CLIENT_WORKER = ("python", "-m", "harness.matrix.worker")
# What says each service is ready (compose.yaml orders only what must be ordered, so `up -d`
# returns while they come up): its ready file (--ready-file, what its healthcheck tests), its exit 0
# (a one-shot), or a line of its log.
READY_FILE = "/tmp/lab-ready"
ROUTED = "default route via"  # harness.lab.gateway route, once the client's route is set
READY = {"screenmeet": ("file", READY_FILE), "proxy": ("file", READY_FILE), "gateway": ("exit 0", ""),
         "attended-gw": ("log", ROUTED), "beam-gw": ("log", ROUTED)}
READY_SERVICES = ("screenmeet", "proxy")  # without these, nothing can be described
POLL = 0.05  # seconds between readiness polls: each is one API call, no exec in the container


def _progress(line: str) -> None:
    print(f"[compose] {line}", file=sys.stderr, flush=True)


class Compose:
    """The compose command on ``compose.yaml`` for one project (up, down) and, through the Docker
    API, the project's containers."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        # Checked first, so a bad LAB_COMPOSE_PROJECT / LAB_SUBNET_* is one sentence before anything starts.
        self.project = project_name()
        self.env = {**os.environ, **compose_environment(), **(env or {})}
        docker.require_docker()
        self.base = [*docker.compose_command(), "-f", str(COMPOSE_FILE), "-p", self.project]
        self._containers: dict[str, dict] = {}

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.base, *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise LabError(f"'{self.base[0]} ... {' '.join(args)}' failed: {' / '.join(tail) or 'no output'}.")
        return proc

    def containers(self) -> dict[str, dict]:
        """The project's containers by service (the API's summaries, with ``State``), asked anew."""
        self._containers = engine.project_containers(self.project)
        return self._containers

    def listed(self) -> dict[str, dict]:
        """The containers as last listed (no API call)."""
        return dict(self._containers)

    def container(self, service: str) -> str:
        """The id of ``service``'s container (as last listed; listed anew if it was not there)."""
        found = self._containers.get(service) or self.containers().get(service)
        if not found:
            raise LabStartError(f"the compose service {service} has no container; see 'docker-compose logs {service}'.")
        return found["Id"]


def _inspect(cid: str) -> dict:
    return engine.inspect(cid)


def _read(cid: str, path: str) -> str:
    """A text file of a container, read through the API (no process in the container)."""
    data = engine.read_file(cid, path)
    if data is None:
        raise LabStartError(f"container {cid[:12]} has no {path}.")
    return data.decode()


def readiness_problem(kind: str, state: dict) -> str | None:
    """What is wrong with a service that is not ready yet, from its container ``state`` (one of
    ``docker inspect``), or None while it may still become ready."""
    if kind == "exit 0":
        running = state.get("Running") or state.get("Status") in ("created", "restarting")
        return None if running else f"exited with {state.get('ExitCode')}"
    if not state.get("Running"):
        return f"exited ({state.get('ExitCode')})"
    if state.get("Health", {}).get("Status") == "unhealthy":
        return "is unhealthy"
    return None


def _network_ip(info: dict, suffix: str) -> str:
    for name, net in info["NetworkSettings"]["Networks"].items():
        if name.endswith(f"_{suffix}") and net.get("IPAddress"):
            return net["IPAddress"]
    raise LabStartError(f"container {info['Name']} has no address on the {suffix} network.")


def client_machines(container) -> Machines:
    """Where the clients run, as ``docker exec`` prefixes (``container(service)`` -> id): what a
    person types to rerun a cell, and what :mod:`harness.matrix.execute` sends to the workers."""
    return Machines(
        home=["docker", "exec", "-i", container("home")],
        corp={c: ["docker", "exec", "-i", container(c)] for c in CLIENTS},
        # Behind the transparent gateway: the containers run as root (to set their route); clients as lab.
        gateway={c: ["docker", "exec", "-i", "-u", "lab", container(f"{c}-gw")] for c in CLIENTS},
    )


def worker_targets(machines: Machines) -> list[tuple[str, str]]:
    """(container, user) of every machine's client worker, once each."""
    prefixes = (machines.home, *machines.corp.values(), *machines.gateway.values())
    return [t for t in dict.fromkeys(engine.exec_target(p) for p in prefixes) if t is not None]


def _workers_started(workers: list[Future], timeout: float) -> None:
    """Wait for the workers being started; the first that failed is the error."""
    try:
        for future in workers:
            future.result(timeout)
    except (execstream.SessionClosed, FutureTimeout) as e:
        raise LabStartError(f"a client worker did not start ({e or 'timed out'}); rebuild the lab image "
                            "(harness images build) if it predates the worker.") from None


class ComposeLab:
    """Context manager like :class:`harness.lab.local.LocalLab`, backed by compose.yaml."""

    backend = "compose"

    def __init__(self, options: LabOptions, *, policies: dict[str, Policy]) -> None:
        self.options = options
        self.state_dir = options.state_dir
        self.policies = policies
        self.lanes = options.lanes
        self.env = {"LAB_LANES": str(self.lanes), "LAB_ORG_CN": options.org_common_name,
                    "LAB_ORG_O": options.org_organization, "LAB_SHOW_SECRETS": "1" if options.show_secrets else "0"}
        # The PKI and the proxy as the local lab makes them: hostile sites the policies name, a vendor's
        # CAs and forging, name constraints on or off (compose.yaml passes each to pki, screenmeet, proxy).
        self.sites = sorted({p.upstream for p in policies.values() if p.upstream})
        self.vendor = options.vendor
        self.env |= {"LAB_SITES": ",".join(self.sites), "LAB_VENDOR": self.vendor.name if self.vendor else "",
                     "LAB_NAME_CONSTRAINTS": "on" if options.name_constraints else "off"}
        # The gateway is part of compose.yaml (``transparent`` cannot turn it off); these policies get it.
        if options.transparent_policies:
            self.env["LAB_GW_POLICIES"] = ",".join(options.transparent_policies)
        self.start_timeout = options.start_timeout or 180.0
        self.build = options.build
        self.compose: Compose | None = None
        self.info: LabInfo | None = None

    def __repr__(self) -> str:
        return f"ComposeLab(project={project_name()!r}, lanes={self.lanes})"

    def start(self) -> LabInfo:
        prepare_state_dir(self.state_dir)
        self.compose = Compose(self.env)
        if self.build:
            images.build_image(progress=_progress)
        if engine.project_exists(self.compose.project):  # one compose run less when there is nothing to remove
            _progress(f"removing the previous {self.compose.project} lab (compose down -v)")
            self.compose.run("down", "-v", "--remove-orphans", timeout=120)
        _progress("starting a fresh lab (compose up -d)")
        started = time.monotonic()
        pool: ThreadPoolExecutor | None = None
        try:
            up = self.compose.run("up", "-d", "--no-build", timeout=self.start_timeout, check=False)
            if up.returncode != 0:
                if not all(s in self.compose.containers() for s in READY_SERVICES):
                    tail = (up.stderr or up.stdout).strip().splitlines()[-2:]
                    raise LabStartError(f"'compose up' failed: {' / '.join(tail) or 'no output'}.")
                self._wait_healthy(started)  # names the service that died, if one did
                self.compose.run("up", "-d", "--no-build", timeout=self.start_timeout)
            # The client workers start (a Python start-up each) while the proxy does.
            targets = worker_targets(client_machines(self.compose.container))
            pool = ThreadPoolExecutor(max_workers=len(targets) or 1, thread_name_prefix="client-worker")
            workers = [pool.submit(execstream.session, cid, CLIENT_WORKER, user=user) for cid, user in targets]
            self._wait_healthy(started)
            self.info = self._describe()
            _workers_started(workers, self.start_timeout)
        except BaseException:
            self.stop()
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        _progress(f"lab healthy in {time.monotonic() - started:.1f}s")
        self.info.write()
        return self.info

    def _wait_healthy(self, started: float) -> None:
        """Wait until every service of :data:`READY` is ready (a ready file is read here without
        waiting for its healthcheck's interval); one that died or turned unhealthy is named with its
        last log line."""
        pending = {s: self.compose.container(s) for s in READY}
        while True:
            for service, cid in list(pending.items()):
                kind, what = READY[service]
                if kind == "file" and engine.read_file(cid, what) is not None:
                    del pending[service]
                    continue
                if kind == "log" and any(what in line for line in engine.logs_tail(cid, 20)):
                    del pending[service]
                    continue
                state = _inspect(cid)["State"]
                if kind == "exit 0" and not state.get("Running") and state.get("ExitCode") == 0:
                    del pending[service]
                    continue
                problem = readiness_problem(kind, state)
                if problem:
                    logs = engine.logs_tail(cid)
                    last = logs[-1].strip().rstrip(".") if logs else "no log"
                    raise LabStartError(f"the {service} container {problem}: {last}.")
            if not pending:
                return
            if time.monotonic() - started > self.start_timeout:
                raise LabStartError(f"the compose lab was not healthy within {self.start_timeout:.0f}s "
                                    f"({', '.join(pending)} not ready); see 'docker-compose logs'.")
            time.sleep(POLL)  # docker has no push notification for a file or a log line; poll briefly

    def _describe(self) -> LabInfo:
        server_cid, proxy_cid = self.compose.container("screenmeet"), self.compose.container("proxy")
        proxy_ready = json.loads(_read(proxy_cid, READY_FILE))["ready"]
        server_ready = json.loads(_read(server_cid, READY_FILE))["ready"]
        server_ip = _network_ip(_inspect(server_cid), "internet")
        org_ca = x509.load_pem_x509_certificate(_read(proxy_cid, f"{PKI_DIR}/org-ca.pem").encode())
        cn = display_name(org_ca.subject)
        proxies: dict[str, list[str]] = {name: [""] * self.lanes for name in self.policies}
        for listener in proxy_ready["listeners"]:
            proxies.setdefault(listener["policy"], [""] * self.lanes)[listener["lane"]] = f"http://proxy:{listener['port']}"
        pki = {
            "trust_public": f"{PKI_DIR}/trust-public.pem",
            "trust_public_org": f"{PKI_DIR}/trust-public-org.pem",
            "pins_file": f"{PKI_DIR}/pins.txt",
            "org_ca": f"{PKI_DIR}/org-ca.pem",
        }
        machines = client_machines(self.compose.container)
        gateways: dict[str, list[str]] = {}
        for listener in proxy_ready.get("transparent", []):
            gateways.setdefault(listener["policy"], [""] * self.lanes)[listener["lane"]] = listener["gateway"]
        return LabInfo(
            backend=self.backend, state_dir=str(self.state_dir), lanes=self.lanes, proxies=proxies,
            server_connect=[f"screenmeet:{8443 + lane}" for lane in range(self.lanes)],
            proxy_admin=proxy_ready["admin"], server_admin=f"http://{server_ip}:9000",
            pki=pki, org_issuer_cn=str(cn), machines=machines,
            transparent=Transparent(gateways=gateways, network="corp-gw"),
            containers={"screenmeet": server_cid, "proxy": proxy_cid},
            # The proxy made up the login (harness.proxy.run.ensure_login) and reported it.
            proxy_logins={name: proxy_ready["proxy_login"] for name, p in self.policies.items()
                          if p.auth and proxy_ready.get("proxy_login")},
            vendor=self.vendor.name if self.vendor is not None else None,
            sites={case: [f"screenmeet:{p}" for p in ports] for case, ports in server_ready.get("sites", {}).items()},
        )

    def stop(self) -> None:
        if self.compose is not None:
            for container in self.compose.listed().values():  # this lab's workers in this process
                execstream.close_sessions(container["Id"])
            self.compose.run("down", "-v", "--remove-orphans", timeout=120, check=False)
            (self.state_dir / "lab.json").unlink(missing_ok=True)

    def __enter__(self) -> LabInfo:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def compose_down(state_dir: str | Path) -> None:
    """``harness down --lab compose``: remove the project's containers, networks and volume."""
    Compose().run("down", "-v", "--remove-orphans", timeout=120)
    (Path(state_dir) / "lab.json").unlink(missing_ok=True)
    print(f"Compose lab {project_name()} stopped.")
