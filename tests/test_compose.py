"""The compose lab's network shape: corp clients can only leave through the proxy.

Runs with ``pytest --lab=compose`` (CI does this whenever a Docker engine
answers); with the local lab these tests are skipped with that reason.
"""

import subprocess

import pytest

pytestmark = pytest.mark.compose


@pytest.fixture(scope="module")
def compose_lab(tls_lab, lab_backend):
    if lab_backend != "compose":
        pytest.skip("compose network tests need --lab=compose")
    return tls_lab


def in_container(lab, service, code, timeout=30):
    cmd = [*lab.extra["client_exec"][service], "python", "-c", code]
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
    cmd = [*compose_lab.extra["client_exec"]["beam"], "curl", "-sv", "--proxy", compose_lab.proxy_url("inspect"),
           "--cacert", compose_lab.pki["trust_public_org"], "https://api.screenmeet.com/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"issuer: CN={compose_lab.org_issuer_cn}" in out.stderr
