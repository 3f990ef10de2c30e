"""The compose lab's network shape: corp clients can only leave through the proxy; and how the
harness drives it: the Docker API and the client workers (harness.lab.engine, harness.lab.execstream,
harness.matrix.remote).

Runs with ``pytest --lab=compose`` (CI does this whenever a Docker engine
answers); with the local lab these tests are skipped with that reason.
"""

import json
import subprocess
import time

import pytest

from harness.lab import compose, engine, execstream
from harness.matrix import execute, remote

pytestmark = pytest.mark.compose


@pytest.fixture(scope="module")
def compose_lab(tls_lab, lab_backend):
    if lab_backend != "compose":
        pytest.skip("compose network tests need --lab=compose")
    return tls_lab


def _machine(lab, service: str) -> list[str]:
    """The exec prefix of a compose service: home, attended, beam, or attended-gw / beam-gw."""
    if service == "home":
        return lab.machines.home
    if service.endswith("-gw"):
        return lab.machines.gateway[service[:-3]]
    return lab.machines.corp[service]


def in_container(lab, service, code, timeout=30):
    cmd = [*_machine(lab, service), "python", "-c", code]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1] if len(sys.argv) > 1 else {host!r}, {port}), timeout=3).close()
    print("connected")
except OSError as e:
    print("failed:", e)
