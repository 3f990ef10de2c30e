"""Clients under test: any program, described as a command template plus the pinning policy it claims.

A definition is a ``[client.NAME]`` table in a TOML file (``fixtures/clients.toml``
ships worked ones) or :func:`define_client` in Python::

    [client.curl-pinned]
    policy = "pinned-strict"                      # pinned-strict | pinned-warn | unpinned
    url = "https://beam.screenmeet.com/"
    command = ["curl", "-sS", "--cacert", "{trust}", "--pinnedpubkey", "{pins_curl}", "{network}", "{url}"]
    proxy = ["--proxy", "{proxy_url}"]            # what "{network}" becomes behind a proxy ...
    direct = ["--connect-to", "{host}:{port}:{connect_to}"]   # ... and without one
    exit_codes = { 0 = "connected", 90 = "refused", 60 = "tls-error", 7 = "network-error" }

The policy says what the client must do in each scenario.  A pinned-strict
client must end as Beam does (Beam's column of ``fixtures/scenarios.toml``), a
pinned-warn client as the attended client does, whenever that column
transfers: the lab policy treats the client's host as it treats the reference
client's, and the scenario gives the reference client no extra flags.
Otherwise, and for unpinned clients, the outcome follows from the scenario's
network and the policy's decision for the client's host:

=====================  ===============  ===============================  ===================
client's host is ...   pinned-strict    pinned-warn                      unpinned
=====================  ===============  ===============================  ===================
not decrypted          connected        connected                        connected
decrypted, CA trusted  refused          warned-continued / declined [1]  accepted-inspection
decrypted, CA not      tls-error        tls-error                        tls-error
=====================  ===============  ===============================  ===================

[1] by the scenario's answer to the warning (``attended_on_warning``).  An
unpinned client fails where Beam fails for the certificate itself (hostile
certificates: tls-error) and, behind an untrusted upstream, ends as an attended
client that continued (blocked, or accepted-inspection where it warned).
Where none of this tells (a hostile upstream the reference columns do not
cover, or a roaming policy, where the outcome depends on how many connections
the client makes), :meth:`ClientDef.expected` returns None and the cell is not run;
``expect = { SCENARIO = OUTCOME }`` sets a cell explicitly.

A pinned-warn client names a regex for its ``warning`` and how to ``answer``
it (``stdin`` text, or ``args`` spliced where ``"{answer}"`` stands).
A foreign client prints no lab events, so it is judged from the journals, its
exit code (through ``exit_codes``) and, when given, whether its output
matched ``warning``.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import regex

from harness.errors import BadFileError, PatternTimeout
from harness.model.datafile import Table, fixtures_dir, named_tables, read_toml, show_value
from harness.model.placeholders import (
    PLACEHOLDERS,
    SPLICES,
    Invocation,
    curl_pins,
    fill,
    placeholder_values,
    template_fields,
)
from harness.model.policy import Policy
from harness.model.values import parse_https_url
from harness.model.vocab import INTERCEPT, OUTCOMES, REFERENCE_URLS

# The definitions' public API (README, harness.plugin, harness.matrix.runner) includes the
# placeholders and their values, which live in harness.model.placeholders: re-exported here.
__all__ = ["ClientDef", "Invocation", "PLACEHOLDERS", "POLICIES", "builtin_clients", "curl_pins", "define_client",
           "load_clients", "parse_client", "placeholder_values"]

POLICIES = ("pinned-strict", "pinned-warn", "unpinned")
# What an exit code may stand for ("connected" is refined by the journals into
# warned-continued or accepted-inspection when the proxy read the traffic).
EXIT_OUTCOMES = ("connected", "declined", "refused", "tls-error", "network-error", "usage-error")
ANSWERS = ("continue", "abort")

KEYS = ("policy", "url", "command", "proxy", "direct", "env", "exit_codes", "warning", "answer", "expect",
        "timeout", "description")
DEFAULT_URL = "https://beam.screenmeet.com/"
MAX_CLIENT_TIMEOUT = 3600.0  # one run of a client under test
WARNING_SECONDS = 2.0  # for the warning pattern to search a client's output (at most 1 MiB)


@dataclass(frozen=True, kw_only=True)
class ClientDef:
    """One client under test.  Build it with :func:`define_client` or :func:`load_clients`,
    which validate every field with a one-sentence error."""

    name: str
    policy: str
    command: tuple[str, ...]
    url: str = DEFAULT_URL
    proxy: tuple[str, ...] = ()
    direct: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    exit_codes: dict[int, str] = field(default_factory=lambda: {0: "connected"})
    warning: str | None = None
    answer: dict[str, dict] = field(default_factory=dict)
    expect: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    description: str = ""

    def __repr__(self) -> str:
        return f"ClientDef(name={self.name!r}, policy={self.policy!r}, url={self.url!r}, command={list(self.command)!r})"

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.url).port or 443

    def expected(self, scenario, policies: dict[str, Policy]) -> str | None:
        """The outcome this client must reach in ``scenario``; None when the lab cannot tell (module doc)."""
        if scenario.name in self.expect:
            return self.expect[scenario.name]
        # Explicit or transparent, the traffic passes the proxy unless the scenario is direct.
        policy = policies[scenario.policy] if scenario.network != "direct" else None
        if policy is not None and policy.roam is not None:
            return None  # which connection meets the switch depends on the client: the lab cannot tell
        if policy is not None and policy.auth and not scenario.proxy_login:
            return "network-error"  # 407 to every client that lacks the proxy login, before any TLS
        mine = policy.decide(self.host) if policy else "direct"
        # The mock server behind the proxy and usual forging: the table decides, with no reference needed.
        plain = policy is None or not (policy.upstream or policy.forge)

        def column(reference: str) -> str | None:
            if reference not in scenario.expect or scenario.client_args.get(reference):
                return None
            host = urllib.parse.urlsplit(scenario.urls.get(reference, REFERENCE_URLS[reference])).hostname
            same = (policy.decide(host) if policy else "direct") == mine
            return scenario.expect[reference] if same else None

        def table() -> str | None:
            if not plain:
                return None
            if mine != INTERCEPT:
                return "connected"
            if scenario.trust != "public+org":
                return "tls-error"
            return {"pinned-strict": "refused", "unpinned": "accepted-inspection"}.get(
                self.policy, "warned-continued" if scenario.attended_on_warning == "continue" else "declined")

        if self.policy == "pinned-strict":
            return column("beam") or table()
        if self.policy == "pinned-warn":
            return column("attended") or table()
        beam = column("beam")
        if beam in ("connected", "tls-error", "network-error", "blocked"):
            return beam  # the certificate itself decides, pinned or not
        if plain:
            return table()
        if beam == "refused" and scenario.attended_on_warning == "continue":
            # Past the pin check an unpinned client is an attended client that continued, without the warning.
            return {"warned-continued": "accepted-inspection", "blocked": "blocked"}.get(column("attended") or "")
        return None

    def warned(self, output: str, *, timeout: float = WARNING_SECONDS) -> bool | None:
        """Whether the output shows the client's warning; None when the definition names none.

        The pattern is the user's: one such as ``(a+)+$`` can backtrack for longer than
        the universe lasts, so the search stops after ``timeout`` seconds and raises
        :class:`~harness.errors.PatternTimeout` (the cell fails with that sentence).
        """
        if self.warning is None:
            return None
        try:
            return regex.search(self.warning, output, regex.MULTILINE, timeout=timeout) is not None
        except TimeoutError:
            raise PatternTimeout(
                f"client {self.name!r}: its warning pattern {show_value(self.warning)} took more than {timeout:g}s "
                f"on {len(output)} characters of output; simplify it (nested repeats such as (a+)+ backtrack "
                "without end).") from None

    def render(self, values: dict[str, str], *, via_proxy: bool, on_warning: str = "abort") -> Invocation:
        """Fill the templates with ``values`` (every :data:`PLACEHOLDERS` name)."""
        answer = self.answer.get(on_warning, {}) if self.policy == "pinned-warn" else {}
        splices = {"{network}": self.proxy if via_proxy else self.direct, "{answer}": answer.get("args", [])}
        return fill(self.command, self.env, values, splices=splices, stdin=answer.get("stdin"))


# -- loading and validation ------------------------------------------------------


def define_client(name: str, source: str = "define_client()", **table) -> ClientDef:
    """Validate a definition given as keywords (the keys of a ``[client.NAME]`` table)."""
    return parse_client(name, table, source)


def _https_url(url: str) -> bool:
    """An https:// URL whose host and port a client can use (and a certificate can name)."""
    try:
        parse_https_url(url)
    except ValueError:
        return False
    return True


