"""Scenarios as data: loading and validating ``fixtures/scenarios.toml``.

A :class:`Scenario` is a network condition plus the outcome expected of each
client.  The files are validated on load so a typo is reported as one sentence
naming the file, the scenario and the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import BadFileError, UnknownNameError
from harness.model.datafile import Table, fixtures_dir, read_toml
from harness.model.policy import MATCH_MODES, Policy, load_policies
from harness.model.values import parse_https_url
from harness.model.vocab import ACTIONS, CLIENTS, NETWORKS, OUTCOMES, TRUSTS


@dataclass(frozen=True)
class Scenario:
    """One row of the matrix."""

    name: str
    network: str
    expect: dict[str, str]
    policy: str | None = None
    trust: str = "public"
    attended_on_warning: str = "abort"
    description: str = ""
    tags: tuple[str, ...] = field(default=())
    # Per client: the URL to open instead of its default (e.g. https://api.scrn.mt),
    # and extra command-line arguments (e.g. ["--tls-max", "1.2"]).
    urls: dict[str, str] = field(default_factory=dict)
    client_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Expected outcomes when the lab's vendor profile acts differently on an
    # untrusted upstream (harness.model.vendors.ACTIONS); `expect` is the default vendor's.
    expect_by_action: dict[str, dict[str, str]] = field(default_factory=dict)
    # Proxy login (issue 14): whether the client's proxy URL carries the lab's login where the
    # policy requires one (false: the client lacks it and meets 407).
    proxy_login: bool = True
    # Expected outcomes under vendors that match exceptions otherwise than the default
    # vendor (a profile's exception_match, harness.model.policy.MATCH_MODES).
    expect_by_matching: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def via_proxy(self) -> bool:
        """The client is configured with an (explicit) proxy."""
        return self.network == "proxy"

    @property
    def through_proxy(self) -> bool:
        """The traffic passes the inspection proxy, configured or not (explicit or transparent)."""
        return self.network in ("proxy", "transparent")

    def for_vendor(self, vendor) -> "Scenario":
        """This row as it must turn out under ``vendor`` (a :class:`harness.model.vendors.VendorProfile`)."""
        expect = self.expect_by_action.get(vendor.untrusted_upstream) if vendor is not None else None
        matching = self.expect_by_matching.get(vendor.exception_match) if vendor is not None else None
        return replace(self, expect=dict(expect or self.expect) | (matching or {})) if expect or matching else self


_KEYS = ("name", "network", "expect", "policy", "trust", "attended_on_warning", "description", "tags",
         "urls", "client_args", "expect_by_action", "proxy_login", "expect_by_matching")


def _scenario(path: Path, table, policies: dict[str, Policy]) -> Scenario:
    if not isinstance(table, dict):
        raise BadFileError(f"{path}: every scenario must be a [[scenario]] table.")
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise BadFileError(f"{path}: every [[scenario]] needs a name.")
    t = Table(f"{path}: scenario {name!r}", table)
    t.unknown_keys(_KEYS)
    # network, trust, tags, attended_on_warning, expect_by_action's names and the outcomes
    # keep their sentences from before Table word for word (tests/model/test_scenarios.py
    # quotes them: "network 'vpn' is not one of ..."), hence t.fail where t.str would
    # say "network = 'vpn' is not one of ...".
    network, trust = t.get("network"), t.get("trust", "public")
    if network not in NETWORKS:
        t.fail(f"network {network!r} is not one of {', '.join(NETWORKS)}")
    through_proxy = network in ("proxy", "transparent")
    policy = t.get("policy")
    if through_proxy and policy not in policies:
        t.fail(f"policy {policy!r} is not defined; known: {', '.join(sorted(policies))}")
    if trust not in TRUSTS:
        t.fail(f"trust {trust!r} is not one of {', '.join(TRUSTS)}")
    expect = _expect(t, "expect", required=True)
    by_action = t.mapping("expect_by_action", what="untrusted-upstream actions to expectations",
                          example='{ allow = { beam = "connected" } }')
    for action in by_action:
        if action not in ACTIONS:
            t.fail(f"expect_by_action names {action!r}; actions: {', '.join(ACTIONS)}")
    expect_by_action = {action: _expect(t.sub("expect_by_action"), action) for action in by_action}
    by_matching = t.mapping("expect_by_matching", what="exception matching modes to expectations",
                            example='{ destination = { beam = "connected" } }', keys=MATCH_MODES, kind="mode")
    expect_by_matching = {mode: _expect(t.sub("expect_by_matching"), mode) for mode in by_matching}
    urls = t.mapping("urls", what="clients to values", example='{ attended = "https://api.scrn.mt" }',
                     keys=CLIENTS, kind="client", values=_https_url, valid="an https:// URL")
    client_args = t.mapping("client_args", what="clients to extra arguments", example='{ beam = ["--tls-max", "1.2"] }',
                            keys=CLIENTS, kind="client", valid="a list of strings",
                            values=lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v))
    tags = t.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        t.fail('tags must be a list of strings, e.g. tags = ["core"]')
    on_warning = t.get("attended_on_warning", "abort")
    if on_warning not in ("continue", "abort"):
        t.fail("attended_on_warning must be 'continue' or 'abort'")
    proxy_login = t.get("proxy_login", True)
    if not isinstance(proxy_login, bool):
        t.fail("proxy_login must be true or false")
    if not proxy_login and (network != "proxy" or not policies[policy].auth):
        t.fail(f'proxy_login = false needs network = "proxy" and a policy with auth; policy {policy!r} has none')
    return Scenario(
        name=name, network=network, expect=expect, policy=policy if through_proxy else None, trust=trust,
        attended_on_warning=on_warning, description=t.str("description", default=""), tags=tuple(tags),
        urls=urls, client_args={c: tuple(a) for c, a in client_args.items()}, expect_by_action=expect_by_action,
        proxy_login=proxy_login,
        expect_by_matching=expect_by_matching,
    )


def _https_url(value) -> bool:
    """An https:// URL whose host and port a client can use (``urls``)."""
    if not isinstance(value, str):
        return False
    try:
        parse_https_url(value)
    except ValueError:
        return False
    return True


