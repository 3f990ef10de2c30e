"""The mock ScreenMeet server over real TLS: routes, host checks, journal, admin endpoint."""

import asyncio
import socket
import ssl
import urllib.parse

import pytest
from aiohttp import test_utils

from harness.clients.transport import connect_tunnel, trust_context
from harness.clients.wire import WebSocket, http_request
from harness.errors import NetworkError
from harness.server.mock import MockScreenMeet


@pytest.fixture
def direct(tls_lab):
    """Open a TLS connection straight to the server's lane 0 with the public trust."""
    host, port = tls_lab.server_connect[0].rsplit(":", 1)
    ctx = trust_context(tls_lab.pki["trust_public"])

    def open_(sni):
        return ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=5), server_hostname=sni)

    return open_


def test_join_and_session_websocket(direct, lab_journal):
    with direct("api.screenmeet.com") as s:
        resp = http_request(s, "POST", "api.screenmeet.com", "/api/v1/sessions/join", json_body={"code": "4711"})
    assert resp.status == 200
    ws_path = resp.json()["ws_path"]
    with direct("api.screenmeet.com") as s:
        ws = WebSocket(s, "api.screenmeet.com", ws_path)
        ws.send_text("hello")
        assert ws.receive_text() == "ack 1"
        ws.close()
    records = lab_journal.server_records(lane=0)
    assert [(r["kind"], r["path"]) for r in records][:3] == [
        ("http", "/api/v1/sessions/join"), ("http", ws_path), ("ws-message", ws_path)]
    assert records[0]["code"] == "4711"  # the test lab shows secrets (tests/conftest.py)


@pytest.mark.parametrize("sni,method,path,body,headers,status", [
    ("beam.screenmeet.com", "POST", "/api/v1/sessions/join", {"code": "1"}, {}, 421),  # wrong host
    ("api.screenmeet.com", "POST", "/api/v1/sessions/join", {"nocode": 1}, {}, 400),
    ("beam.screenmeet.com", "POST", "/beam/v1/agents/register", None, {}, 401),
    ("beam.screenmeet.com", "POST", "/beam/v1/agents/register", None, {"Authorization": "Bearer t"}, 200),
    ("screenmeet.com", "GET", "/nowhere", None, {}, 404),
])
def test_routes_and_host_checks(direct, lab_journal, sni, method, path, body, headers, status):
    with direct(sni) as s:
        resp = http_request(s, method, sni, path, headers=headers, json_body=body)
    assert resp.status == status
    assert lab_journal.server_records(lane=0)[-1]["status"] == status


def test_admin_endpoints_bind_loopback(tls_lab):
    for url in (tls_lab.proxy_admin, tls_lab.server_admin):
        assert urllib.parse.urlsplit(url).hostname == "127.0.0.1"


def test_admin_endpoint_is_not_reachable_through_the_proxy(tls_lab):
    proxy = urllib.parse.urlsplit(tls_lab.proxy_url("tunnel"))
    admin = urllib.parse.urlsplit(tls_lab.server_admin)
    sock = socket.create_connection((proxy.hostname, proxy.port), timeout=5)
    try:

        with pytest.raises(NetworkError, match="403"):
            connect_tunnel(sock, admin.hostname, admin.port)
    finally:
        sock.close()


def test_journal_lane_filter_and_cursor(direct, lab_journal, tls_lab):
    from harness.net.journal import JournalReader

    reader = JournalReader(tls_lab.server_admin)
    before = reader.last_seq()
    with direct("screenmeet.com") as s:
        http_request(s, "GET", "screenmeet.com", "/")
    assert [r["path"] for r in reader.read(lane=0, after=before)] == ["/"]
    assert reader.read(lane=1, after=before) == []


def test_server_refuses_a_client_that_does_not_trust_it(tls_lab):
    host, port = tls_lab.server_connect[0].rsplit(":", 1)
    ctx = ssl.create_default_context()  # the system store does not hold the lab's public root
    with pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=5), server_hostname="api.screenmeet.com")


def _journal_of_credentials(show_secrets: bool) -> list[dict]:
    """The server's own journal after an agent registration and a session join (aiohttp on 127.0.0.1)."""
    async def run():
        server = MockScreenMeet(show_secrets=show_secrets)
        async with test_utils.TestClient(test_utils.TestServer(server.app())) as client:
            await client.post("/beam/v1/agents/register",
                              headers={"Host": "beam.screenmeet.com", "Authorization": "Bearer tok-4e1d"})
            await client.post("/api/v1/sessions/join", headers={"Host": "api.screenmeet.com"}, json={"code": "c-73a0"})
        return server.journal.read()
    return asyncio.run(run())


