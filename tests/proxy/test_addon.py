"""InspectionAddon hooks called directly with mitmproxy's own test helpers (no sockets)."""


import pytest
from mitmproxy import exceptions
from mitmproxy.proxy import server_hooks
from mitmproxy.test import taddons, tflow

from harness.model.policy import Policy
from harness.proxy.addon import InspectionAddon
from tests.proxy.addonhelpers import client_on, hello_data, make_config


@pytest.fixture
def addon():
    a = InspectionAddon(make_config())
    a._map_listeners()
    return a


def test_listener_port_selects_policy_and_lane(addon):
    with taddons.context(addon):
        c = client_on(9012)
        addon.client_connected(c)
        record = addon.journal.get_open(c.id)
        assert (record["policy"], record["lane"]) == ("inspect", 1)
        addon.client_disconnected(c)
        assert addon.journal.get_open(c.id) is None and addon.journal.read()[0]["open"] is False


@pytest.mark.parametrize("port,sni,ignored,action", [
    (9011, "beam.screenmeet.com", False, "intercepted"),
    (9021, "beam.screenmeet.com", True, "passed-through"),
    (9021, "screenmeet.com", False, "intercepted"),  # the wildcard does not cover the apex
    (9001, "beam.screenmeet.com", True, "passed-through"),
])
def test_tls_clienthello_applies_the_policy(addon, port, sni, ignored, action):
    with taddons.context(addon):
        c = client_on(port)
        addon.client_connected(c)
        data = hello_data(c, sni)
        addon.tls_clienthello(data)
        assert data.ignore_connection is ignored
        record = addon.journal.get_open(c.id)
        assert record["action"] == action and record["sni"] == sni


def test_connect_to_a_foreign_host_is_refused(addon):
    with taddons.context(addon):
        f = tflow.tflow()
        f.client_conn.sockname = ("127.0.0.1", 9011)
        addon.client_connected(f.client_conn)
        f.request.method, f.request.host, f.request.port = "CONNECT", "example.org", 443
        addon.http_connect(f)
        assert f.response is not None and f.response.status_code == 403
        assert addon.journal.get_open(f.client_conn.id)["action"] == "blocked"
        g = tflow.tflow()
        g.request.method, g.request.host = "CONNECT", "api.screenmeet.com"
        addon.http_connect(g)
        assert g.response is None  # negative: lab hosts are served


def test_server_connect_points_lab_hosts_at_the_lane_server(addon):
    with taddons.context(addon):
        client = client_on(9022)
        server = tflow.tserver_conn()
        server.address = ("beam.screenmeet.com", 443)
        addon.server_connect(server_hooks.ServerConnectionHookData(server, client))
        assert server.address == ("127.0.0.1", 7002) and server.error is None
        other = tflow.tserver_conn()
        other.address = ("example.org", 443)
        addon.server_connect(server_hooks.ServerConnectionHookData(other, client))
        assert other.error and other.address == ("example.org", 443)


def _decrypted(addon, show_secrets: bool):
    with taddons.context(addon) as tctx:
        tctx.configure(addon, lab_show_secrets=show_secrets)
        f = tflow.tflow(resp=True)
        f.client_conn.sockname = ("127.0.0.1", 9011)
        addon.client_connected(f.client_conn)
        for name, value in CREDENTIAL_HEADERS.items():
            f.request.headers[name] = value
        addon.request(f)
        addon.response(f)
        return addon.journal.get_open(f.client_conn.id)["requests"][0]


def test_decrypted_requests_are_journaled_with_credentials_redacted(addon):
    entry = _decrypted(addon, show_secrets=False)
    assert entry["credentials"] == ["authorization", "x-api-key", "x-auth-token", "cookie", "x-forwarded-authz"]
    assert entry["headers"]["authorization"] == "Bearer [redacted]"
    assert entry["headers"]["x-forwarded-authz"] == "Basic [redacted]"  # a secret name: auth
    assert entry["headers"]["x-api-key"] == entry["headers"]["cookie"] == "[redacted]"
    for value in ("top-secret-token", "key-5f1e", "tok-9a2c", "cookie-77b1", "YWxpY2U6aHVudGVyMg=="):
        assert value not in str(entry)
    assert entry["headers"]["content-length"]  # the rest stays readable
    assert entry["status"] == 200