def _expect(t: Table, key: str, *, required: bool = False) -> dict[str, str]:
    """``t[key]``: the outcome each client must reach (``expect``, ``expect_by_action.ACTION``)."""
    expect = t.mapping(key, what="clients to outcomes", example='{ beam = "refused" }', required=required,
                       nonempty=True, keys=CLIENTS, kind="client")
    for client, outcome in expect.items():
        if outcome not in OUTCOMES:  # the wording predates Table (see _scenario)
            where = "" if key == "expect" else f" (in {t.prefix or 'expect_by_action.'}{key})"
            t.fail(f"outcome {outcome!r} for {client} is not one of {', '.join(OUTCOMES)}{where}")
    return expect


def load_scenarios(path: str | Path | None = None, *, policies: dict[str, Policy] | None = None) -> list[Scenario]:
    """Load and validate ``scenarios.toml``."""
    path = Path(path) if path else fixtures_dir() / "scenarios.toml"
    policies = policies if policies is not None else load_policies(path.parent / "policies.toml")
    tables = read_toml(path, missing_hint="pass an existing scenario file").get("scenario", [])
    if not isinstance(tables, list):
        raise BadFileError(f"{path}: write scenarios as [[scenario]] tables.")
    scenarios = [_scenario(path, t, policies) for t in tables]
    names = [s.name for s in scenarios]
    if dupes := {n for n in names if names.count(n) > 1}:
        raise BadFileError(f"{path}: scenario names must be unique; repeated: {', '.join(sorted(dupes))}.")
    return scenarios


EXTENDED = "extended"  # rows only run when asked for by name or tag, so the everyday matrix stays quick


def select(scenarios: list[Scenario], names: list[str] | None = None, tags: list[str] | None = None) -> list[Scenario]:
    """Pick scenarios by name (unknown names are an error) and/or tag.

    With neither, every row except those tagged ``extended`` (``--tag extended`` runs them).
    """
    by_name = {s.name: s for s in scenarios}
    chosen = scenarios if names or tags else [s for s in scenarios if EXTENDED not in s.tags]
    if names:
        for n in names:
            if n not in by_name:
                raise UnknownNameError("scenario", n, list(by_name))
        chosen = [by_name[n] for n in names]
    if tags:
        chosen = [s for s in chosen if set(tags) & set(s.tags)]
    return chosen


def policies_used(scenarios: list[Scenario], policies: dict[str, Policy]) -> dict[str, Policy]:
    """The subset of ``policies`` that ``scenarios`` use: a lab serving only these starts faster
    (fewer listeners, no hostile sites nobody asked for)."""
    used = {s.policy for s in scenarios if s.policy}
    return {name: p for name, p in policies.items() if name in used}
