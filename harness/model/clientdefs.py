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
cover), :meth:`ClientDef.expected` returns None and the cell is not run;
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

from harness.errors import BadFileError
from harness.model.datafile import fixtures_dir, read_toml
from harness.model.placeholders import (PLACEHOLDERS, SPLICES, Invocation, curl_pins, fill, placeholder_values,
                                        template_fields)
from harness.model.policy import Policy
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

    def warned(self, output: str) -> bool | None:
        """Whether the output shows the client's warning; None when the definition names none."""
        if self.warning is None:
            return None
        return re.search(self.warning, output, re.MULTILINE) is not None

    def render(self, values: dict[str, str], *, via_proxy: bool, on_warning: str = "abort") -> Invocation:
        """Fill the templates with ``values`` (every :data:`PLACEHOLDERS` name)."""
        answer = self.answer.get(on_warning, {}) if self.policy == "pinned-warn" else {}
        splices = {"{network}": self.proxy if via_proxy else self.direct, "{answer}": answer.get("args", [])}
        return fill(self.command, self.env, values, splices=splices, stdin=answer.get("stdin"))


# -- loading and validation ------------------------------------------------------


def _fields(template: str, where: str) -> set[str]:
    try:
        return template_fields(template)
    except ValueError as e:
        raise BadFileError(f"{where}: {e}.") from None


def _str_list(value, key: str, where: str, *, required: bool = False) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (required and not value):
        raise BadFileError(f"{where}: '{key}' must be a non-empty list of strings, e.g. {key} = [\"curl\", \"{{url}}\"].")
    return tuple(value)


def define_client(name: str, source: str = "define_client()", **table) -> ClientDef:
    """Validate a definition given as keywords (the keys of a ``[client.NAME]`` table)."""
    return parse_client(name, table, source)