def parse_client(name: str, table: dict, source: str = "client definition") -> ClientDef:
    """Validate one ``[client.NAME]`` table; raises :class:`BadFileError` with one sentence."""
    where = f"{source}: client {name!r}"
    if not isinstance(table, dict):
        raise BadFileError(f"{source}: client {name!r} must be a [client.{name}] table.")
    if name in ("attended", "beam"):
        raise BadFileError(f"{where} reuses a reference client's name; choose another name.")
    t = Table(where, table)
    t.unknown_keys(KEYS)
    # The policy and timeout sentences keep their wording from before Table word for word
    # (tests and harness.plugin's users quote "policy 'pinned' is not one of ..."), hence t.fail.
    policy = t.get("policy")
    if policy not in POLICIES:
        t.fail(f"policy {policy!r} is not one of {', '.join(POLICIES)}")
    command = t.str_list("command", required=True, nonempty=True, example='["curl", "{url}"]')
    proxy = t.str_list("proxy", example='["--proxy", "{proxy_url}"]')
    direct = t.str_list("direct", example='["--connect-to", "{host}:{port}:{connect_to}"]')
    url = t.str("url", default=DEFAULT_URL, ok=_https_url, valid='an https:// URL, e.g. "https://beam.screenmeet.com/"')
    env = t.mapping("env", what="variable names to strings", example='{ HTTPS_PROXY = "{proxy_url}" }',
                    values=lambda v: isinstance(v, str), valid="a string")
    if not all(isinstance(k, str) for k in env):  # only define_client's Python dicts can have other keys
        t.fail(f"'env' must map variable names to strings, not {sorted(env, key=str)!r}")
    exit_codes = _exit_codes(t)
    warning = t.str("warning")
    if warning is not None:
        try:
            regex.compile(warning, regex.MULTILINE)  # as warned() will search with it
        except (regex.error, ValueError, OverflowError) as e:
            t.fail(f"'warning' {warning!r} is not a valid regular expression ({e})")
    answer = _answer(t, policy, warning, command)
    expect = t.mapping("expect", what="scenario names to outcomes", example='{ direct = "connected" }',
                       values=lambda o: o in OUTCOMES, valid=f"one of {', '.join(OUTCOMES)}")
    # Finite and bounded, like every number in a data file: an infinite timeout would never end a run,
    # and 1e300 seconds overflows the clock the wait uses.
    timeout = t.number("timeout", high=MAX_CLIENT_TIMEOUT, above=0, default=30,
                       valid=f"a number of seconds above 0, at most {MAX_CLIENT_TIMEOUT:g}")

    if (proxy or direct) and "{network}" not in command:
        t.fail("'proxy'/'direct' need a \"{network}\" argument in 'command' to mark where they go")
    used: set[str] = set()
    templates = [a for a in command if a not in SPLICES] + list(proxy) + list(direct) + list(env.values())
    templates += [a for spec in answer.values() for a in spec["args"]]
    for template in templates:
        try:
            used |= template_fields(template)
        except ValueError as e:
            t.fail(str(e))
    if "proxy_url" not in used:
        raise BadFileError(f"{where} never uses {{proxy_url}}; say how it reaches the proxy, "
                           "e.g. proxy = [\"--proxy\", \"{proxy_url}\"] or env = { HTTPS_PROXY = \"{proxy_url}\" }.")
    return ClientDef(name=name, policy=policy, command=command, url=url, proxy=proxy, direct=direct, env=env,
                     exit_codes=exit_codes, warning=warning, answer=answer, expect=expect, timeout=float(timeout),
                     description=t.str("description", default=""))


