"""harness.lab.capture: tcpdump's interface and filter (pure), and a real tcpdump that captures the lab's port."""

import os
import shutil
import socket
import subprocess
import time

import pytest

from harness.errors import LabStartError
from harness.lab.capture import Capture, CapturePlan, capture_plan, tcpdump_argv
from harness.net.addresses import reserve_ports


def test_loopback_lab_captures_on_lo_with_exactly_its_ports():
    plan = capture_plan(["127.0.0.1"], [8101, 8443, 8101, 0], live=False)
    assert plan == CapturePlan("lo", "tcp and (port 8101 or port 8443)")


def test_live_or_lan_labs_capture_on_any_interface():
    assert capture_plan(["127.0.0.1"], [8101], live=True) == CapturePlan("any", "tcp and (port 443 or port 8101)")
    assert capture_plan(["192.168.1.5"], [8101], live=False).interface == "any"


def test_no_port_is_an_error():
    with pytest.raises(ValueError, match="at least one port"):
        capture_plan(["127.0.0.1"], [0], live=False)


def test_tcpdump_keeps_root_writes_packet_by_packet_and_never_resolves_names():
    argv = tcpdump_argv(CapturePlan("lo", "tcp and (port 1)"), "/x.pcap")
    assert argv[0] == "tcpdump" and argv[-1] == "tcp and (port 1)"
    assert {"-U", "-n", "-Z", "--immediate-mode"} <= set(argv) and argv[argv.index("-w") + 1] == "/x.pcap"


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "tcpdump wrote nothing within a minute"
        time.sleep(0.05)


@pytest.fixture
def root_tcpdump():
    if shutil.which("tcpdump") is None or os.geteuid() != 0:
        pytest.skip("needs tcpdump and root (.ci/run installs tcpdump)")


def test_a_real_capture_holds_the_lab_port_and_nothing_else(root_tcpdump, tmp_path):
    wanted, other = reserve_ports("127.0.0.1", 2)
    pcap = tmp_path / "c.pcap"
    capture = Capture(capture_plan(["127.0.0.1"], [wanted], live=False), str(pcap), log=str(tmp_path / "t.log"))
    try:
        for port in (wanted, other):
            with socket.create_server(("127.0.0.1", port)) as server:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                server.accept()[0].close()
        # tcpdump reads the packets asynchronously: wait (without a time-based verdict) until the
        # first connection's packets are on disk before stopping it.
        wait_for(lambda: pcap.stat().st_size > 24 + 6 * 16)
    finally:
        capture.stop()
    ports = subprocess.run(["tcpdump", "-nr", str(pcap)], capture_output=True, text=True, timeout=60).stdout
    assert f".{wanted}" in ports and f".{other}" not in ports


def test_tcpdump_that_cannot_capture_is_one_sentence(root_tcpdump, tmp_path):
    with pytest.raises(LabStartError, match="tcpdump did not start capturing on no-such-if0"):
        Capture(CapturePlan("no-such-if0", "tcp"), str(tmp_path / "c.pcap"), log=str(tmp_path / "t.log"))
