"""Tests for harness.model.proxylogin: the proxy login's pure rules (parsing from a URL, the
Basic header, URLs with and without the login, the 407 rule and its sentences)."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from harness.model.proxylogin import (
    LOGIN_MISSING,
    LOGIN_OK,
    LOGIN_REJECTED,
    ProxyLogin,
    login_answer,
    login_from_userinfo,
    login_problem,
    new_login,
    with_login,
    without_login,
)


def test_parse_and_header():
    login = ProxyLogin.parse("alice:s3:cret")  # the password may hold ':'
    assert (login.user, login.password) == ("alice", "s3:cret")
    assert login.header() == "Basic " + base64.b64encode(b"alice:s3:cret").decode()
    assert str(login) == "alice:s3:cret"
    assert "s3:cret" not in repr(login) and "alice" in repr(login)


@pytest.mark.parametrize("text,says", [
    ("alice", "no password"), (":pw", "user name is empty"), ("al\nice:pw", "control character"),
    ("alice:p\x00w", "control character"),
])
def test_parse_rejects(text, says):
    with pytest.raises(ValueError, match=says):
        ProxyLogin.parse(text)


def test_login_from_url_userinfo_is_percent_decoded():
    u = urllib.parse.urlsplit("http://al%40ice:p%3Aw%20d@proxy:3128")
    login = login_from_userinfo(u.username, u.password)
    assert (login.user, login.password) == ("al@ice", "p:w d")
    assert login_from_userinfo(None, None) is None
    u = urllib.parse.urlsplit("http://alice@proxy:3128")
    with pytest.raises(ValueError, match="no password"):
        login_from_userinfo(u.username, u.password)
    u = urllib.parse.urlsplit("http://a%3Ab:pw@proxy:3128")
    with pytest.raises(ValueError, match="':'"):
        login_from_userinfo(u.username, u.password)


def test_urls_with_and_without_the_login():
    login = ProxyLogin("al@ice", "p:w/d")
    url = with_login("http://127.0.0.1:3128", login)
    assert url == "http://al%40ice:p%3Aw%2Fd@127.0.0.1:3128"
    u = urllib.parse.urlsplit(url)
    assert login_from_userinfo(u.username, u.password) == login  # round trip
    assert without_login(url) == "http://127.0.0.1:3128"
    assert with_login(url, ProxyLogin("bob", "x")) == "http://bob:x@127.0.0.1:3128"  # replaced, not stacked
    assert with_login("http://127.0.0.1:3128", None) == "http://127.0.0.1:3128"
    assert without_login("http://127.0.0.1:3128") == "http://127.0.0.1:3128"


def test_new_login_is_fresh_and_url_safe():
    a, b = new_login(), new_login()
    assert a.user == "lab" and a.password != b.password and len(a.password) >= 16
    assert urllib.parse.quote(a.password, safe="") == a.password and ":" not in a.password


@pytest.mark.parametrize("status,sent,answer", [
    (407, False, LOGIN_MISSING), (407, True, LOGIN_REJECTED), (200, True, LOGIN_OK), (200, False, LOGIN_OK),
    (403, False, LOGIN_OK), (401, False, LOGIN_OK), (502, True, LOGIN_OK),
])
def test_the_407_rule(status, sent, answer):
    assert login_answer(status, sent) == answer


def test_login_problem_sentences_never_show_the_password():
    missing = login_problem(LOGIN_MISSING, "http://lab:hunter2@127.0.0.1:3128")
    assert missing.startswith("the proxy at http://127.0.0.1:3128 requires a login")
    assert "hunter2" not in missing and "HTTPS_PROXY" in missing
    rejected = login_problem(LOGIN_REJECTED, "http://127.0.0.1:3128", "lab")
    assert "refused the one given for user 'lab'" in rejected and "requires a login" in rejected
    assert login_problem(LOGIN_OK, "http://127.0.0.1:3128") is None