def _exit_codes(t: Table) -> dict[int, str]:
    """``exit_codes``: TOML keys are strings ("90"), define_client's may be ints."""
    if "exit_codes" not in t:
        return {0: "connected"}
    raw = t.mapping("exit_codes", what="exit codes to outcomes", example='{ 0 = "connected", 90 = "refused" }',
                    nonempty=True)
    exit_codes = {}
    for code, outcome in raw.items():
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses; at most three,
        # since int() and str() refuse numbers of over 4300 digits.
        ok = (0 <= code <= 255 if isinstance(code, int) and not isinstance(code, bool)
              else isinstance(code, str) and re.fullmatch(r"[0-9]{1,3}", code) and int(code) <= 255)
        if not ok:
            t.fail(f"exit code {show_value(code)} is not a number from 0 to 255")
        if outcome not in EXIT_OUTCOMES:
            t.fail(f"exit code {code} maps to {outcome!r}, not one of {', '.join(EXIT_OUTCOMES)}")
        exit_codes[int(code)] = outcome
    return exit_codes


def _answer(t: Table, policy: str, warning: str | None, command: tuple[str, ...]) -> dict[str, dict]:
    """A pinned-warn client's ``answer``: ``{"continue": {"stdin": ..., "args": [...]}, "abort": {...}}``."""
    example = 'answer = { continue = { stdin = "y\\n" }, abort = { stdin = "n\\n" } }'
    if policy != "pinned-warn":
        if t.get("answer"):
            t.fail("'answer' only applies to pinned-warn clients; remove it or change the policy")
        return {}
    if warning is None:
        t.fail("a pinned-warn client needs 'warning', a regex matching its warning text")
    if not isinstance(t.get("answer"), dict) or set(t.get("answer")) != set(ANSWERS):
        t.fail(f"a pinned-warn client needs 'answer' with 'continue' and 'abort', e.g. {example}")
    answer = {}
    for how, spec in t.get("answer").items():
        if not isinstance(spec, dict) or not spec or set(spec) - {"stdin", "args"}:
            t.fail(f"answer.{how} must be {{ stdin = \"TEXT\" }} and/or {{ args = [\"--flag\"] }}")
        given = t.sub("answer").sub(how)
        given.str("stdin", valid='a string such as "y\\n"')
        answer[how] = {**spec, "args": list(given.str_list("args", example='["--flag"]'))}
    if any(a["args"] for a in answer.values()) and "{answer}" not in command:
        t.fail("answer args need an \"{answer}\" argument in 'command' to mark where they go")
    return answer


def load_clients(path: str | Path) -> dict[str, ClientDef]:
    """Load every ``[client.NAME]`` definition of a TOML file."""
    path = Path(path)
    data = read_toml(path, missing_hint="pass an existing client definitions file (see fixtures/clients.toml)")
    tables = named_tables(path, data, "client", hint=" (see fixtures/clients.toml)")
    return {name: parse_client(name, table, str(path)) for name, table in tables.items()}


def builtin_clients() -> dict[str, ClientDef]:
    """The worked definitions in ``fixtures/clients.toml`` (none if the file is absent)."""
    path = fixtures_dir() / "clients.toml"
    return load_clients(path) if path.is_file() else {}
