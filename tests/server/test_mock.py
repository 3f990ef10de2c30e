"""The mock ScreenMeet server over real TLS: routes, host checks, journal, admin endpoint."""

import socket
import ssl
import urllib.parse

import pytest

from harness.clients.transport import connect_tunnel, trust_context
from harness.clients.wire import WebSocket, http_request
from harness.errors import NetworkError


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