def test_show_secrets_reveals_them():
    a = InspectionAddon(make_config())
    a._map_listeners()
    entry = _decrypted(a, show_secrets=True)
    assert {k: entry["headers"][k.lower()] for k in CREDENTIAL_HEADERS} == CREDENTIAL_HEADERS


def test_bad_config_path_is_an_options_error(tmp_path):
    a = InspectionAddon()
    with taddons.context(a) as tctx:
        with pytest.raises(exceptions.OptionsError, match="does not exist"):
            tctx.configure(a, lab_config=str(tmp_path / "missing.json"))


# -- hostile sites and untrusted upstreams (issue 5) --------------------------------------

def _site_addon(**policy):
    config = make_config(sites={"expired": [7101, 7102]})
    config.policies["odd"] = Policy("odd", **policy)
    config.ports["odd"] = [9031, 9032]
    a = InspectionAddon(config)
    a._map_listeners()
    return a


def test_server_connect_points_a_hostile_policy_at_its_site():
    addon = _site_addon(mode="tunnel", upstream="expired")
    with taddons.context(addon):
        server = tflow.tserver_conn()
        server.address = ("api.screenmeet.com", 443)
        addon.server_connect(server_hooks.ServerConnectionHookData(server, client_on(9032)))
        assert server.address == ("127.0.0.1", 7102) and server.error is None


def test_a_site_the_lab_does_not_serve_is_a_server_error_not_a_crash():
    addon = _site_addon(mode="tunnel", upstream="sha1")
    with taddons.context(addon):
        server = tflow.tserver_conn()
        server.address = ("api.screenmeet.com", 443)
        addon.server_connect(server_hooks.ServerConnectionHookData(server, client_on(9031)))
        assert "no hostile site 'sha1'" in server.error


def test_pass_through_policies_check_the_upstream_before_answering_the_hello():
    addon = _site_addon(upstream="expired", untrusted_upstream="pass-through")
    with taddons.context(addon):
        c = client_on(9031)
        addon.client_connected(c)
        data = hello_data(c, "api.screenmeet.com")
        data.context.server.address = ("127.0.0.1", 7101)
        pending = addon.tls_clienthello(data)
        assert pending is not None  # mitmproxy awaits it before it answers the ClientHello
        pending.close()
        # Negative: a plain inspect policy decides at once.
        c2 = client_on(9011)
        addon.client_connected(c2)
        assert addon.tls_clienthello(hello_data(c2, "api.screenmeet.com")) is None


def test_block_page_marks_the_record_and_answers_requests():
    from harness.model.vendors import get_vendor

    addon = _site_addon(upstream="expired")
    addon.config.vendor = get_vendor("cisco-umbrella").to_dict()
    with taddons.context(addon):
        f = tflow.tflow()
        f.client_conn.sockname = ("127.0.0.1", 9031)
        addon.client_connected(f.client_conn)
        addon.journal.get_open(f.client_conn.id)["blocked"] = True
        addon.request(f)
        assert f.response.status_code == 403 and b"515 Upstream Certificate Untrusted" in f.response.content
        # Negative: without a vendor page, mitmproxy's own 502 answers (no response set here).
        addon.config.vendor = None
        g = tflow.tflow()
        g.client_conn.sockname = ("127.0.0.1", 9031)
        addon.client_connected(g.client_conn)
        addon.journal.get_open(g.client_conn.id)["blocked"] = True
        addon.request(g)
        assert g.response is None


CREDENTIAL_HEADERS = {"Authorization": "Bearer top-secret-token", "X-Api-Key": "key-5f1e", "X-Auth-Token": "tok-9a2c",
                      "Cookie": "sid=cookie-77b1", "X-Forwarded-Authz": "Basic YWxpY2U6aHVudGVyMg=="}


def test_server_connected_journals_the_upstream_local_address(addon):
    """The server journals each request's peer: this address ties it to the proxy connection."""
    with taddons.context(addon):
        client = client_on(9011)
        addon.client_connected(client)
        for port in (51000, 51001):  # mitmproxy may connect upstream more than once (a 502 retries)
            server = tflow.tserver_conn()
            server.sockname = ("127.0.0.1", port)
            addon.server_connected(server_hooks.ServerConnectionHookData(server, client))
        assert addon.journal.get_open(client.id)["upstream_local"] == ["127.0.0.1:51000", "127.0.0.1:51001"]
