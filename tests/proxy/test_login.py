"""Tests for harness.proxy.login: mitmproxy's proxyauth per listener.  The pure decisions, the
hooks called directly (mitmproxy's test helpers), and the real lab proxy end to end with the
reference clients and curl, judged from both journals."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import urllib.parse
from dataclasses import replace

import pytest
from mitmproxy.test import taddons, tflow

from harness.model.proxylogin import ProxyLogin, without_login
from harness.proxy.addon import InspectionAddon
from harness.proxy.config import Listener
from harness.proxy.login import PolicyLogin, login_outcome, requires_login
from tests.proxy.addonhelpers import make_config

LOGIN = "lab:pw-123"


def test_requires_login_only_on_explicit_listeners_of_auth_policies():
    config = make_config()
    plain = config.policies["inspect"]
    auth = replace(plain, auth="basic")
    assert requires_login(Listener(auth, 0, 1), transparent=False)
    assert not requires_login(Listener(auth, 0, 1), transparent=True)  # nobody there was told of a proxy
    assert not requires_login(Listener(plain, 0, 1), transparent=False)
    assert not requires_login(None, transparent=False)


def test_login_outcome():
    assert login_outcome(407, sent=False) == "missing"
    assert login_outcome(407, sent=True) == "rejected"
    assert login_outcome(None, sent=True) == "accepted"


@pytest.fixture
def addons():
    config = make_config()
    config.policies["inspect"] = replace(config.policies["inspect"], auth="basic")
    inspection = InspectionAddon(config)
    inspection._map_listeners()
    return PolicyLogin(LOGIN, listener_of=inspection._listener, record_of=inspection._record), inspection


def _connect(addons, port: int, header: str | None):
    login, inspection = addons
    f = tflow.tflow()
    f.client_conn.sockname = ("127.0.0.1", port)
    inspection.client_connected(f.client_conn)
    f.request.method, f.request.host, f.request.port = "CONNECT", "api.screenmeet.com", 443
    if header is not None:
        f.request.headers["Proxy-Authorization"] = header
    login.http_connect(f)
    inspection.http_connect(f)
    return f, inspection.journal.get_open(f.client_conn.id)


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_connect_without_login_gets_407(addons):
    with taddons.context(*addons):
        f, record = _connect(addons, 9011, None)
        assert f.response.status_code == 407
        assert f.response.headers["Proxy-Authenticate"].startswith("Basic ")
        assert record["proxy_login"] == "missing"


def test_connect_with_a_wrong_login_gets_407(addons):
    with taddons.context(*addons):
        f, record = _connect(addons, 9011, _basic("lab:wrong"))
        assert f.response.status_code == 407 and record["proxy_login"] == "rejected"


def test_connect_with_the_login_passes_and_the_header_stays_at_the_proxy(addons):
    with taddons.context(*addons):
        f, record = _connect(addons, 9011, _basic(LOGIN))
        assert f.response is None and record["proxy_login"] == "accepted"
        assert "Proxy-Authorization" not in f.request.headers  # mitmproxy removed it: nothing goes upstream
        # Requests inside the authenticated tunnel need no login of their own.
        g = tflow.tflow()
        g.client_conn = f.client_conn
        addons[0].requestheaders(g)
        assert g.response is None


def test_policies_without_auth_are_untouched(addons):
    with taddons.context(*addons):
        f, record = _connect(addons, 9021, None)  # exception-wildcard: no auth
        assert f.response is None and "proxy_login" not in record


def test_plain_http_through_the_proxy_needs_the_login(addons):
    login, inspection = addons
    with taddons.context(*addons):
        f = tflow.tflow()
        f.client_conn.sockname = ("127.0.0.1", 9011)
        inspection.client_connected(f.client_conn)
        login.requestheaders(f)
        assert f.response.status_code == 407


# -- end to end: the real lab proxy --------------------------------------------------------------

def _proxy(tls_lab, policy: str, login: bool) -> str:
    return tls_lab.proxy_url(policy, login=login)


def _own(records, proxy_url: str) -> list[dict]:
    port = urllib.parse.urlsplit(proxy_url).port
    return [r for r in records if r.get("listener") == port]


def _beam(tls_lab, proxy_url: str, env_proxy: bool = False) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "harness", "beam", "--once", "--json", "--trust", tls_lab.pki["trust_public_org"],
            "--pins", tls_lab.pins_file]
    env = {"PATH": "/usr/bin:/bin", "HTTPS_PROXY": proxy_url} if env_proxy else None
    return subprocess.run(args + ([] if env_proxy else ["--proxy", proxy_url]), capture_output=True, text=True,
                          timeout=120, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("policy", ["inspect-login", "exception-wildcard-login"])
def test_without_the_login_the_clients_say_so_and_nothing_passes(tls_lab, lab_journal, policy):
    url = _proxy(tls_lab, policy, login=False)
    proc = _beam(tls_lab, url)
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert f"the proxy at {url} requires a login" in proc.stdout
    login = tls_lab.proxy_logins[policy]
    assert login.split(":", 1)[1] not in proc.stdout + proc.stderr
    records = _own(lab_journal.proxy_records(), url)
    assert records and all(r["proxy_login"] == "missing" for r in records)
    # 407 before the tunnel: no TLS, nothing forged, nothing passed through, nothing at the server.
    assert all(r["action"] is None and r["client_tls"] == "none" and r["forged_issuer"] is None for r in records)
    assert not lab_journal.server_records()


@pytest.mark.parametrize("policy,expect", [("inspect-login", 5), ("exception-wildcard-login", 0)])
@pytest.mark.parametrize("via_env", [False, True])
def test_with_the_login_from_url_or_env_the_login_stays_at_the_proxy(tls_lab, lab_journal, policy, expect, via_env):
    url = _proxy(tls_lab, policy, login=True)
    assert "@" in url and ProxyLogin.parse(tls_lab.proxy_logins[policy]).password in urllib.parse.unquote(url)
    proc = _beam(tls_lab, url, env_proxy=via_env)
    assert proc.returncode == expect, proc.stdout + proc.stderr
    password = tls_lab.proxy_logins[policy].split(":", 1)[1]
    assert password not in proc.stdout + proc.stderr  # the client never prints it
    records = _own(lab_journal.proxy_records(), url)
    assert records and all(r["proxy_login"] == "accepted" for r in records)
    assert {r["action"] for r in records} == {"intercepted" if expect == 5 else "passed-through"}
    server = lab_journal.server_records()
    if expect == 0:
        assert server  # the agent registered through the exception
    assert not [r for r in server if "proxy_authorization" in r]


def test_the_server_journal_would_show_a_leaked_proxy_login(tls_lab, lab_journal):
    """The positive control of the assertion above: a request that does carry Proxy-Authorization
    straight to the mock server is journaled with it."""
    from harness.clients.transport import open_tls, trust_context
    from harness.clients.wire import http_request

    host, port = tls_lab.server_connect[0].rsplit(":", 1)
    conn = open_tls("api.screenmeet.com", 443, trust_context(tls_lab.pki["trust_public"]),
                    connect_to=(host, int(port)), timeout=60)
    try:
        http_request(conn.sock, "GET", "api.screenmeet.com", "/", headers={"Proxy-Authorization": _basic("x:y")})
    finally:
        conn.close()
    assert [r for r in lab_journal.server_records() if "proxy_authorization" in r]


def test_attended_with_a_wrong_login_is_told_it_was_refused(tls_lab, lab_journal):
    url = _proxy(tls_lab, "inspect-login", login=False).replace("http://", "http://lab:not-it@")
    proc = subprocess.run([sys.executable, "-m", "harness", "attended", "--proxy", url, "--on-warning", "abort",
                           "--trust", tls_lab.pki["trust_public_org"], "--pins", tls_lab.pins_file],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert "requires a login and refused the one given for user 'lab'" in proc.stderr
    assert "not-it" not in proc.stdout + proc.stderr
    records = _own(lab_journal.proxy_records(), url)
    assert records and all(r["proxy_login"] == "rejected" for r in records)
    assert not lab_journal.server_records()


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_curl_meets_407_with_proxy_authenticate(tls_lab):
    url = _proxy(tls_lab, "inspect-login", login=False)
    proc = subprocess.run(["curl", "-sv", "--noproxy", "", "-x", url, "--cacert", tls_lab.pki["trust_public_org"],
                           "https://api.screenmeet.com/"], capture_output=True, text=True, timeout=120)
    assert "407 Proxy Authentication Required" in proc.stderr and 'Proxy-Authenticate: Basic' in proc.stderr
    ok = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "", "-x",
                         _proxy(tls_lab, "inspect-login", login=True), "--cacert", tls_lab.pki["trust_public_org"],
                         "https://api.screenmeet.com/"], capture_output=True, text=True, timeout=120)
    assert ok.stdout == "200", ok.stderr
    assert without_login(_proxy(tls_lab, "inspect-login", login=True)) == url
