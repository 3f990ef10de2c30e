"""harness.lab.pac: the PAC script (run in a real PAC engine, pacparser), the PAC/WPAD paths, the
server; and a real device: a network namespace on a veth that fetches the PAC from a lab started
with ``--listen`` and connects (curl, beam, attended) where the PAC says, judged from the journals."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pacparser
import pytest

from harness.lab import gateway
from harness.lab.pac import PAC_MIME, PacServer, default_policy, pac_answer, pac_script, proxy_address
from tests.clihelpers import ROOT


def find_proxy(script: str, url: str) -> str:
    """What a real PAC engine (pacparser, the one many proxies and libproxy use) answers for ``url``."""
    host = url.split("/")[2].split(":")[0]
    pacparser.init()
    try:
        pacparser.parse_pac_string(script)
        return pacparser.find_proxy(url, host)
    finally:
        pacparser.cleanup()


# -- the script and the paths (pure) ------------------------------------------------------------

@pytest.mark.parametrize("url", ["https://api.screenmeet.com/api/v1/session", "https://beam.screenmeet.com/",
                                 "https://screenmeet.com/", "wss://API.ScreenMeet.com/ws", "https://x.scrn.mt/",
                                 "http://mitm.it/cert/pem"])
def test_the_labs_names_go_to_the_policys_proxy(url):
    assert find_proxy(pac_script("198.18.7.1:18100", policy="inspect"), url) == "PROXY 198.18.7.1:18100"


@pytest.mark.parametrize("url", ["https://example.com/", "https://notscreenmeet.com/", "https://screenmeet.com.evil.test/",
                                 "https://scrn.mt.example/"])
def test_everything_else_goes_direct(url):
    assert find_proxy(pac_script("198.18.7.1:18100", policy="inspect"), url) == "DIRECT"


def test_each_policy_gets_its_own_listener_and_the_default_is_inspect():
    server = PacServer({"tunnel": "http://10.1.2.3:9000", "inspect": "http://10.1.2.3:9001"})
    assert default_policy(server.scripts) == "inspect" and default_policy(["tunnel", "x"]) == "tunnel"
    assert find_proxy(server.scripts["tunnel"], "https://api.screenmeet.com/") == "PROXY 10.1.2.3:9000"
    assert find_proxy(server.scripts["inspect"], "https://api.screenmeet.com/") == "PROXY 10.1.2.3:9001"
    assert proxy_address("http://[fd00::1]:8080") == "[fd00::1]:8080"


def test_paths_mime_and_the_unknown_policy_sentence():
    scripts = {"inspect": "// i\n", "tunnel": "// t\n"}
    for path, body in [("/proxy.pac", b"// i\n"), ("/wpad.dat", b"// i\n"), ("/pac/tunnel/proxy.pac", b"// t\n"),
                       ("/pac/tunnel/wpad.dat?x=1", b"// t\n")]:
        answer = pac_answer(path, scripts, "inspect")
        assert (answer.status, answer.content_type, answer.body) == (200, PAC_MIME, body), path
    missing = pac_answer("/pac/inspekt/proxy.pac", scripts, "inspect")
    assert missing.status == 404 and missing.content_type.startswith("text/plain")
    assert missing.body.decode() == ("this lab serves no policy 'inspekt'; its policies are inspect, tunnel "
                                     "(e.g. /pac/inspect/proxy.pac).\n")
    other = pac_answer("/journal", scripts, "inspect")
    assert other.status == 404 and b"try /proxy.pac, /wpad.dat or /pac/POLICY/proxy.pac" in other.body


def test_the_server_answers_over_http_and_stops():
    server = PacServer({"inspect": "http://127.0.0.1:9001"})
    base = server.start("127.0.0.1")
    try:
        for path in ("/proxy.pac", "/wpad.dat", "/pac/inspect/proxy.pac"):
            with urllib.request.urlopen(base + path, timeout=30) as r:
                assert r.headers["Content-Type"] == PAC_MIME
                assert find_proxy(r.read().decode(), "https://beam.screenmeet.com/") == "PROXY 127.0.0.1:9001"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/pac/nope/proxy.pac", timeout=30)
        assert e.value.code == 404 and b"this lab serves no policy 'nope'" in e.value.read()
    finally:
        server.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(base + "/proxy.pac", timeout=10)


def test_connections_beyond_the_cap_are_closed_and_a_freed_slot_serves_again():
    server = PacServer({"inspect": "http://127.0.0.1:9001"}, max_connections=1)
    base = server.start("127.0.0.1")
    host, port = base.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=30):  # holds the one slot, sends nothing
            with pytest.raises((urllib.error.URLError, ConnectionError, http.client.RemoteDisconnected)):
                urllib.request.urlopen(base + "/proxy.pac", timeout=30)
        for _ in range(300):  # the slot is freed once its thread sees the close (no time assertion)
            try:
                with urllib.request.urlopen(base + "/proxy.pac", timeout=30) as r:
                    assert r.status == 200
                    break
            except (urllib.error.URLError, ConnectionError, http.client.RemoteDisconnected):
                time.sleep(0.1)
        else:
            pytest.fail("the freed slot never served again")
    finally:
        server.close()


# -- a real device: a network namespace on a veth, reaching a lab started with --listen -------------

def harness(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL)


@pytest.fixture
def device():
    """A network namespace (prefix ``device``) joined to this machine by a veth on a 198.18.x.0/24;
    yields (namespace, host address, device address); always deleted."""
    if reason := gateway.unavailable_reason():
        pytest.skip(reason)
    token = secrets.token_hex(3)
    namespace, host_if = f"device-{os.getpid()}-{token}", f"device{token}"
    subnet = gateway.create_lan_namespace(namespace, host_if)
    try:
        yield namespace, str(subnet[1]), str(subnet[2])
    finally:
        assert gateway.remove_namespace(namespace, host_if) == []


def in_device(namespace: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL)


def journal(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/journal?settle=10", timeout=60) as r:
        return json.loads(r.read())["records"]


def new_records(url: str, seen: set[int]) -> list[dict]:
    records = [r for r in journal(url) if r["seq"] not in seen]
    seen.update(r["seq"] for r in records)
    return records


@pytest.fixture
def device_lab(device, tmp_path):
    """A lab listening on the veth's host address (``harness up --detach --listen``), stopped after."""
    namespace, host, client = device
    state = tmp_path / "lab"
    up = harness("up", "--detach", "--lanes", "1", "--listen", host, "--state-dir", str(state))
    try:
        assert up.returncode == 0, up.stderr
        yield namespace, host, client, json.loads((state / "lab.json").read_text()), up.stdout
    finally:
        assert harness("down", "--state-dir", str(state)).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_a_device_follows_the_pac_to_the_policys_proxy(device_lab, tmp_path):
    namespace, host, client, info, banner = device_lab
    # The loud line, and where a device points; the journals stay on loopback.
    assert f"!!! --listen {host}: the lab's proxy and its inspection CA are now reachable" in banner
    assert info["listen"] == host and info["proxy_admin"].startswith("http://127.0.0.1:")
    assert info["device_proxies"]["inspect"] == info["proxies"]["inspect"][0].removeprefix("http://")
    assert info["device_proxies"]["inspect"].startswith(f"{host}:") and info["pac_default"] in banner
    admin_port = info["proxy_admin"].rsplit(":", 1)[1]
    blocked = in_device(namespace, "curl", "-s", "-o", "/dev/null", "--max-time", "10", f"http://{host}:{admin_port}/journal")
    assert blocked.returncode == 7, "the proxy journal answered the device"  # 7: connection refused
    bundle, pins = info["pki"]["trust_public_org"], info["pki"]["pins_file"]
    seen_proxy: set[int] = set()
    seen_server: set[int] = set()
    new_records(info["proxy_admin"], seen_proxy)
    new_records(info["server_admin"], seen_server)

    def pac_answer_for(policy: str, url: str) -> str:
        fetched = in_device(namespace, "curl", "-sS", "--max-time", "30", "-D", "-", info["pac"][policy])
        assert fetched.returncode == 0, fetched.stderr
        head, _, script = fetched.stdout.partition("\n\n")  # (text mode turned CRLF into LF)
        assert f"content-type: {PAC_MIME}" in head.lower()
        answer = find_proxy(script, url)
        assert answer == f"PROXY {info['device_proxies'][policy]}"
        return "http://" + answer.removeprefix("PROXY ")

    # curl under inspection: the proxy decrypts it (forged by the org CA) and the server sees it.
    proxy = pac_answer_for("inspect", "https://api.screenmeet.com/api/v1/status")
    curl = in_device(namespace, "curl", "-sS", "--max-time", "60", "--proxy", proxy, "--cacert", bundle,
                     "https://api.screenmeet.com/api/v1/status")
    assert curl.returncode == 0, curl.stderr
    conns = [r for r in new_records(info["proxy_admin"], seen_proxy) if r["kind"] == "connection"]
    assert [(r["policy"], r["action"], r["client"].rsplit(":", 1)[0]) for r in conns] == [("inspect", "intercepted", client)]
    assert [q["path"] for q in conns[0]["requests"]] == ["/api/v1/status"]
    assert conns[0]["forged_issuer"] == info["org_issuer_cn"]
    assert [r["path"] for r in new_records(info["server_admin"], seen_server) if r["kind"] == "http"] == ["/api/v1/status"]

    # Beam on the device under inspection refuses: nothing decrypted, nothing at the server.
    beam = in_device(namespace, sys.executable, "-m", "harness", "beam", "--proxy", proxy, "--trust", bundle,
                     "--pins", pins, "--once", "--json")
    assert beam.returncode == 5, beam.stdout + beam.stderr
    conns = [r for r in new_records(info["proxy_admin"], seen_proxy) if r["kind"] == "connection"]
    assert conns and all(r["action"] == "intercepted" and r["requests"] == [] for r in conns)
    assert all(r["client"].rsplit(":", 1)[0] == client for r in conns)
    assert [r for r in new_records(info["server_admin"], seen_server) if r["kind"] == "http"] == []

    # Attended warns and, told to continue, its requests are decrypted (the reviewer's evidence).
    attended = in_device(namespace, sys.executable, "-m", "harness", "attended", "--proxy", proxy, "--trust", bundle,
                         "--pins", pins, "--on-warning", "continue", "--json")
    assert attended.returncode == 0, attended.stdout + attended.stderr
    assert "Certificate Issuer: CN=" + info["org_issuer_cn"] in attended.stdout
    conns = [r for r in new_records(info["proxy_admin"], seen_proxy) if r["kind"] == "connection"]
    assert any(r["action"] == "intercepted" and r["requests"] for r in conns)

    # Under the exception the PAC names the exception's proxy, and Beam connects through it untouched.
    proxy = pac_answer_for("exception-wildcard", "https://beam.screenmeet.com/")
    beam = in_device(namespace, sys.executable, "-m", "harness", "beam", "--proxy", proxy, "--trust", bundle,
                     "--pins", pins, "--once", "--json")
    assert beam.returncode == 0, beam.stdout + beam.stderr
    conns = [r for r in new_records(info["proxy_admin"], seen_proxy) if r["kind"] == "connection"]
    assert conns and all((r["policy"], r["action"], r["forged_issuer"]) == ("exception-wildcard", "passed-through", None)
                         for r in conns)
    assert [r for r in new_records(info["server_admin"], seen_server) if r["kind"] == "http"]

    # A PAC for a policy the lab does not serve: a clear 404.
    base = info["pac_default"].removesuffix("/proxy.pac")
    missing = in_device(namespace, "curl", "-sS", "--max-time", "30", "-w", "%{http_code}", f"{base}/pac/nope/proxy.pac")
    assert missing.stdout.endswith("404") and "this lab serves no policy 'nope'" in missing.stdout


