"""Proxy login (HTTP Basic, RFC 7617 / RFC 9110 section 11.7): the pure rules, no sockets.

::

    ProxyLogin.parse("user:password")     a login as the lab stores it; ValueError says what is wrong
    login_from_userinfo(url_userinfo)     the login in a proxy URL (http://USER:PASSWORD@HOST:PORT), or None
    new_login()                           a fresh login for a lab (user "lab", a random password)
    with_login(url, login) / without_login(url)   a proxy URL with or without its login
    login_answer(status, sent)            what a CONNECT answer means for the login (the 407 rule)

Where the login goes is the transport's business (only ever to the proxy, in
``Proxy-Authorization`` on the CONNECT request, never inside the tunnel);
redaction is :mod:`harness.model.secrets`' (a URL's ``user:password@``).
"""

from __future__ import annotations

import base64
import secrets
import urllib.parse
from dataclasses import dataclass

PROXY_AUTH_REQUIRED = 407
LAB_USER = "lab"

# The 407 rule's answers (login_answer).
LOGIN_OK, LOGIN_MISSING, LOGIN_REJECTED = "ok", "missing", "rejected"


@dataclass(frozen=True)
class ProxyLogin:
    """A Basic proxy login.  Its repr never shows the password (it ends up in logs and test reports)."""

    user: str
    password: str

    def __post_init__(self) -> None:
        if not self.user:
            raise ValueError("its user name is empty")
        if ":" in self.user:
            raise ValueError("its user name holds ':', which Basic authentication cannot carry")
        for what, text in (("user name", self.user), ("password", self.password)):
            if not text.isprintable():
                raise ValueError(f"its {what} holds a control character")

    @classmethod
    def parse(cls, text: str) -> "ProxyLogin":
        """``USER:PASSWORD`` (the password may hold ':'); ValueError says what is wrong."""
        user, sep, password = text.partition(":")
        if not sep:
            raise ValueError("it has no password (write USER:PASSWORD)")
        return cls(user, password)

    def __repr__(self) -> str:
        return f"ProxyLogin(user={self.user!r}, password='[redacted]')"

    def __str__(self) -> str:
        """``USER:PASSWORD``, as :meth:`parse` reads it and mitmproxy's ``proxyauth`` option takes it."""
        return f"{self.user}:{self.password}"

    def header(self) -> str:
        """The ``Proxy-Authorization`` value: ``Basic base64(user:password)`` (UTF-8, RFC 7617)."""
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")

    def userinfo(self) -> str:
        """``USER:PASSWORD`` percent-encoded for a URL's user information."""
        return f"{urllib.parse.quote(self.user, safe='')}:{urllib.parse.quote(self.password, safe='')}"


def login_from_userinfo(username: str | None, password: str | None) -> ProxyLogin | None:
    """The login a URL's user information carries (``urlsplit(url).username/.password``, still
    percent-encoded), or None without one; ValueError for one that cannot be sent (no password,
    an empty user, ':' in the user, a control character)."""
    if username is None and password is None:
        return None
    if password is None:
        raise ValueError("it has a user name but no password")
    return ProxyLogin(urllib.parse.unquote(username or ""), urllib.parse.unquote(password))


def new_login() -> ProxyLogin:
    """A fresh login for one lab: user ``lab`` and a random password (URL-safe, so it needs no quoting)."""
    return ProxyLogin(LAB_USER, secrets.token_urlsafe(12))


def with_login(url: str, login: ProxyLogin | None) -> str:
    """``http://HOST:PORT`` with ``login`` as its user information (``url`` itself without one)."""
    if login is None:
        return url
    parts = urllib.parse.urlsplit(without_login(url))
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{login.userinfo()}@{parts.netloc}"))


def without_login(url: str) -> str:
    """``url`` without user information: what may be shown or logged."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])) if "@" in parts.netloc else url


def login_answer(status: int, sent: bool) -> str:
    """What the proxy's answer to CONNECT says about the login (the 407 rule):

    :data:`LOGIN_MISSING` – 407 and no login was sent: the proxy wants one the client lacks;
    :data:`LOGIN_REJECTED` – 407 although a login was sent: the proxy does not accept it;
    :data:`LOGIN_OK` – any other answer (the login, if any, was accepted or not needed).
    """
    if status != PROXY_AUTH_REQUIRED:
        return LOGIN_OK
    return LOGIN_REJECTED if sent else LOGIN_MISSING


def login_problem(answer: str, proxy: str, user: str | None = None) -> str | None:
    """The sentence a client says for :func:`login_answer`'s ``answer`` (None for :data:`LOGIN_OK`);
    ``proxy`` is shown without a login, and never the password."""
    if answer == LOGIN_MISSING:
        return (f"the proxy at {without_login(proxy)} requires a login (407 Proxy Authentication Required); "
                "give it in the proxy URL as http://USER:PASSWORD@HOST:PORT (--proxy or HTTPS_PROXY)")
    if answer == LOGIN_REJECTED:
        return (f"the proxy at {without_login(proxy)} requires a login and refused the one given"
                f"{f' for user {user!r}' if user else ''} (407 Proxy Authentication Required); check the user and password")
    return None