def parse_client(name: str, table: dict, source: str = "client definition") -> ClientDef:
    """Validate one ``[client.NAME]`` table; raises :class:`BadFileError` with one sentence."""
    where = f"{source}: client {name!r}"
    if not isinstance(table, dict):
        raise BadFileError(f"{source}: client {name!r} must be a [client.{name}] table.")
    if name in ("attended", "beam"):
        raise BadFileError(f"{where} reuses a reference client's name; choose another name.")
    if unknown := set(table) - set(KEYS):
        raise BadFileError(f"{where} has unknown keys {sorted(unknown)}; known keys: {', '.join(KEYS)}.")
    policy = table.get("policy")
    if policy not in POLICIES:
        raise BadFileError(f"{where}: policy {policy!r} is not one of {', '.join(POLICIES)}.")
    command = _str_list(table.get("command"), "command", where, required=True)
    proxy = _str_list(table.get("proxy"), "proxy", where)
    direct = _str_list(table.get("direct"), "direct", where)
    url = table.get("url", DEFAULT_URL)
    u = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if u is None or u.scheme != "https" or not u.hostname:
        raise BadFileError(f"{where}: url {url!r} is not an https:// URL, e.g. \"https://beam.screenmeet.com/\".")
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise BadFileError(f"{where}: 'env' must map variable names to strings, e.g. env = {{ HTTPS_PROXY = \"{{proxy_url}}\" }}.")

    exit_codes = {0: "connected"}
    if "exit_codes" in table:
        raw = table["exit_codes"]
        if not isinstance(raw, dict) or not raw:
            raise BadFileError(f"{where}: 'exit_codes' must map exit codes to outcomes, e.g. {{ 0 = \"connected\", 90 = \"refused\" }}.")
        exit_codes = {}
        for code, outcome in raw.items():
            if not str(code).isdigit() or int(code) > 255:
                raise BadFileError(f"{where}: exit code {code!r} is not a number from 0 to 255.")
            if outcome not in EXIT_OUTCOMES:
                raise BadFileError(f"{where}: exit code {code} maps to {outcome!r}, not one of {', '.join(EXIT_OUTCOMES)}.")
            exit_codes[int(code)] = outcome

    warning = table.get("warning")
    if warning is not None:
        try:
            re.compile(warning)
        except (re.error, TypeError) as e:
            raise BadFileError(f"{where}: 'warning' {warning!r} is not a valid regular expression ({e}).") from None
    answer = table.get("answer", {})
    if policy == "pinned-warn":
        if warning is None:
            raise BadFileError(f"{where}: a pinned-warn client needs 'warning', a regex matching its warning text.")
        if not isinstance(answer, dict) or set(answer) != set(ANSWERS):
            raise BadFileError(f"{where}: a pinned-warn client needs 'answer' with 'continue' and 'abort', "
                               "e.g. answer = { continue = { stdin = \"y\\n\" }, abort = { stdin = \"n\\n\" } }.")
        for how, spec in answer.items():
            if not isinstance(spec, dict) or not spec or set(spec) - {"stdin", "args"}:
                raise BadFileError(f"{where}: answer.{how} must be {{ stdin = \"TEXT\" }} and/or {{ args = [\"--flag\"] }}.")
            if "stdin" in spec and not isinstance(spec["stdin"], str):
                raise BadFileError(f"{where}: answer.{how}.stdin must be a string such as \"y\\n\".")
            answer[how] = {**spec, "args": list(_str_list(spec.get("args"), f"answer.{how}.args", where))}
        if any(a["args"] for a in answer.values()) and "{answer}" not in command:
            raise BadFileError(f"{where}: answer args need an \"{{answer}}\" argument in 'command' to mark where they go.")
    elif answer:
        raise BadFileError(f"{where}: 'answer' only applies to pinned-warn clients; remove it or change the policy.")

    expect = table.get("expect", {})
    if not isinstance(expect, dict) or any(o not in OUTCOMES for o in expect.values()):
        raise BadFileError(f"{where}: 'expect' must map scenario names to outcomes ({', '.join(OUTCOMES)}).")
    timeout = table.get("timeout", 30)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise BadFileError(f"{where}: timeout {timeout!r} must be a positive number of seconds.")

    if (proxy or direct) and "{network}" not in command:
        raise BadFileError(f"{where}: 'proxy'/'direct' need a \"{{network}}\" argument in 'command' to mark where they go.")
    used: set[str] = set()
    templates = [a for a in command if a not in SPLICES] + list(proxy) + list(direct) + list(env.values())
    templates += [a for spec in answer.values() for a in spec.get("args", [])]
    for t in templates:
        used |= _fields(t, where)
    if "proxy_url" not in used:
        raise BadFileError(f"{where} never uses {{proxy_url}}; say how it reaches the proxy, "
                           "e.g. proxy = [\"--proxy\", \"{proxy_url}\"] or env = { HTTPS_PROXY = \"{proxy_url}\" }.")
    return ClientDef(name=name, policy=policy, command=command, url=url, proxy=proxy, direct=direct, env=dict(env),
                     exit_codes=exit_codes, warning=warning, answer=answer if policy == "pinned-warn" else {},
                     expect=dict(expect), timeout=float(timeout), description=str(table.get("description", "")))


def load_clients(path: str | Path) -> dict[str, ClientDef]:
    """Load every ``[client.NAME]`` definition of a TOML file."""
    path = Path(path)
    data = read_toml(path, missing_hint="pass an existing client definitions file (see fixtures/clients.toml)")
    tables = data.get("client")
    if not isinstance(tables, dict) or not tables:
        raise BadFileError(f"{path} defines no client; write definitions as [client.NAME] tables (see fixtures/clients.toml).")
    return {name: parse_client(name, table, str(path)) for name, table in tables.items()}


def builtin_clients() -> dict[str, ClientDef]:
    """The worked definitions in ``fixtures/clients.toml`` (none if the file is absent)."""
    path = fixtures_dir() / "clients.toml"
    return load_clients(path) if path.is_file() else {}
