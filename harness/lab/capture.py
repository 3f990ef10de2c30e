"""A packet capture of the lab's traffic: ``tcpdump`` on the interface the lab uses.

``harness up --pcap FILE`` starts tcpdump once the lab's ports are known, with
a filter naming exactly those ports (proxy listeners, mock server, and 443
for a live upstream), so the file holds the lab's connections and nothing else
of the machine.  With ``--keylog`` the same connections decrypt in Wireshark or
``tshark -o tls.keylog_file:KEYLOG``.  The file is 0600 (created by
:mod:`harness.lab.evidence`; tcpdump keeps root and writes it in place).

:func:`capture_plan` is the pure part: interface and filter from the lab's
addresses.  :class:`Capture` runs tcpdump and waits until it really listens.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import LabStartError

LOOPBACK_INTERFACE = "lo"
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class CapturePlan:
    """What tcpdump listens on: ``interface`` and a BPF ``filter``."""

    interface: str
    filter: str


def capture_plan(listen_hosts: list[str], ports: list[int], *, live: bool) -> CapturePlan:
    """Loopback when every address the lab uses is a loopback one; ``any`` when it also talks to a
    LAN (``--listen``) or the real internet (``--upstream live``).  The filter names the lab's TCP ports."""
    loopback = all(h.startswith("127.") or h in ("::1", "localhost") for h in listen_hosts)
    wanted = sorted({p for p in ports if p} | ({443} if live else set()))
    if not wanted:
        raise ValueError("a capture needs at least one port of the lab")
    return CapturePlan(LOOPBACK_INTERFACE if loopback and not live else "any",
                       "tcp and (" + " or ".join(f"port {p}" for p in wanted) + ")")


def tcpdump_argv(plan: CapturePlan, path: str) -> list[str]:
    """tcpdump handed each packet at once (--immediate-mode: else the kernel batches them for up to
    a second, and a capture stopped right after the last connection loses it), writing ``path``
    packet by packet (-U), whole packets (-s 0), without name lookups (-n), keeping root (-Z root:
    Debian's tcpdump would otherwise drop to a user that cannot write the 0600 file)."""
    return ["tcpdump", "-i", plan.interface, "-n", "-s", "0", "--immediate-mode", "-U", "-Z", "root", "-w", path,
            plan.filter]


class Capture:
    """A running tcpdump; :meth:`stop` ends it so the file is complete.  Its messages go to
    ``log`` (a pipe nobody reads would kill it with SIGPIPE or block it)."""

    def __init__(self, plan: CapturePlan, path: str, *, log: str, env: dict | None = None) -> None:
        self.plan, self.path, self.log = plan, path, Path(log)
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                tcpdump_argv(plan, path), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                start_new_session=True)
        self._wait_listening(offset)

    def _said(self, offset: int) -> str:
        with open(self.log, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def _wait_listening(self, offset: int) -> None:
        """Return once tcpdump says it listens ('listening on IFACE'); a capture that starts late
        would miss the first handshakes.  Polls its log: tcpdump has no readiness signal."""
        deadline = time.monotonic() + START_TIMEOUT
        while "listening on" not in self._said(offset):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                last = self._said(offset).strip().splitlines()[-1:] or ["no output"]
                raise LabStartError(f"tcpdump did not start capturing on {self.plan.interface} ({last[0]}); "
                                    f"run as root or drop --pcap.")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (tcpdump flushes and closes the file), then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
