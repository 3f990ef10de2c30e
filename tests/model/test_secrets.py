"""Tests for harness.model.secrets: which names are secret and how every kind of place masks them."""

from __future__ import annotations

import base64
import json

import pytest

from harness.model.secrets import (
    REDACTED,
    credentials_in,
    is_secret_name,
    mask_text,
    mask_value,
    redact_argv,
    redact_body,
    redact_env,
    redact_headers,
    redact_json,
    redact_records,
)

BASIC = base64.b64encode(b"alice:hunter2").decode()


@pytest.mark.parametrize("name", ["Authorization", "proxy-authorization", "Cookie", "Set-Cookie", "X-Api-Key",
                                  "X-Auth-Token", "x-csrf-token", "Client-Secret", "PHPSESSID-session", "password",
                                  "db_passwd", "API_KEY", "--token", "code", "X-Session-Id"])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["Accept", "Content-Type", "Host", "User-Agent", "Sec-WebSocket-Key",
                                  "sec-websocket-version", "HTTPS_PROXY", "path", "status", "exit_code"])
def test_not_secret_names(name):
    assert not is_secret_name(name)


def test_mask_value_keeps_only_the_scheme():
    assert mask_value("Bearer abc.def") == f"Bearer {REDACTED}"
    assert mask_value(f"basic {BASIC}") == f"basic {REDACTED}"
    assert mask_value("s3ssion=1") == REDACTED


