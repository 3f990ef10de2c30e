"""What lab to start: one keyword-only :class:`LabOptions`, built once by the CLI or the plugin.

Nothing below the user interfaces reads command-line arguments: ``harness up``,
``harness run`` and the pytest plugin each turn their options into a
``LabOptions`` and hand it to :func:`harness.lab.open.open_lab`.  Checks that
concern several options together (a vendor profile names its own CA; compose
fixes its ports) live here, so every interface says the same sentence.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import EnvironmentProblem, UnknownNameError, UsageError
from harness.lab.statedir import default_state_dir
from harness.model.vendors import VendorProfile
from harness.proxy.config import UPSTREAM_MODES

BACKENDS = ("local", "compose")
LOOPBACK = "127.0.0.1"
DEFAULT_ORG_CN, DEFAULT_ORG_O = "Acme Corp TLS Inspection Root CA", "Acme Corp"


@dataclass(frozen=True, kw_only=True)
class LabOptions:
    """How to build a lab; every field has the default ``harness up`` uses.

    ``transparent``: ``True`` requires the transparent gateway, ``None`` builds
    it where the machine allows (root on Linux), ``False`` leaves it out;
    ``transparent_policies`` are the policies it serves (default: all).
    ``vendor`` emulates an inspection product (its CA names and chain, its
    forging, its action on untrusted upstreams).
    """

    backend: str = "local"
    state_dir: Path = field(default_factory=default_state_dir)
    lanes: int = 4
    show_secrets: bool = False
    org_common_name: str = DEFAULT_ORG_CN
    org_organization: str = DEFAULT_ORG_O
    name_constraints: bool = True
    vendor: VendorProfile | None = None
    transparent: bool | None = False
    transparent_policies: tuple[str, ...] | None = None
    base_port: int | None = None  # local only: fixed ports from here instead of ephemeral ones
    start_timeout: float | None = None  # default: the backend's own
    python: str = sys.executable  # local only: the interpreter of the lab's processes
    build: bool = True  # compose only: build the image if needed before 'up'
    # Real devices (harness up --listen): the address the proxy listeners and the PAC/WPAD server
    # bind; the journals and the mock server stay on loopback whatever it is.
    listen: str = LOOPBACK


    # Live upstream and evidence (local lab; harness.lab.evidence checks the files they name).
    upstream: str = "mock"  # "live": ScreenMeet names go to their real addresses (system DNS)
    upstream_trust: Path | None = None  # live: the CA bundle for real servers (default: the system's)
    web: bool = False  # run the proxy under mitmweb, its UI on loopback
    save_flows: Path | None = None
    har: Path | None = None
    keylog: Path | None = None
    pcap: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        if self.transparent_policies is not None:
            object.__setattr__(self, "transparent_policies", tuple(self.transparent_policies))
        if self.backend not in BACKENDS:
            raise UnknownNameError("lab backend", self.backend, BACKENDS)
        if isinstance(self.lanes, bool) or not isinstance(self.lanes, int) or self.lanes < 1:
            raise EnvironmentProblem("the lab needs at least one lane; pass --lanes 1 or more.")
        if self.backend == "compose":
            if self.base_port is not None:
                raise UsageError("--base-port applies to the local lab only; compose.yaml fixes the compose ports.")
            if self.listen != LOOPBACK:
                raise UsageError("--listen applies to the local lab; the compose lab's proxy is only on its Docker networks (drop --lab compose or --listen).")
        self._check_evidence()
        if self.vendor is not None and (self.org_common_name, self.org_organization) != (DEFAULT_ORG_CN, DEFAULT_ORG_O):
            raise UsageError(f"--vendor {self.vendor.name} names the inspection CA itself; drop --org-cn/--org-o.")

    def _check_evidence(self) -> None:
        if self.upstream not in UPSTREAM_MODES:
            raise UnknownNameError("upstream", self.upstream, UPSTREAM_MODES)
        if self.upstream_trust is not None and self.upstream != "live":
            raise UsageError("--upstream-trust is the CA bundle for real servers; it goes with --upstream live.")
        asked = [flag for flag, on in (("--upstream live", self.upstream == "live"), ("--web", self.web),
                                       ("--save-flows", self.save_flows), ("--har", self.har),
                                       ("--keylog", self.keylog), ("--pcap", self.pcap)) if on]
        if asked and self.backend == "compose":
            raise UsageError(f"{asked[0]} runs on the local lab; drop --lab compose or {asked[0]}.")
        outputs = [p for p in (self.save_flows, self.har, self.keylog, self.pcap) if p is not None]
        if len({Path(p).absolute() for p in outputs}) < len(outputs):
            raise UsageError("--save-flows, --har, --keylog and --pcap need one file each; give them different paths.")
