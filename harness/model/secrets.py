"""Which names and values are secret, and how a secret is masked: the one rule the proxy
journal, the server journal, every report and every printed command apply (DESIGN.md section 4).

Pure functions over strings and JSON-like data::

    is_secret_name(name)          a header, JSON field, variable or option name that carries a credential
    mask_value(value)             a secret value as shown: ``[redacted]``, keeping an auth scheme (``Bearer [redacted]``)
    mask_text(text, known)        free text: a client's output, a command argument, a body that is not JSON
    redact_headers(headers)       HTTP request headers
    redact_body(text)             a request body or WebSocket message: JSON fields by name, else as text
    redact_argv(argv, known)      a command line (curl -u user:pass, -H 'X-Api-Key: ...', --token=...)
    redact_env(env, known)        environment variables
    redact_records(value, known)  journal records, or a document holding them
    credentials_in(headers, body) the kinds of credential a request carried (names, never values)

``known`` holds values that are secret wherever they appear (each run's fresh
credential).  Everything shows in clear only where a person asked for it
(``--show-secrets``): callers decide whether to redact, this module how.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping

REDACTED = "[redacted]"

# A name is secret when it contains one of these (case-insensitive): Authorization,
# Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, X-Auth-Token, session_id, password ...
SECRET_NAME_PARTS = ("auth", "token", "key", "secret", "session", "password", "passwd", "cookie")
# ... or is one of these: the attended client's session code (``{"code": ...}``).
SECRET_NAMES = frozenset({"code"})
# Names that match a part yet carry nothing secret: a WebSocket handshake nonce (RFC 6455 4.1).
NOT_SECRET_NAMES = frozenset({"sec-websocket-key"})

# Journal record fields that hold a credential's value (the mock server's ``authorization`` and ``code``).
RECORD_SECRET_FIELDS = frozenset({"authorization", "proxy-authorization", "proxy_authorization", "cookie", "set-cookie",
                                  "code", "token"})

# curl's options whose next argument is a credential, and those that take a header or a body.
_VALUE_OPTIONS = frozenset({"-u", "--user", "-U", "--proxy-user", "--oauth2-bearer", "-b", "--cookie",
                            "--pass", "--proxy-pass", "--tlspassword", "--proxy-tlspassword", "--aws-sigv4"})
_HEADER_OPTIONS = frozenset({"-H", "--header", "--proxy-header"})
_BODY_OPTIONS = frozenset({"-d", "--data", "--data-raw", "--data-binary", "--data-ascii", "--data-urlencode",
                           "--json", "-F", "--form"})
# Any program's ``--NAME VALUE`` where NAME ends so: a credential follows (``--key FILE`` does not).
_VALUE_OPTION_ENDINGS = ("token", "password", "passwd", "secret", "apikey", "api-key")

# Authorization schemes (RFC 9110 11.1): a masked value keeps its scheme, which says what kind it was.
_SCHEME = re.compile(r"(?i)^(basic|bearer|digest|negotiate|ntlm|token|aws4-hmac-sha256)\s")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)([A-Za-z0-9\-._~+/]+=*)")
# Basic credentials are base64 of "user:password": only a value that decodes so is masked.
_BASIC = re.compile(r"(?i)\b(basic)(\s+)([A-Za-z0-9+/]{2,}={0,2})")
_HEADER_LINE = re.compile(r"(?m)^([ \t]*[<>*]?[ \t]*)([A-Za-z0-9_-]+)([ \t]*:[ \t]*)(\S.*?)[ \t]*$")
# curl -v shows HTTP/2 and HTTP/3 request headers in brackets: "* h2h3 [x-api-key: v]", "* [HTTP/2] [1] [cookie: v]".
_BRACKETED_HEADER = re.compile(r"\[([A-Za-z0-9_-]+)(:[ \t]*)([^\]\r\n]+)\]")
_JSON_PAIR = re.compile(r'"([^"\\]{1,80})"(\s*:\s*)"((?:[^"\\]|\\.)*)"')
_ASSIGNMENT = re.compile(r"(?<![\w.])([A-Za-z][A-Za-z0-9_.-]*)=([^&\s;,\"']+)")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def is_secret_name(name: str) -> bool:
    """True for a header, field, variable or option name that carries a credential."""
    n = name.strip().lower().lstrip("-")
    if n in NOT_SECRET_NAMES:
        return False
    return n in SECRET_NAMES or any(part in n for part in SECRET_NAME_PARTS)


def mask_value(value: str) -> str:
    """A secret value as shown: :data:`REDACTED`, after its authorization scheme if it has one."""
    m = _SCHEME.match(value.strip())
    return f"{m.group(1)} {REDACTED}" if m else REDACTED


def _masked(value) -> str:
    return mask_value(value) if isinstance(value, str) else REDACTED


def _basic(match: re.Match) -> str:
    try:
        decoded = base64.b64decode(match.group(3), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{REDACTED}" if b":" in decoded else match.group(0)


def _if_secret(name_group: int, value_group: int):
    """A substitution masking the value group of a match whose name group is a secret name."""
    def replace(m: re.Match) -> str:
        if not is_secret_name(m.group(name_group)):
            return m.group(0)
        start, end = m.span(value_group)
        return m.group(0)[:start - m.start()] + mask_value(m.group(value_group)) + m.group(0)[end - m.start():]
    return replace


def mask_text(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every credential it shows masked: the ``known`` values, Bearer and Basic
    credentials, ``Name: value`` lines (and curl's HTTP/2 ``[name: value]``) and ``"name": "value"`` / ``name=value`` pairs with a
    secret name, and the user information of URLs (``https://user:pass@host``)."""
    for secret in known:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _BASIC.sub(_basic, text)
    text = _HEADER_LINE.sub(_if_secret(2, 4), text)
    text = _BRACKETED_HEADER.sub(_if_secret(1, 3), text)
    text = _JSON_PAIR.sub(_if_secret(1, 3), text)
    text = _ASSIGNMENT.sub(_if_secret(1, 2), text)
    return _USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)