def test_journal_masks_credentials_unless_show_secrets():
    masked = _journal_of_credentials(False)
    assert [r["status"] for r in masked] == [200, 200]
    assert masked[0]["authorization"] == "Bearer [redacted]" and masked[1]["code"] == "[redacted]"
    assert "tok-4e1d" not in str(masked) and "c-73a0" not in str(masked)
    shown = _journal_of_credentials(True)
    assert shown[0]["authorization"] == "Bearer tok-4e1d" and shown[1]["code"] == "c-73a0"


def test_site_flags_describe_the_sites_as_the_proxy_lays_them_out():
    """compose: --site-cases/--sites-dir/--site-base-port, one port per lane as the proxy's flags (issue 16)."""
    import argparse

    from harness.net.addresses import lane_layout
    from harness.server import mock

    args = argparse.Namespace(site_cases="expired,sha1", sites_dir="/lab/pki/sites", site_base_port=9443,
                              ports=[8443, 8444])
    sites = mock._flag_sites(args)
    assert sites["sha1"] == {"cert": "/lab/pki/sites/sha1.pem", "key": "/lab/pki/sites/sha1.key", "ports": [9445, 9446]}
    assert {c: s["ports"] for c, s in sites.items()} == lane_layout(9443, ["expired", "sha1"], 2)
    assert mock._flag_sites(argparse.Namespace(**{**vars(args), "site_cases": ""})) == {}
    # Negative: an unknown case is refused by the argument's type, before anything listens.
    with pytest.raises(argparse.ArgumentTypeError, match="unknown hostile certificate case 'expird'"):
        mock._cases_arg("expird")


def test_each_request_carries_its_client_hello_and_the_servers_suspicion(direct, lab_journal, tls_lab):
    """Through real TLS to the running server: the reference stack is recognised as itself; another
    TLS stack naming the reference client is suspected; a product's header names the product."""
    with direct("api.screenmeet.com") as s:
        http_request(s, "GET", "api.screenmeet.com", "/")
    own = lab_journal.server_records(lane=0)[-1]
    assert own["tls"]["sni"] == "api.screenmeet.com" and own["tls"]["alpn"] == ["http/1.1"]
    assert own["tls"]["versions"][0] == "TLSv1.3" and own["tls"]["ja4"].startswith("t13d")
    assert own["tls"]["grade"]["letter"] == "A" and own["tls"]["ja3"] and own["tls"]["groups"]
    assert own["interception"] == {"suspected": False, "reasons": [], "product": None}
    # Another ClientHello (TLS 1.2 only, CBC first) under the reference client's User-Agent: what a proxy does.
    host, port = tls_lab.server_connect[0].rsplit(":", 1)
    other = trust_context(tls_lab.pki["trust_public"], tls_max="1.2")
    other.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256")
    with other.wrap_socket(socket.create_connection((host, int(port)), timeout=5), server_hostname="api.screenmeet.com") as s:
        http_request(s, "GET", "api.screenmeet.com", "/")
    mimic = lab_journal.server_records(lane=0)[-1]
    assert mimic["tls"]["versions"] == ["TLSv1.2"] and mimic["tls"]["ciphers"][0] == "0xc023"
    assert mimic["tls"]["grade"]["letter"] == "B"
    assert mimic["interception"]["suspected"] and mimic["interception"]["product"] is None
    assert "tls-lab-reference-client" in mimic["interception"]["reasons"][0]
    with direct("api.screenmeet.com") as s:
        http_request(s, "GET", "api.screenmeet.com", "/", headers={"X-BlueCoat-Via": "ce2cfae06b3f12b4"})
    marked = lab_journal.server_records(lane=0)[-1]["interception"]
    assert marked["suspected"] and marked["product"] == "Symantec (Broadcom) Edge SWG / Blue Coat ProxySG"


def test_a_bad_known_fingerprints_file_is_one_sentence(tmp_path, capsys):
    from harness.server import mock

    bad = tmp_path / "known.json"
    bad.write_text('{"curl": "not a list"}')
    for path in (bad, tmp_path / "missing.json"):
        assert mock.main(["--cert", "c.pem", "--key", "k.pem", "--known", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"mock server: cannot read the known fingerprints {path}") and "\n" not in err
        assert err.endswith("pass the file harness.lab.fingerprints writes.")