def test_a_lab_without_policies_serves_no_pac(tmp_path):
    """A direct-only run (`harness run --scenario direct`) has no proxy for a device: no PAC server,
    and lab.json says so (it once failed with an IndexError choosing the default policy)."""
    from harness.lab.local import LocalLab
    from harness.lab.options import LabOptions

    with LocalLab(LabOptions(state_dir=tmp_path / "s", lanes=1), policies={}) as info:
        assert (info.pac, info.pac_default, info.wpad) == ({}, None, None)


def test_pac_urls_are_the_paths_the_server_answers():
    from harness.lab.pac import pac_urls

    urls = pac_urls("http://192.168.1.20:9300", ["inspect", "tunnel"])
    assert urls == {"pac": {"inspect": "http://192.168.1.20:9300/pac/inspect/proxy.pac",
                            "tunnel": "http://192.168.1.20:9300/pac/tunnel/proxy.pac"},
                    "pac_default": "http://192.168.1.20:9300/proxy.pac", "wpad": "http://192.168.1.20:9300/wpad.dat"}
    scripts = {p: pac_script("127.0.0.1:9001", policy=p) for p in ("inspect", "tunnel")}
    for url in [*urls["pac"].values(), urls["pac_default"], urls["wpad"]]:
        assert pac_answer(url.removeprefix("http://192.168.1.20:9300"), scripts, "inspect").status == 200
    assert pac_urls(None, ["inspect"]) == {"pac": {}, "pac_default": None, "wpad": None}
