"""The local lab: PKI, mock server and inspection proxy as processes on 127.0.0.1.

Start-up is paid once: a fresh PKI (fast EC keys where realism allows), then
the server and the proxy start *in parallel* (their ports are reserved up
front so neither waits for the other), and readiness is signalled on a pipe.
Everything binds loopback; the admin endpoints too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.errors import EnvironmentProblem
from harness.lab import LabInfo, prepare_state_dir
from harness.lab.process import Child, spawn, stop, wait_ready
from harness.pki import LabPKI
from harness.policy import Policy
from harness.proxy.config import ProxyConfig
from harness.netaddr import reserve_ports

LOOPBACK = "127.0.0.1"


class LocalLab:
    """Context manager: ``with LocalLab(state_dir, policies=...) as info: ...``."""

    backend = "local"

    def __init__(
        self,
        state_dir: str | Path,
        *,
        policies: dict[str, Policy],
        lanes: int = 4,
        show_secrets: bool = False,
        org_common_name: str = "Acme Corp TLS Inspection Root CA",
        org_organization: str = "Acme Corp",
        name_constraints: bool = True,
        start_timeout: float = 30.0,
        python: str = sys.executable,
    ) -> None:
        if lanes < 1:
            raise EnvironmentProblem("the lab needs at least one lane; pass --lanes 1 or more.")
        self.state_dir = Path(state_dir)
        self.policies = policies
        self.lanes = lanes
        self.show_secrets = show_secrets
        self.org_common_name = org_common_name
        self.org_organization = org_organization
        self.name_constraints = name_constraints
        self.start_timeout = start_timeout
        self.python = python
        self.children: list[Child] = []
        self.info: LabInfo | None = None

    def __repr__(self) -> str:
        return f"LocalLab(state_dir={str(self.state_dir)!r}, lanes={self.lanes}, policies={list(self.policies)})"

    def start(self) -> LabInfo:
        prepare_state_dir(self.state_dir)
        pki_paths = LabPKI.at(self.state_dir)
        server_ports = reserve_ports(LOOPBACK, self.lanes)
        config = ProxyConfig(
            policies=self.policies, lanes=self.lanes, listen_host=LOOPBACK,
            upstream_host=LOOPBACK, upstream_ports=server_ports,
            admin=f"{LOOPBACK}:0", show_secrets=self.show_secrets,
        )
        config_path = self.state_dir / "proxy.json"
        config_path.write_text(json.dumps(config.to_dict(), indent=2))
        logs = self.state_dir / "logs"
        logs.mkdir(exist_ok=True)
        server_argv = [
            self.python, "-m", "harness.server", "--cert", str(pki_paths.server_chain),
            "--key", str(pki_paths.server_key), "--host", LOOPBACK,
            "--ports", ",".join(map(str, server_ports)), "--admin", f"{LOOPBACK}:0",
        ]
        if self.show_secrets:
            server_argv.append("--show-secrets")
        proxy_argv = [
            self.python, "-m", "harness.proxy", "--config", str(config_path),
            "--confdir", str(pki_paths.mitmproxy_confdir), "--upstream-trust", str(pki_paths.trust_public),
        ]
        try:
            # Interpreter and mitmproxy start-up (most of the time) overlap with key generation.
            self.children = [
                spawn("mock server", server_argv, logs / "server.log", gate=True),
                spawn("inspection proxy", proxy_argv, logs / "proxy.log", gate=True),
            ]
            pki = LabPKI.generate(
                self.state_dir, org_common_name=self.org_common_name,
                org_organization=self.org_organization, name_constraints=self.name_constraints,
            )
            for child in self.children:
                child.open_gate()
            ready = wait_ready(self.children, self.start_timeout)
        except BaseException:
            self.stop()
            raise
        server, proxy = ready["mock server"], ready["inspection proxy"]
        proxies: dict[str, list[str]] = {name: [""] * self.lanes for name in self.policies}
        for listener in proxy["listeners"]:
            proxies[listener["policy"]][listener["lane"]] = f"http://{LOOPBACK}:{listener['port']}"
        self.info = LabInfo(
            backend=self.backend,
            state_dir=str(self.state_dir),
            lanes=self.lanes,
            proxies=proxies,
            server_connect=[f"{LOOPBACK}:{p}" for p in server["ports"]],
            proxy_admin=proxy["admin"],
            server_admin=server["admin"],
            pki={k: v for k, v in pki.describe().items()},
            org_issuer_cn=pki.org_issuer_cn,
            pids={"server": self.children[0].pid, "proxy": self.children[1].pid},
        )
        return self.info

    def stop(self) -> None:
        stop(self.children)
        self.children = []

    def __enter__(self) -> LabInfo:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
