"""Transparent (gateway) inspection on the local lab: clients in a network namespace with no
proxy configured, their connections redirected to mitmproxy's transparent listeners.

The real-network tests need root (network namespaces, veth pairs, iptables) and
are skipped with the reason otherwise; the rest (address choice, the runner's
hook, the lab's "unavailable" path) runs anywhere.  Every namespace, veth and
rule a test creates is removed, also when it fails.
"""

import ipaddress
import os
import subprocess
import sys

import pytest

from harness.errors import EnvironmentProblem, LabStartError, UnknownNameError
from harness.lab import gateway as gw
from harness.lab.info import Endpoint, LabInfo, Transparent
from harness.lab.local import LocalLab
from harness.lab.options import LabOptions
from harness.matrix.execute import REFERENCE_CLIENTS
from harness.matrix.runner import MatrixRunner, unavailable
from harness.model.policy import load_policies
from harness.model.scenarios import Scenario

ROOT_REASON = gw.unavailable_reason()
needs_root = pytest.mark.skipif(ROOT_REASON is not None, reason=ROOT_REASON or "")


def transparent(policy, expect, trust="public+org", on_warning="abort"):
    return Scenario(name=f"t-{policy}", network="transparent", policy=policy, trust=trust,
                    attended_on_warning=on_warning, expect=expect)


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def lab_chains() -> set[str]:
    out = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    return {line.split()[1] for line in out.splitlines() if line.startswith("-N TLSLAB-")}


# -- anywhere: pure parts and the runner's hook ---------------------------------------------

def test_subnet_choice_skips_every_taken_network():
    taken = [ipaddress.ip_network("198.18.0.0/24"), ipaddress.ip_network("198.18.1.7/32"),
             ipaddress.ip_network("198.18.0.0/23")]
    assert str(gw.choose_subnet("198.18.0.0/15", taken)) == "198.18.2.0/24"
    assert str(gw.choose_subnet("198.18.0.0/15", [])) == "198.18.0.0/24"
    # Negative: a full pool and a malformed pool are one sentence each.
    with pytest.raises(EnvironmentProblem, match="no free /24 left in 198.18.0.0/24"):
        gw.choose_subnet("198.18.0.0/24", [ipaddress.ip_network("198.18.0.128/25")])
    with pytest.raises(EnvironmentProblem, match="HARNESS_GATEWAY_POOL='nope' is not an IPv4 network"):
        gw.choose_subnet("nope", [])


def test_policies_for_lists_what_transparent_rows_use():
    rows = [transparent("inspect", {"beam": "refused"}), transparent("exception-api", {"beam": "refused"}),
            Scenario(name="x", network="proxy", policy="tunnel", expect={"beam": "connected"})]
    assert gw.policies_for(rows) == ["exception-api", "inspect"]


def _info(**gateway) -> LabInfo:
    return LabInfo(backend="local", state_dir="/nonexistent", lanes=2, proxies={"inspect": ["http://p:1", "http://p:2"]},
                   server_connect=["127.0.0.1:7001", "127.0.0.1:7002"], proxy_admin="http://127.0.0.1:9",
                   server_admin="http://127.0.0.1:9", pki={"trust_public": "pub.pem", "trust_public_org": "org.pem",
                                                           "pins_file": "pins.txt"},
                   org_issuer_cn="Org CA", **gateway)


def _argv(row, lab, lane):
    return REFERENCE_CLIENTS["beam"].argv(row, lab, lab.endpoint(row.network, row.policy, lane, "beam"), "s")


