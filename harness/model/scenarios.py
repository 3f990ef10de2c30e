"""Scenarios as data: loading and validating ``fixtures/scenarios.toml``.

A :class:`Scenario` is a network condition plus the outcome expected of each
client.  The files are validated on load so a typo is reported as one sentence
naming the file, the scenario and the bad value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.model.datafile import fixtures_dir, read_toml
from harness.errors import BadFileError, UnknownNameError
from harness.model.policy import Policy, load_policies
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
        return replace(self, expect=dict(expect)) if expect else self


def _scenario(path: Path, table: dict, policies: dict[str, Policy]) -> Scenario:
    if not isinstance(table, dict):
        raise BadFileError(f"{path}: every scenario must be a [[scenario]] table.")
    name = table.get("name")
    where = f"{path}: scenario {name!r}"
    if not isinstance(name, str) or not name:
        raise BadFileError(f"{path}: every [[scenario]] needs a name.")
    known = {"name", "network", "expect", "policy", "trust", "attended_on_warning", "description", "tags",
             "urls", "client_args", "expect_by_action"}
    if unknown := set(table) - known:
        raise BadFileError(f"{where} has unknown keys {sorted(unknown)}; known keys: {', '.join(sorted(known))}.")
    network = table.get("network")
    if network not in NETWORKS:
        raise BadFileError(f"{where}: network {network!r} is not one of {', '.join(NETWORKS)}.")
    policy = table.get("policy")
    if network in ("proxy", "transparent") and policy not in policies:
        raise BadFileError(f"{where}: policy {policy!r} is not defined; known: {', '.join(sorted(policies))}.")
    trust = table.get("trust", "public")
    if trust not in TRUSTS:
        raise BadFileError(f"{where}: trust {trust!r} is not one of {', '.join(TRUSTS)}.")
    expect = table.get("expect")
    _check_expect(where, "expect", expect)
    by_action = table.get("expect_by_action", {})
    if not isinstance(by_action, dict):
        raise BadFileError(f"{where}: 'expect_by_action' must map untrusted-upstream actions to expectations.")
    for action, table_ in by_action.items():
        if action not in ACTIONS:
            raise BadFileError(f"{where}: expect_by_action names {action!r}; actions: {', '.join(ACTIONS)}.")
        _check_expect(where, f"expect_by_action.{action}", table_)
    urls = _per_client(where, table, "urls", lambda v: isinstance(v, str) and v.startswith("https://"),
                       "an https:// URL")
    client_args = _per_client(where, table, "client_args",
                              lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v),
                              "a list of strings")
    tags = table.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadFileError(f"{where}: tags must be a list of strings, e.g. tags = [\"core\"].")
    on_warning = table.get("attended_on_warning", "abort")
    if on_warning not in ("continue", "abort"):
        raise BadFileError(f"{where}: attended_on_warning must be 'continue' or 'abort'.")
    return Scenario(
        name=name, network=network, expect=dict(expect), policy=policy if network in ("proxy", "transparent") else None,
        trust=trust, attended_on_warning=on_warning, description=str(table.get("description", "")),
        tags=tuple(tags), urls=urls, client_args={c: tuple(a) for c, a in client_args.items()},
        expect_by_action={a: dict(t) for a, t in by_action.items()},
    )


def _check_expect(where: str, key: str, expect) -> None:
    if not isinstance(expect, dict) or not expect:
        raise BadFileError(f"{where}: '{key}' must map clients to outcomes, e.g. {{ beam = \"refused\" }}.")
    for client, outcome in expect.items():
        if client not in CLIENTS:
            raise BadFileError(f"{where}: '{key}' names client {client!r}; known clients: {', '.join(CLIENTS)}.")
        if outcome not in OUTCOMES:
            raise BadFileError(f"{where}: outcome {outcome!r} for {client} is not one of {', '.join(OUTCOMES)}.")


def _per_client(where: str, table: dict, key: str, ok, valid: str) -> dict:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise BadFileError(f"{where}: '{key}' must map clients to values, e.g. {key}.beam = ...")
    for client, v in value.items():
        if client not in CLIENTS:
            raise BadFileError(f"{where}: '{key}' names client {client!r}; known clients: {', '.join(CLIENTS)}.")
        if not ok(v):
            raise BadFileError(f"{where}: {key}.{client} = {v!r} is not {valid}.")
    return dict(value)


def load_scenarios(path: str | Path | None = None, *, policies: dict[str, Policy] | None = None) -> list[Scenario]:
    """Load and validate ``scenarios.toml``."""
    path = Path(path) if path else fixtures_dir() / "scenarios.toml"
    policies = policies if policies is not None else load_policies(path.parent / "policies.toml")
    tables = read_toml(path, missing_hint="pass an existing scenario file").get("scenario", [])
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
