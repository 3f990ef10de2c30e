"""The compose lab: the same lab as containers on a corp and an internet network.

``ComposeLab.start()`` builds the image (offline if no registry answers), runs
``compose up -d`` with a fresh state volume, waits for the healthchecks, and
describes the lab from inside: listeners from the proxy's ready report, admin
endpoints at the containers' addresses, trust bundles and pins at their paths
inside the client containers.  Clients run with ``docker exec`` in the
``attended`` / ``beam`` containers (corp network) or ``home`` (outside, for
the direct scenario), so the runner and verdicts are the same as locally.

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
from pathlib import Path

from cryptography import x509

from harness.errors import LabError, LabStartError
from harness.lab import docker, images
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


def _progress(line: str) -> None:
    print(f"[compose] {line}", file=sys.stderr, flush=True)


class Compose:
    """Runs the detected compose command on ``compose.yaml`` for one project."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        docker.require_docker()
        self.base = [*docker.compose_command(), "-f", str(COMPOSE_FILE), "-p", project_name()]
        # Checked here, so a bad LAB_IMAGE / LAB_SUBNET_* is one sentence before anything starts.
        self.env = {**os.environ, **compose_environment(), **(env or {})}

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.base, *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise LabError(f"'{self.base[0]} ... {' '.join(args)}' failed: {' / '.join(tail) or 'no output'}.")
        return proc

    def container(self, service: str) -> str:
        cid = self.run("ps", "-q", service).stdout.strip()
        if not cid:
            raise LabStartError(f"the compose service {service} has no container; see 'docker-compose logs {service}'.")
        return cid.splitlines()[0]


def _inspect(cid: str) -> dict:
    out = subprocess.run(["docker", "inspect", cid], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise LabError(f"docker inspect {cid[:12]} failed: {out.stderr.strip()}.")
    return json.loads(out.stdout)[0]


def _exec(cid: str, *argv: str) -> str:
    out = subprocess.run(["docker", "exec", cid, *argv], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise LabError(f"'docker exec {cid[:12]} {' '.join(argv)}' failed: {out.stderr.strip()}.")
    return out.stdout


def _network_ip(info: dict, suffix: str) -> str:
    for name, net in info["NetworkSettings"]["Networks"].items():
        if name.endswith(f"_{suffix}") and net.get("IPAddress"):
            return net["IPAddress"]
    raise LabStartError(f"container {info['Name']} has no address on the {suffix} network.")


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
        _progress("starting a fresh lab (compose down -v, up -d)")
        self.compose.run("down", "-v", "--remove-orphans", timeout=120)
        started = time.monotonic()
        try:
            up = self.compose.run("up", "-d", "--no-build", timeout=self.start_timeout, check=False)
            self._wait_healthy(started)  # names the service that died, if one did
            if up.returncode != 0:
                self.compose.run("up", "-d", "--no-build", timeout=self.start_timeout)
            self.info = self._describe()
        except BaseException:
            self.stop()
            raise
        _progress(f"lab healthy in {time.monotonic() - started:.1f}s")
        self.info.write()
        return self.info

    def _wait_healthy(self, started: float) -> None:
        cids = {s: self.compose.container(s) for s in ("screenmeet", "proxy")}
        while True:
            states = {s: _inspect(c)["State"] for s, c in cids.items()}
            if all(st.get("Health", {}).get("Status") == "healthy" for st in states.values()):
                return
            dead = [s for s, st in states.items() if not st.get("Running")]
            if dead:
                logs = self.compose.run("logs", "--tail", "5", dead[0], check=False).stdout.strip().splitlines()
                raise LabStartError(f"the {dead[0]} container exited: {logs[-1] if logs else 'no log'}.")
            if time.monotonic() - started > self.start_timeout:
                raise LabStartError(f"the compose lab was not healthy within {self.start_timeout:.0f}s; see 'docker-compose logs'.")
            time.sleep(0.2)  # docker has no push notification for health; poll briefly

    def _describe(self) -> LabInfo:
        server_cid, proxy_cid = self.compose.container("screenmeet"), self.compose.container("proxy")
        proxy_ready = json.loads(_exec(proxy_cid, "cat", "/tmp/lab-ready"))["ready"]
        server_ip = _network_ip(_inspect(server_cid), "internet")
        org_ca = x509.load_pem_x509_certificate(_exec(proxy_cid, "cat", f"{PKI_DIR}/org-ca.pem").encode())
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
        machines = Machines(
            home=["docker", "exec", "-i", self.compose.container("home")],
            corp={c: ["docker", "exec", "-i", self.compose.container(c)] for c in CLIENTS},
            # Behind the transparent gateway: the containers run as root (to set their route); clients as lab.
            gateway={c: ["docker", "exec", "-i", "-u", "lab", self.compose.container(f"{c}-gw")] for c in CLIENTS},
        )
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
        )

    def stop(self) -> None:
        if self.compose is not None:
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