def test_reference_clients_behind_the_gateway_get_no_proxy_and_the_gateway_address():
    lab = _info(transparent=Transparent(gateways={"inspect": ["198.18.0.10:443", "198.18.0.11:443"]}))
    lab.machines.gateway = {"beam": ["ip", "netns", "exec", "ns"]}
    lab.machines.corp = {"beam": ["docker", "exec", "corp-beam"]}
    lab.machines.home = ["docker", "exec", "home"]
    row = transparent("inspect", {"beam": "refused"})
    argv = _argv(row, lab, 1)
    assert argv[argv.index("--connect-to") + 1] == "198.18.0.11:443" and "--no-proxy" in argv
    assert "--proxy" not in argv
    assert lab.endpoint("transparent", "inspect", 1, "beam") == Endpoint(("ip", "netns", "exec", "ns"),
                                                                         connect_to="198.18.0.11:443")
    assert unavailable(row, lab) is None
    # Negative: the explicit and direct rows are placed and routed as before.
    explicit = Scenario(name="p", network="proxy", policy="inspect", expect={"beam": "refused"})
    assert lab.endpoint("proxy", "inspect", 0, "beam") == Endpoint(("docker", "exec", "corp-beam"), proxy_url="http://p:1")
    assert "--proxy" in _argv(explicit, lab, 0)
    direct = Scenario(name="d", network="direct", expect={"beam": "connected"})
    assert lab.endpoint("direct", None, 0, "beam").exec_prefix == ("docker", "exec", "home")
    assert _argv(direct, lab, 0)[-5:-3] == ["--connect-to", "127.0.0.1:7001"]
    with pytest.raises(UnknownNameError):
        lab.gateway_address("tunnel", 0)


def test_a_lab_without_gateway_says_why_and_the_runner_skips_those_rows(tmp_path, monkeypatch):
    reason = "transparent mode needs root (test)."
    monkeypatch.setattr(gw, "unavailable_reason", lambda: reason)
    lab = LocalLab(LabOptions(state_dir=tmp_path, lanes=1, transparent=None, transparent_policies=["inspect"]),
                   policies=load_policies())
    lab._open_gateway()
    assert lab.gateway is None and lab._gateway_unavailable == reason
    info = _info(transparent_unavailable=lab._gateway_unavailable)
    row = transparent("inspect", {"beam": "refused"})
    with pytest.raises(EnvironmentProblem, match="needs root"):
        _argv(row, info, 0)
    runner = MatrixRunner(info)
    assert runner.run([row]) == [] and runner.skipped == {row.name: reason}
    # Negative: required (transparent=True) is an error, not a skip; off says how to turn it on.
    with pytest.raises(EnvironmentProblem, match="needs root"):
        LocalLab(LabOptions(state_dir=tmp_path, lanes=1, transparent=True), policies=load_policies())._open_gateway()
    off = LocalLab(LabOptions(state_dir=tmp_path, lanes=1), policies=load_policies())
    off._open_gateway()
    assert "--transparent" in off._gateway_unavailable
    with pytest.raises(UnknownNameError):
        LocalLab(LabOptions(state_dir=tmp_path, transparent=None, transparent_policies=["nope"]), policies=load_policies())


# -- root: real namespaces, veths and iptables ------------------------------------------------

POLICIES = ["inspect", "exception-wildcard"]


@pytest.fixture(scope="module")
def gw_lab(tmp_path_factory):
    if ROOT_REASON:
        pytest.skip(ROOT_REASON)
    policies = load_policies()
    lab = LocalLab(LabOptions(state_dir=tmp_path_factory.mktemp("gw-lab"), lanes=2, show_secrets=True,
                              transparent=True, transparent_policies=POLICIES), policies=policies)
    info = lab.start()
    try:
        yield lab, info, MatrixRunner(info, policies=policies)
    finally:
        lab.stop()