"""


def test_corp_client_cannot_reach_the_server_directly(compose_lab):
    by_name = in_container(compose_lab, "beam", CONNECT.format(host="screenmeet.com", port=8443))
    assert "failed" in by_name.stdout, by_name.stdout + by_name.stderr
    server_ip = compose_lab.server_admin.split("//")[1].split(":")[0]
    by_ip = in_container(compose_lab, "beam", CONNECT.format(host=server_ip, port=8443))
    assert "failed" in by_ip.stdout, by_ip.stdout + by_ip.stderr


def test_negative_home_client_reaches_the_server(compose_lab):
    out = in_container(compose_lab, "home", CONNECT.format(host="screenmeet.com", port=8443))
    assert "connected" in out.stdout, out.stdout + out.stderr


def test_corp_client_reaches_the_proxy(compose_lab):
    port = int(compose_lab.proxy_url("inspect").rsplit(":", 1)[1])
    out = in_container(compose_lab, "attended", CONNECT.format(host="proxy", port=port))
    assert "connected" in out.stdout, out.stdout + out.stderr


def test_admin_endpoints_are_unreachable_from_corp(compose_lab):
    for url in (compose_lab.proxy_admin, compose_lab.server_admin):
        host, port = url.split("//")[1].split(":")
        out = in_container(compose_lab, "beam", CONNECT.format(host=host, port=int(port)))
        assert "failed" in out.stdout, f"{url} reachable from corp: {out.stdout}"


def test_forged_chain_seen_from_corp_with_curl(compose_lab):
    """What the README tells a reviewer to do: curl through the proxy from a corp machine."""
    cmd = [*compose_lab.machines.corp["beam"], "curl", "-sv", "--proxy", compose_lab.proxy_url("inspect"),
           "--cacert", compose_lab.pki["trust_public_org"], "https://api.screenmeet.com/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"issuer: CN={compose_lab.org_issuer_cn}" in out.stderr


# -- transparent (gateway) inspection: the corp-gw network ------------------------------------

GW = "beam-gw"  # no proxy configured, default route via the proxy


def test_gateway_clients_route_everything_via_the_proxy(compose_lab):
    out = subprocess.run([*compose_lab.machines.gateway["beam"], "ip", "route", "show", "default"],
                         capture_output=True, text=True, timeout=30)
    resolve = in_container(compose_lab, GW, "import socket; print(socket.gethostbyname('gateway'))")
    assert out.stdout.split()[:3] == ["default", "via", resolve.stdout.strip()], out.stdout + resolve.stderr
    # Negative: an explicit-proxy corp machine does not route via the proxy (the internal network's
    # Docker gateway drops what it is sent); it reaches the proxy by name, as a proxy.
    corp = subprocess.run([*compose_lab.machines.corp["beam"], "ip", "route", "show", "default"],
                          capture_output=True, text=True, timeout=30)
    proxy = in_container(compose_lab, "beam", "import socket; print(socket.gethostbyname('proxy'))").stdout.strip()
    assert proxy and f"via {proxy} " not in corp.stdout + " ", corp.stdout


def test_gateway_client_cannot_reach_the_server_or_admin_endpoints(compose_lab):
    # By name: the ScreenMeet aliases live on the internet network only.
    by_name = in_container(compose_lab, GW, CONNECT.format(host="screenmeet.com", port=8443))
    assert "failed" in by_name.stdout, by_name.stdout + by_name.stderr
    # By address: routed to the proxy, which forwards nothing and accepts only redirected traffic.
    for url in (compose_lab.server_admin, compose_lab.proxy_admin, f"http://{_server_ip(compose_lab)}:8443"):
        host, port = url.split("//")[1].split(":")
        out = in_container(compose_lab, GW, CONNECT.format(host=host, port=int(port)))
        assert "failed" in out.stdout, f"{url} reachable from corp-gw: {out.stdout}"


def _server_ip(lab):
    return lab.server_admin.split("//")[1].split(":")[0]


def test_only_redirected_gateway_addresses_answer(compose_lab):
    ip = compose_lab.gateway_address("inspect", 0).rsplit(":", 1)[0]
    redirected = in_container(compose_lab, GW, CONNECT.format(host=ip, port=443))
    assert "connected" in redirected.stdout, redirected.stdout + redirected.stderr
    # Negative: the same address on a port without a REDIRECT rule is refused at once.
    other = in_container(compose_lab, GW, CONNECT.format(host=ip, port=8443))
    assert "failed" in other.stdout and "refused" in other.stdout.lower(), other.stdout


def test_transparent_exception_passes_through_and_the_journal_says_so(compose_lab, run_scenario):
    cell = run_scenario("transparent-exception-wildcard", "beam")
    assert cell.passed, cell.verdict.reasons
    records = [r for r in cell.proxy_records if r["kind"] == "connection"]
    assert records and {r["action"] for r in records} == {"passed-through"}
    assert {r["original_dst"] for r in records} == {compose_lab.gateway_address("exception-wildcard", cell.lane)}
    assert cell.server_records
    # Negative: through the inspecting gateway address Beam is intercepted and the server sees nothing.
    inspected = run_scenario("transparent-inspected-decline", "beam")
    assert {r["action"] for r in inspected.proxy_records if r["kind"] == "connection"} == {"intercepted"}
    assert not inspected.server_records


# -- hostile sites on the internet network (issue 16) -----------------------------------------


def _curl_home(lab, url):
    cmd = [*lab.machines.home, "curl", "-sS", "-o", "/dev/null", "--max-time", "20",
           "--cacert", lab.pki["trust_public"], url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_the_server_container_serves_each_hostile_site_the_policies_name(compose_lab):
    from harness.model.policy import load_policies

    assert set(compose_lab.sites) == {p.upstream for p in load_policies().values() if p.upstream}
    assert all(len(hosts) == compose_lab.lanes for hosts in compose_lab.sites.values())
    port = compose_lab.sites["expired"][0].rsplit(":", 1)[1]
    expired = _curl_home(compose_lab, f"https://api.screenmeet.com:{port}/")
    assert expired.returncode == 60 and "certificate has expired" in expired.stderr, expired.stderr
    wrong = _curl_home(compose_lab, f"https://api.screenmeet.com:{compose_lab.sites['wrong-host'][0].rsplit(':', 1)[1]}/")
    assert wrong.returncode == 60 and "subject name" in wrong.stderr, wrong.stderr
    # Negative: the same name on the lane's own port presents the good certificate.
    good = _curl_home(compose_lab, f"https://api.screenmeet.com:{compose_lab.server_connect[0].rsplit(':', 1)[1]}/")
    assert good.returncode == 0, good.stderr


def test_corp_clients_cannot_reach_a_hostile_site_directly(compose_lab):
    port = int(compose_lab.sites["expired"][0].rsplit(":", 1)[1])
    out = in_container(compose_lab, "beam", CONNECT.format(host="screenmeet.com", port=port))
    assert "failed" in out.stdout, out.stdout + out.stderr
# -- the harness's side: the Docker API and the client workers --------------------------------

def test_a_cell_runs_in_its_container_through_the_worker_not_a_docker_process(compose_lab, monkeypatch):
    monkeypatch.setattr(execute.subprocess, "Popen", lambda *a, **kw: pytest.fail("a process on the host"))
    monkeypatch.setattr(execute.subprocess, "run", lambda *a, **kw: pytest.fail("a process on the host"))
    prefix = compose_lab.machines.corp["beam"]
    code, output = execute.run_foreign(["sh", "-c", "cat /etc/hostname; echo $K; id -un; cat"], {"K": "from env"},
                                       "from stdin\n", 30, prefix)
    assert code == 0, output
    assert output.split("\n")[:4] == [prefix[-1][:12], "from env", "lab", "from stdin"]
    gw = compose_lab.machines.gateway["beam"]  # a root container: the worker runs as lab
    assert execute.run_foreign(["id", "-un"], {}, None, 30, gw) == (0, "lab\n")


def test_a_client_past_its_timeout_is_killed_with_its_group_in_the_container(compose_lab):
    prefix = compose_lab.machines.corp["attended"]
    code, output = execute.run_foreign(["sh", "-c", "sleep 77 & sleep 60"], {}, None, 1, prefix)
    assert code == 124 and "its process group was killed" in output
    ps = "import os; print([open(f'/proc/{p}/cmdline').read() for p in os.listdir('/proc') if p.isdigit()])"
    code, output = execute.run_foreign(["python", "-c", ps], {}, None, 30, prefix)
    assert code == 0 and "sleep\\x0077" not in output and "sleep\\x0060" not in output, output


def test_a_worker_that_died_is_started_again(compose_lab):
    target = engine.exec_target(compose_lab.machines.home)
    first = remote.worker(target)
    pid = first.request({"run": "hello"}, 30)["pid"]
    engine.exec_output(target[0], ["kill", "-9", str(pid)])  # the worker, inside its container
    with pytest.raises(execstream.SessionClosed):  # what was sent to the dead worker fails, saying so
        first.request({"run": "hello"}, 30)
    code, output = execute.run_foreign(["true"], {}, None, 30, compose_lab.machines.home)
    assert code == 0 and remote.worker(target).request({"run": "hello"}, 30)["pid"] != pid


def test_readiness_and_health_through_the_api(compose_lab):
    containers = engine.project_containers(compose.project_name())
    proxy = containers["proxy"]["Id"]
    assert json.loads(engine.read_file(proxy, compose.READY_FILE))["ready"]["admin"] == compose_lab.proxy_admin
    assert engine.read_file(proxy, "/tmp/no-such-file") is None
    assert containers["gateway"]["State"] == "exited" and engine.inspect(containers["gateway"]["Id"])["State"]["ExitCode"] == 0
    for client in ("attended-gw", "beam-gw"):
        assert any(compose.ROUTED in line for line in engine.logs_tail(containers[client]["Id"], 20))
    # compose.yaml's healthchecks test the same ready files (for docker ps): both turn healthy.
    deadline = time.monotonic() + 60
    while {engine.inspect(containers[s]["Id"])["State"]["Health"]["Status"] for s in ("screenmeet", "proxy")} != {"healthy"}:
        assert time.monotonic() < deadline, "the healthchecks did not turn healthy"
        time.sleep(0.5)


def test_a_service_that_dies_at_start_is_named_and_nothing_is_left(compose_lab, tmp_path, monkeypatch):
    """A second project beside the running lab (its own name and subnets), whose proxy and gateway are
    given a policy that does not exist: the start fails naming the service with its last log line."""
    from harness.errors import LabStartError
    from harness.lab.open import open_lab
    from harness.lab.options import LabOptions

    running = compose.project_name()
    project = f"{running}-fails"
    monkeypatch.setenv("LAB_COMPOSE_PROJECT", project)
    for variable, subnet in zip(("LAB_SUBNET_CORP", "LAB_SUBNET_INTERNET", "LAB_SUBNET_CORP_GW"),
                                ("198.19.5.0/24", "198.19.6.0/24", "198.19.7.0/24")):
        monkeypatch.setenv(variable, subnet)
    monkeypatch.setenv("LAB_GW_POLICIES", "no-such-policy")
    lab = open_lab(LabOptions(backend="compose", state_dir=tmp_path, lanes=1, build=False))
    # Both the proxy and the gateway refuse it; whichever is seen first is named, with its own words.
    with pytest.raises(LabStartError, match=r"the (proxy|gateway) container exited (\(2\)|with 2): \1: "
                                            r"--transparent-policies names 'no-such-policy'.*[^.]\.$"):
        lab.start()
    assert not engine.project_exists(project)
    assert not (tmp_path / "lab.json").exists()
    assert compose_lab.proxy_admin  # the session's lab is another project: still there
    assert engine.read_file(engine.project_containers(running)["proxy"]["Id"], compose.READY_FILE)
