"""Bringing the lab up and down.

* :class:`LabInfo` – where everything is (proxy URL per policy and lane, admin
  endpoints, trust bundles, pins); written to ``<state>/lab.json``.
* :mod:`harness.lab.local`   – the default backend: processes on 127.0.0.1
* :mod:`harness.lab.compose` – the Docker Compose backend
* :mod:`harness.lab.process` – starting children that announce readiness
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import BadFileError, EnvironmentProblem, UnknownNameError

BACKENDS = ("local", "compose")
DEFAULT_STATE_DIR = ".lab"


def default_state_dir() -> Path:
    return Path(os.environ.get("HARNESS_STATE_DIR", DEFAULT_STATE_DIR))


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
    pki: dict[str, str]
    org_issuer_cn: str
    pids: dict[str, int] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def proxy_url(self, policy: str, lane: int = 0) -> str:
        try:
            return self.proxies[policy][lane]
        except KeyError:
            raise UnknownNameError("policy", policy, list(self.proxies)) from None

    def gateway_address(self, policy: str, lane: int = 0) -> str:
        """``IP:443`` a client behind the transparent gateway connects to for ``policy`` (the
        gateway redirects it to the proxy); raises the reason where the lab has no gateway."""
        transparent = self.extra.get("transparent")
        if not transparent:
            raise EnvironmentProblem(self.extra.get("transparent_unavailable") or "this lab has no transparent gateway.")
        try:
            return transparent["gateways"][policy][lane]
        except KeyError:
            raise UnknownNameError("policy", policy, list(transparent["gateways"])) from None

    def trust_bundle(self, trust: str) -> str:
        return self.pki["trust_public_org"] if trust == "public+org" else self.pki["trust_public"]

    @property
    def pins_file(self) -> str:
        return self.pki["pins_file"]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def write(self) -> Path:
        path = Path(self.state_dir) / "lab.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, state_dir: str | Path) -> "LabInfo":
        path = Path(state_dir) / "lab.json"
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise EnvironmentProblem(f"no lab is running in {state_dir} (no lab.json); start one with 'harness up'.") from None
        except (ValueError, TypeError) as e:
            raise BadFileError(f"{path} is corrupt ({e}); run 'harness down' and 'harness up' again.") from None


def prepare_state_dir(state_dir: str | Path) -> Path:
    """Create the state directory (0700), or say in one sentence why it cannot be used."""
    return writable_dir(state_dir, what="state directory", option="--state-dir", mode=0o700)


def writable_dir(path: str | Path, *, what: str, option: str, mode: int = 0o777) -> Path:
    """Create ``path`` and prove it writable, or raise EnvironmentProblem naming ``option``."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True, mode=mode)
        probe = p / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise EnvironmentProblem(
            f"the {what} {p} is not writable ({e.strerror or e}); pass {option} with a writable directory."
        ) from None
    return p