def _run_beam(prefix, info, connect_to, *extra):
    argv = [*prefix, "harness", "beam", "--url", "https://beam.screenmeet.com", "--pins", info.pins_file,
            "--trust", info.trust_bundle("public+org"), "--no-proxy", "--connect-to", connect_to,
            "--once", "--json", "--timeout", "5", "--token", "lab-secret-gw", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@needs_root
def test_beam_behind_the_gateway_is_inspected_and_refuses(gw_lab):
    lab, info, runner = gw_lab
    cell = runner.run_cell(transparent("inspect", {"beam": "refused"}), "beam")
    assert cell.passed, cell.verdict.reasons
    [record] = [r for r in cell.proxy_records if r["kind"] == "connection"]
    assert record["original_dst"] == info.gateway_address("inspect", cell.lane)
    assert record["client"].startswith(info.transparent.client_address + ":")
    assert record["connect_host"] is None  # no proxy was configured: no CONNECT
    assert (record["sni"], record["action"], record["forged_issuer"]) == ("beam.screenmeet.com", "intercepted",
                                                                          info.org_issuer_cn)
    assert cell.server_records == []


@needs_root
def test_exception_passes_through_the_gateway_and_the_journal_says_so(gw_lab):
    lab, info, runner = gw_lab
    cell = runner.run_cell(transparent("exception-wildcard", {"beam": "connected"}), "beam")
    assert cell.passed, cell.verdict.reasons
    records = [r for r in cell.proxy_records if r["kind"] == "connection"]
    assert records and {(r["action"], r["exception"], r["forged_issuer"]) for r in records} == {
        ("passed-through", "*.screenmeet.com", None)}
    assert {r["original_dst"] for r in records} == {info.gateway_address("exception-wildcard", cell.lane)}
    assert cell.server_records and all(r["host"] == "beam.screenmeet.com" for r in cell.server_records
                                       if r["kind"] == "http")
    # Negative: the same client through the inspecting gateway address is intercepted and reaches nothing.
    inspected = runner.run_cell(transparent("inspect", {"beam": "refused"}), "beam")
    assert {r["action"] for r in inspected.proxy_records} == {"intercepted"} and not inspected.server_records


@needs_root
def test_without_the_redirect_the_client_cannot_connect(gw_lab, tmp_path):
    lab, info, _ = gw_lab
    bare = gw.Gateway.create(["inspect"], 1)  # the same namespace set-up, but no REDIRECT rule
    try:
        before = runner_cursor(info)
        prefix = bare.exec_prefix(gw.write_launcher(tmp_path / "bin"))
        proc = _run_beam(prefix, info, bare.gateways["inspect"][0])
        assert proc.returncode == 6, proc.stdout + proc.stderr  # network error: connection refused
        assert "refused" in (proc.stdout + proc.stderr).lower()
        assert new_records(info, before) == []  # the proxy never saw it
        # (The positive, the same set-up with its rule: test_beam_behind_the_gateway_is_inspected_and_refuses.)
    finally:
        bare.destroy()
    assert bare.namespace not in namespaces() and bare.chain not in lab_chains()


def runner_cursor(info):
    from harness.net.journal import JournalReader

    return JournalReader(info.proxy_admin).last_seq()


def new_records(info, after):
    from harness.net.journal import JournalReader

    return JournalReader(info.proxy_admin).read(after=after, settle=0.5)


@needs_root
def test_the_namespace_has_no_other_way_out(gw_lab):
    lab, info, _ = gw_lab
    ns = info.transparent.namespace
    code = ("import socket, sys\n"
            "for host, port in [(sys.argv[1], int(sys.argv[2])), ('203.0.113.1', 443)]:\n"
            "    try:\n"
            "        socket.create_connection((host, port), timeout=3).close(); print('connected')\n"
            "    except OSError as e:\n"
            "        print('failed', e.errno)\n")
    host, port = info.server_connect[0].rsplit(":", 1)
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code, host, port],
                         capture_output=True, text=True, timeout=30).stdout.split("\n")
    # The mock server on the host's loopback is not reachable from the namespace, and there is no
    # route anywhere else (nothing is sent: the kernel answers "network unreachable" itself).
    assert out[0].startswith("failed") and out[1] == "failed 101", out
    # Negative: on the host the server is right there.
    import socket

    socket.create_connection((host, int(port)), timeout=3).close()


