"""The command templates of client definitions: their placeholders, the values for
one run, and filling them in.  Pure functions; :mod:`harness.model.clientdefs`
checks a definition's templates with :func:`template_fields` and renders them
with :func:`fill`.

A template is an argument (or an environment value) such as ``"--proxy={proxy_url}"``;
literal braces are doubled (``"%{{http_code}}"``).  Two whole arguments are
*splices*, replaced by a list: ``"{network}"`` (the definition's ``proxy`` or
``direct`` arguments) and ``"{answer}"`` (a pinned-warn client's answer).
"""

from __future__ import annotations

import base64
import string
import sys
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from harness.model.pins import parse_pins

PLACEHOLDERS = {
    "proxy_url": "the proxy listener, http://HOST:PORT (empty in the direct scenario)",
    "trust": "the trust bundle the scenario deploys (public root, or public + org CA)",
    "pins": "the pins file, one sha256/<base64> per line",
    "pins_curl": "the pins in curl's --pinnedpubkey form, sha256//A;sha256//B",
    "url": "the definition's URL",
    "host": "the URL's host",
    "port": "the URL's port",
    "scenario": "the scenario's name",
    "connect_to": "HOST:PORT of the mock server in the direct scenario (empty behind a proxy)",
    "connect_host": "the host of connect_to",
    "connect_port": "the port of connect_to",
    "secret": "a fresh credential per run (a token to send): reports redact it",
    "lane": "the lane number the run borrowed",
    "org_ca": "the organisation's inspection CA certificate (PEM)",
    "python": "the Python interpreter running the harness",
}
SPLICES = ("{network}", "{answer}")  # whole arguments replaced by a list


@dataclass(frozen=True)
class Invocation:
    """A rendered run: the argv, extra environment and standard input."""

    argv: tuple[str, ...]
    env: dict[str, str]
    stdin: str | None


def placeholder_values(*, proxy_url: str, trust: str, pins: str, pins_text: str, url: str, scenario: str,
                       connect_to: str, secret: str, lane: int, org_ca: str = "",
                       python: str = sys.executable) -> dict[str, str]:
    """Every placeholder's value for one run."""
    u = urllib.parse.urlsplit(url)
    connect_host, _, connect_port = connect_to.rpartition(":")
    return {
        "proxy_url": proxy_url, "trust": trust, "pins": pins, "pins_curl": curl_pins(pins_text),
        "url": url, "host": u.hostname or "", "port": str(u.port or 443), "scenario": scenario,
        "connect_to": connect_to, "connect_host": connect_host, "connect_port": connect_port,
        "secret": secret, "lane": str(lane), "org_ca": org_ca, "python": python,
    }


def curl_pins(pins_text: str) -> str:
    """A pins file's text in curl's ``--pinnedpubkey`` form: ``sha256//A;sha256//B``."""
    return ";".join("sha256//" + base64.b64encode(p).decode() for p in parse_pins(pins_text))


def template_fields(template: str) -> set[str]:
    """The placeholder names ``template`` uses; :class:`ValueError` with a sentence for a
    malformed template or a name outside :data:`PLACEHOLDERS` (with a format spec or conversion)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"template {template!r} is malformed ({e}); write literal braces as '{{{{' and '}}}}'") from None
    names = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise ValueError(
                f"unknown placeholder {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} "
                f"in {template!r}; known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )
        names.add(name)
    return names


def fill(command: Iterable[str], env: dict[str, str], values: dict[str, str], *,
         splices: dict[str, Iterable[str]], stdin: str | None = None) -> Invocation:
    """Fill ``command`` and ``env`` with ``values``; an argument that is a key of ``splices``
    (:data:`SPLICES`) becomes that list of (filled) arguments."""
    argv: list[str] = []
    for arg in command:
        if arg in splices:
            argv += [a.format_map(values) for a in splices[arg]]
        else:
            argv.append(arg.format_map(values))
    filled = {k: v.format_map(values) for k, v in env.items()}
    filled = {k: v for k, v in filled.items() if v}  # e.g. HTTPS_PROXY="{proxy_url}" in the direct scenario
    return Invocation(tuple(argv), filled, stdin)