@pytest.mark.parametrize("text,secret", [
    ("> Authorization: Basic " + BASIC, BASIC),
    ("> X-Api-Key: k-123456\r\n> Accept: */*", "k-123456"),
    ("< Set-Cookie: sid=abc123; Path=/", "abc123"),
    ("> Cookie: a=b1234", "b1234"),
    ("x-auth-token:tok-999", "tok-999"),
    ("proxy said: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
    ("auth header was basic " + BASIC + ", rejected", BASIC),
    ('{"event": "join", "code": "123-456", "host": "api"}', "123-456"),
    ("GET /cb?state=1&access_token=tok42&x=1", "tok42"),
    ("API_KEY=abcd1234 ./client", "abcd1234"),
    ("proxy https://bob:pa55@proxy.corp:3128 refused", "pa55"),
    ("the run's secret lab-secret-77 leaked", "lab-secret-77"),
    # curl -v over HTTP/2 (older and newer curl): headers in brackets, not on lines of their own.
    ("* h2h3 [x-api-key: apikey-7d2e90]\n* h2h3 [accept: */*]", "apikey-7d2e90"),
    ("* [HTTP/2] [1] [cookie: sid=cookie-c3d4e5]", "cookie-c3d4e5"),
])
def test_mask_text_hides_credentials(text, secret):
    masked = mask_text(text, {"lab-secret-77"})
    assert secret not in masked and REDACTED in masked, masked


def test_mask_text_leaves_ordinary_text_alone():
    for text in ("Basic connectivity is fine: HTTP 200", "Content-Type: application/json",
                 "WARNING: The connection to the support server may not be secure",
                 "GET /api/v1/sessions/abc/ws", "exit=0 status=ok", "credentials reached the proxy: authorization",
                 "* h2h3 [:authority: api.screenmeet.com]", "* [HTTP/2] [1] [user-agent: curl/7.88.1]",
                 "connected to [2001:db8::1]:443"):
        assert mask_text(text) == text


def test_redact_headers():
    headers = {"authorization": "Bearer t0k", "cookie": "a=1", "x-api-key": "k1", "accept": "*/*",
               "x-forwarded": f"Basic {BASIC}", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="}
    assert redact_headers(headers) == {
        "authorization": f"Bearer {REDACTED}", "cookie": REDACTED, "x-api-key": REDACTED, "accept": "*/*",
        "x-forwarded": f"Basic {REDACTED}", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="}


def test_redact_json_and_body():
    data = {"user": "alice", "password": "hunter2", "nested": {"api_key": "k", "n": 1},
            "list": [{"token": "t"}], "code": None, "note": "Bearer zzz"}
    assert redact_json(data) == {"user": "alice", "password": REDACTED, "nested": {"api_key": REDACTED, "n": 1},
                                 "list": [{"token": REDACTED}], "code": None, "note": f"Bearer {REDACTED}"}
    assert json.loads(redact_body(json.dumps(data)))["password"] == REDACTED
    assert redact_body("user=alice&password=hunter2") == f"user=alice&password={REDACTED}"
    assert redact_body("screen-frame 3") == "screen-frame 3"


def test_redact_argv_curl():
    argv = ["curl", "-sS", "-u", "alice:hunter2", "-H", "X-Api-Key: k-1", "-H", "Authorization: Bearer t-2",
            "--header", "Accept: */*", "-b", "sid=s-3", "--oauth2-bearer", "t-4", "-d", '{"password": "p-5"}',
            "--proxy-user", "bob:p-6", "--pinnedpubkey", "sha256//AAAA", "--key", "client.key",
            "https://carol:p-7@api.screenmeet.com/x?token=t-8", "--api-token=t-9", "--client-secret", "s-10"]
    out = redact_argv(argv)
    text = " ".join(out)
    for secret in ("hunter2", "k-1", "t-2", "s-3", "t-4", "p-5", "p-6", "p-7", "t-8", "t-9", "s-10"):
        assert secret not in text, secret
    assert out[:4] == ["curl", "-sS", "-u", REDACTED]
    assert "Authorization: Bearer [redacted]" in out and "X-Api-Key: [redacted]" in out and "Accept: */*" in out
    # What is not a credential stays readable: pins, file names, the URL's host and path.
    assert "sha256//AAAA" in out and "client.key" in out and "https://[redacted]@api.screenmeet.com/x?token=[redacted]" in out


def test_redact_env():
    env = {"API_TOKEN": "t-1", "HTTPS_PROXY": "http://u:p-2@proxy:3128", "LANG": "C", "SESSION": ""}
    assert redact_env(env, {"lab-secret-1"}) == {"API_TOKEN": REDACTED, "HTTPS_PROXY": f"http://{REDACTED}@proxy:3128",
                                      "LANG": "C", "SESSION": ""}


def test_redact_records():
    records = [
        {"kind": "http", "authorization": "Bearer t-1", "code": "c-2", "session": "sid", "path": "/x",
         "forged_key": "rsa-2048", "empty": {"code": None}},
        {"kind": "connection", "requests": [{"headers": {"cookie": "c=3"}, "body": '{"token": "t-4"}',
                                             "credentials": ["cookie", "token"]}],
         "websocket": [{"text": "password=p-5"}], "note": "run secret s-6"},
    ]
    out = redact_records(records, {"s-6"})
    assert "t-1" not in json.dumps(out) and all(s not in json.dumps(out) for s in ("c-2", "c=3", "t-4", "p-5", "s-6"))
    assert out[0] == {"kind": "http", "authorization": f"Bearer {REDACTED}", "code": REDACTED, "session": "sid",
                      "path": "/x", "forged_key": "rsa-2048", "empty": {"code": None}}
    assert out[1]["requests"][0]["credentials"] == ["cookie", "token"]  # kinds are not values


def test_credentials_in_names_kinds_never_values():
    assert credentials_in({"authorization": "Bearer x"}) == ["authorization"]
    assert credentials_in({"proxy-authorization": "Basic " + BASIC, "cookie": "a=1", "x-api-key": "k",
                           "x-auth-token": "t", "accept": "*/*"}) == ["authorization", "cookie", "x-api-key",
                                                                     "x-auth-token"]
    assert credentials_in({"x-forwarded": "Bearer y"}) == ["authorization"]
    assert credentials_in({"sec-websocket-key": "n"}, b"") == []
    assert credentials_in({}, b'{"code": "123"}') == ["session-code"]
    assert credentials_in({}, b'{"token": "t", "password": "p", "other": 1}') == ["token", "password"]
    assert credentials_in({}, b'{"other": 1}') == [] and credentials_in({}, b"not json") == []


def test_a_proxy_login_is_masked_in_commands_environments_and_records():
    """Issue 14: the lab's clients get the proxy login in the proxy URL; the one rule masks it."""
    argv = redact_argv(["harness", "beam", "--proxy", "http://lab:Pw-123@127.0.0.1:3128", "--once"])
    assert argv[3] == "http://[redacted]@127.0.0.1:3128"
    assert redact_env({"HTTPS_PROXY": "http://lab:Pw-123@127.0.0.1:3128"})["HTTPS_PROXY"] == "http://[redacted]@127.0.0.1:3128"
    record = redact_records({"proxy_authorization": "Basic bGFiOlB3LTEyMw==", "host": "api.screenmeet.com"})
    assert record["proxy_authorization"] == "Basic [redacted]"