@needs_root
def test_only_gateway_addresses_are_served(gw_lab):
    """A REDIRECT from an address the lab never planned reaches the listener, and the proxy refuses it."""
    lab, info, runner = gw_lab
    gateway = lab.gateway
    rogue = str(gateway.subnet[200])
    port = lab._transparent_ports["inspect"][0]
    add = ["ip", "addr", "add", f"{rogue}/32", "dev", gateway.host_if]
    rule = ["-t", "nat", "{}", gateway.chain, "-d", f"{rogue}/32", "-p", "tcp", "--dport", "443",
            "-j", "REDIRECT", "--to-ports", str(port)]
    subprocess.run(add, check=True)
    subprocess.run(["iptables", "-w", *[a if a != "{}" else "-A" for a in rule]], check=True)
    try:
        before = runner_cursor(info)
        proc = _run_beam(info.machines.gateway["beam"], info, f"{rogue}:443")
        assert proc.returncode in (4, 6), proc.stdout + proc.stderr
        [record] = [r for r in new_records(info, before) if r["kind"] == "connection"]
        assert record["original_dst"] == f"{rogue}:443" and record["action"] == "blocked"
        assert "is not a gateway address of this lab" in record["upstream_error"]
        assert record["policy"] is None and record["requests"] == []
    finally:
        subprocess.run(["iptables", "-w", *[a if a != "{}" else "-D" for a in rule]])
        subprocess.run(["ip", "addr", "del", f"{rogue}/32", "dev", gateway.host_if])
    # Negative: the planned address of the same listener is served.
    cell = runner.run_cell(transparent("inspect", {"beam": "refused"}), "beam")
    assert cell.passed, cell.verdict.reasons


@needs_root
def test_the_gateway_survives_a_proxy_restart(gw_lab):
    lab, info, runner = gw_lab
    rules = dict(lab.gateway.redirects)
    lab.restart_proxy()
    assert lab.gateway.redirects == rules  # same listener ports, same rules
    cell = runner.run_cell(transparent("inspect", {"attended": "warned-continued"}, on_warning="continue"), "attended")
    assert cell.passed, cell.verdict.reasons


@needs_root
def test_destroy_removes_namespace_veth_and_rules():
    g = gw.Gateway.create(["inspect"], 2)
    assert g.namespace in namespaces() and g.chain in lab_chains()
    assert os.path.exists(f"/sys/class/net/{g.host_if}")
    g.redirect({"inspect": [40001, 40002]})
    rules = subprocess.run(["iptables", "-w", "-t", "nat", "-S", g.chain], capture_output=True, text=True).stdout
    assert rules.count("REDIRECT") == 2 and "--to-ports 40002" in rules
    g.destroy()
    assert g.namespace not in namespaces() and g.chain not in lab_chains()
    assert not os.path.exists(f"/sys/class/net/{g.host_if}")
    prerouting = subprocess.run(["iptables", "-w", "-t", "nat", "-S", "PREROUTING"], capture_output=True, text=True).stdout
    assert g.host_if not in prerouting
    g.destroy()  # idempotent


@needs_root
def test_a_dead_labs_gateway_is_swept():
    dead = subprocess.Popen(["true"])
    dead.wait()
    token = "abc123"
    ns, (host_if, chain) = f"tlslab-{dead.pid}-{token}", gw._names(token)
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns], check=True)
        subprocess.run(["iptables", "-w", "-t", "nat", "-N", chain], check=True)
        subprocess.run(["iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-i", host_if, "-j", chain], check=True)
        live = gw.Gateway.create(["inspect"], 1)  # creating a gateway sweeps the dead one
        try:
            assert ns not in namespaces() and chain not in lab_chains()
            assert live.namespace in namespaces()  # negative: a live lab's gateway is kept
            assert gw.sweep_stale() == [] and live.namespace in namespaces()
        finally:
            live.destroy()
    finally:
        gw._remove(ns, host_if, chain)


@needs_root
def test_a_lab_that_fails_to_start_removes_its_gateway(tmp_path):
    before = namespaces(), lab_chains()
    lab = LocalLab(LabOptions(state_dir=tmp_path, lanes=1, transparent=True, transparent_policies=["inspect"],
                              python="/bin/false", start_timeout=10), policies=load_policies())
    # /bin/false as the components' Python: the first to start exits at once, with its log named.
    with pytest.raises(LabStartError, match=r"failed to start: exit code 1 \(log: .*\.log\)"):
        lab.start()
    assert (namespaces(), lab_chains()) == before
    assert lab.gateway is None
