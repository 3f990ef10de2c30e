"""A local lab's evidence outputs (:class:`EvidenceOutputs`) and the files its options name,
checked before anything starts.

``harness up --save-flows/--har/--keylog/--pcap FILE`` and ``--upstream-trust
FILE``: a person gave each path, so each gets one sentence if it cannot work
(no such directory, a directory, a FIFO, no certificate in the bundle) before
a process is started.  Key logs and captures decrypt everything the lab saw,
and the flow file and HAR hold every decrypted request with its credentials:
all four are created 0600 here, empty, before their writers open them (which
keeps the mode).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from pathlib import Path

from cryptography import x509

from harness.errors import BadFileError, EnvironmentProblem, UsageError
from harness.lab.capture import Capture, capture_plan
from harness.lab.info import Evidence
from harness.lab.options import LOOPBACK, LabOptions
from harness.model.files import read_bounded
from harness.net.addresses import reserve_ports
from harness.proxy.config import ProxyConfig
from harness.proxy.upstream import system_trust_bundle

FLAGS = {"save_flows": "--save-flows", "har": "--har", "keylog": "--keylog", "pcap": "--pcap"}
TRUST_LIMIT = 4 * 1024 * 1024


def check_output(flag: str, path: Path) -> Path:
    """``path`` made absolute, or a :class:`UsageError` saying why a file cannot be written there."""
    path = Path(path).absolute()
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; give a file name.")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: the directory {path.parent} does not exist; create it or choose another path.")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise UsageError(f"{flag} {path} is not a regular file; give a file name.")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"{flag} {path}: cannot write in {path.parent}; choose another path.")
    return path


def prepare_outputs(options: LabOptions) -> dict[str, str]:
    """Check every output file the options name and create it empty and 0600 (each holds
    secrets). Returns ``{option: absolute path}`` for those given."""
    out: dict[str, str] = {}
    for name, flag in FLAGS.items():
        value = getattr(options, name)
        if value is None:
            continue
        out[name] = str(check_output(flag, value))
    if options.pcap is not None and shutil.which("tcpdump") is None:
        raise UsageError("--pcap needs tcpdump, which is not installed here; install it (apt-get install tcpdump) "
                         "or drop --pcap.")
    for path in out.values():  # only once every path is known good: a bad one changes nothing
        Path(path).unlink(missing_ok=True)  # a new file of ours: never an old one's mode or owner
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return out


def upstream_trust(options: LabOptions) -> str | None:
    """The CA bundle live upstreams are verified against: ``--upstream-trust`` (checked: a readable
    PEM file with at least one certificate) or the system's; None for the mock upstream."""
    if options.upstream != "live":
        return None
    if options.upstream_trust is None:
        bundle = system_trust_bundle()
        if bundle is None:
            raise EnvironmentProblem("--upstream live verifies real servers against the system trust store, and "
                                     "this machine has none; install ca-certificates or pass --upstream-trust FILE.")
        return bundle
    path = Path(options.upstream_trust).absolute()
    data = read_bounded(path, "--upstream-trust", TRUST_LIMIT, hint="give the CA bundle your servers chain to")
    try:
        if not x509.load_pem_x509_certificates(data):
            raise ValueError("no certificate")
    except ValueError:
        raise BadFileError(f"--upstream-trust {path} holds no PEM certificate; give the CA bundle "
                           f"(-----BEGIN CERTIFICATE-----) your servers chain to.") from None
    return str(path)


class EvidenceOutputs:
    """A local lab's live upstream and evidence: the files its options name (checked and created
    0600 before anything starts), mitmweb's port and token, the forged/real chains directory, and
    the packet capture, started once the lab's ports are known and stopped first."""

    def __init__(self, options: LabOptions, state_dir: Path) -> None:
        self.options = options
        self.chains_dir = Path(state_dir) / "evidence" / "chains"
        self.outputs: dict[str, str] = {}  # option -> absolute path, checked by prepare()
        self.upstream_trust: str | None = None
        self.web_port: int | None = None
        self.web_token = secrets.token_urlsafe(16)
        self.capture: Capture | None = None

    def prepare(self) -> None:
        """Before the proxy starts: check the files the options name and pick mitmweb's port."""
        self.outputs = prepare_outputs(self.options)  # each created empty, 0600
        self.upstream_trust = upstream_trust(self.options)
        self.web_port = reserve_ports(LOOPBACK, 1)[0] if self.options.web else None
        shutil.rmtree(self.chains_dir, ignore_errors=True)  # a previous lab's chains are not this one's

    def configure(self, config: ProxyConfig) -> None:
        """The proxy's upstream mode and evidence outputs, from the options checked by prepare()."""
        config.upstream_mode = self.options.upstream
        if self.upstream_trust is not None:
            config.upstream_trust = self.upstream_trust
        config.web_port, config.web_token = self.web_port, self.web_token
        # "+": mitmproxy appends, so a restarted proxy adds to the file instead of replacing it.
        config.save_flows = "+" + self.outputs["save_flows"] if "save_flows" in self.outputs else None
        config.har, config.keylog = self.outputs.get("har"), self.outputs.get("keylog")
        config.chains_dir = str(self.chains_dir)

    def ready(self, proxy: dict, ports: list[int], addresses: list[str], *, log: Path,
              env: dict[str, str] | None) -> Evidence:
        """Once the lab is up: start the packet capture on ``ports`` (known now) and say where everything is."""
        if "pcap" in self.outputs:
            plan = capture_plan(addresses, ports, live=self.options.upstream == "live")
            self.capture = Capture(plan, self.outputs["pcap"], log=str(log), env=env)
        return Evidence(upstream=self.options.upstream, upstream_trust=self.upstream_trust, web=proxy.get("web"),
                        chains_dir=str(self.chains_dir), **self.outputs)

    def stop(self) -> None:
        if self.capture is not None:
            capture, self.capture = self.capture, None
            capture.stop()