def redact_headers(headers: Mapping[str, str], known: Iterable[str] = ()) -> dict[str, str]:
    """Headers with every secret one's value replaced, and credentials in the others masked."""
    known = tuple(known)
    return {k: mask_value(v) if is_secret_name(k) else mask_text(v, known) for k, v in headers.items()}


def redact_json(value, known: Iterable[str] = ()):
    """A copy of JSON data with the value of every secret-named field replaced (nested too)."""
    known = tuple(known)
    if isinstance(value, dict):
        return {k: (_masked(v) if is_secret_name(str(k)) and v not in (None, "") else redact_json(v, known))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v, known) for v in value]
    return mask_text(value, known) if isinstance(value, str) else value


def redact_body(text: str, known: Iterable[str] = ()) -> str:
    """A request body or WebSocket message: JSON with its secret fields replaced, else masked text."""
    known = tuple(known)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, (dict, list)):
        return json.dumps(redact_json(data, known))
    return mask_text(text, known)


def _header_arg(arg: str, known: tuple[str, ...]) -> str:
    name, sep, value = arg.partition(":")
    return f"{name}{sep} {mask_value(value)}" if sep and is_secret_name(name) else mask_text(arg, known)


def redact_argv(argv: Iterable[str], known: Iterable[str] = ()) -> list[str]:
    """A command line with its credentials masked: values of credential options (curl's ``-u``,
    ``-b``, ``--oauth2-bearer``, any ``--...token``/``--...password`` and ``--secret-name=VALUE``),
    secret headers (``-H 'X-Api-Key: ...'``), secret body fields, and :func:`mask_text` on the rest."""
    known = tuple(known)
    out: list[str] = []
    expect = None  # what the previous option says the next argument is
    for arg in argv:
        if expect == "value":
            out.append(REDACTED)
        elif expect == "header":
            out.append(_header_arg(arg, known))
        elif expect == "body":
            out.append(redact_body(arg, known))
        elif arg.startswith("--") and "=" in arg and is_secret_name(arg.split("=", 1)[0]):
            out.append(f"{arg.split('=', 1)[0]}={REDACTED}")
        else:
            out.append(mask_text(arg, known))
        expect = None
        if arg in _VALUE_OPTIONS or (arg.startswith("--") and arg.lower().endswith(_VALUE_OPTION_ENDINGS)):
            expect = "value"
        elif arg in _HEADER_OPTIONS:
            expect = "header"
        elif arg in _BODY_OPTIONS:
            expect = "body"
    return out


def redact_env(env: Mapping[str, str], known: Iterable[str] = ()) -> dict[str, str]:
    """Environment variables with secret-named ones replaced and credentials in the others masked."""
    known = tuple(known)
    return {k: REDACTED if is_secret_name(k) and v else mask_text(v, known) for k, v in env.items()}


def redact_records(value, known: Iterable[str] = ()):
    """A copy of journal records (or a document holding them) with every credential masked:
    credential fields (:data:`RECORD_SECRET_FIELDS`), ``headers``, ``body`` and WebSocket ``text``,
    and :func:`mask_text` on every other string."""
    known = tuple(known)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if str(k).lower() in RECORD_SECRET_FIELDS and isinstance(v, str) and v:
                out[k] = mask_value(v)
            elif k == "headers" and isinstance(v, dict):
                out[k] = redact_headers(v, known)
            elif k in ("body", "text") and isinstance(v, str):
                out[k] = redact_body(v, known)
            else:
                out[k] = redact_records(v, known)
        return out
    if isinstance(value, (list, tuple)):
        return [redact_records(v, known) for v in value]
    return mask_text(value, known) if isinstance(value, str) else value


def credentials_in(headers: Mapping[str, str], body: bytes | str = b"") -> list[str]:
    """The kinds of credential a request carried, never their values: ``authorization``
    (Authorization, Proxy-Authorization, or a Basic/Bearer value in any header), other secret
    header names (``cookie``, ``x-api-key`` ...), ``session-code`` and ``token`` for those JSON
    body fields, and the names of other secret JSON fields."""
    found: list[str] = []
    for name, value in headers.items():
        name = name.lower()
        if name in ("authorization", "proxy-authorization") or (not is_secret_name(name) and mask_text(value) != value):
            found.append("authorization")
        elif is_secret_name(name):
            found.append(name)
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in data:
            if is_secret_name(str(key)):
                found.append({"code": "session-code"}.get(str(key).lower(), str(key).lower()))
    return list(dict.fromkeys(found))
