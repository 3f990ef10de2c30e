"""Inspection policy as plain data: which connections the proxy decrypts, and
:func:`load_policies`, which reads them from ``fixtures/policies.toml``.

Nothing here knows about mitmproxy or sockets, so the decisions can be tested
(and fuzzed) on their own; :mod:`harness.proxy` only wires them to hooks.

Host patterns, as inspection products write exceptions:

* ``api.screenmeet.com`` – that name only (case-insensitive, trailing dot ignored);
* ``*.screenmeet.com``  – any name *below* screenmeet.com, at any depth, but not
  the apex ``screenmeet.com`` itself (write both to cover both);
* ``192.0.2.10``        – an IP literal.  What it is compared with depends on
  the product (:data:`MATCH_MODES`, a vendor profile's ``exception_match``):
  proxies that match names (``sni``: Zscaler, Netskope, mitmproxy) compare it
  with the SNI / CONNECT host only, which is why exceptions written for an IP
  address miss clients that connect by name; firewalls whose decryption rules
  match the destination address (``destination``: PAN-OS, FortiGate) compare
  it with the address the connection goes to as well, whatever name the
  client asked for.  Name patterns always match the SNI / CONNECT host.

Unlike mitmproxy's ``ignore_hosts`` (an unanchored regex search, where
``screenmeet.com`` also matches ``notscreenmeet.com.evil``), matching here is
anchored on label boundaries.

Roaming: the network changes between a client's connections.  A policy with
``roam = { after = N, to = "other" }`` applies itself to the first ``N``
connections a cell makes through its listener and policy ``other`` to the
later ones (:meth:`Policy.policy_for`, a pure function of the connection's
number); the proxy counts connections per lane and the runner restarts the
count for every cell (:mod:`harness.proxy.roaming`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BadFileError
from harness.model.datafile import Table, fixtures_dir, named_tables, read_toml
from harness.model.values import is_ip_literal
from harness.model.vocab import ACTIONS, HOSTILE_CASES, INTERCEPT, KEYS, PASS_THROUGH

MODES = ("tunnel", "inspect")
AUTH_SCHEMES = ("basic",)  # a policy's `auth`: the proxy login schemes (mitmproxy's proxyauth speaks Basic)
# What an IP exception is compared with: the name the client asks for only (sni), or also
# the address the connection goes to (destination).
MATCH_MODES = ("sni", "destination")

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def normalize_host(host: str) -> str:
    """Lower-case a host name, strip one trailing dot and IPv6 brackets."""
    h = host.strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    return h[:-1] if h.endswith(".") else h


@dataclass(frozen=True)
class HostPattern:
    """One exception entry: an exact name, a ``*.`` wildcard, or an IP literal."""

    text: str
    suffix: str
    wildcard: bool

    @classmethod
    def parse(cls, text: str) -> "HostPattern":
        """Parse a pattern, raising :class:`ValueError` that says what is wrong."""
        raw = text
        h = normalize_host(text)
        if not h:
            raise ValueError("an exception pattern is empty; write a host such as '*.screenmeet.com'")
        if is_ip_literal(h):
            return cls(raw, str(ipaddress.ip_address(h)), False)
        wildcard = h.startswith("*.")
        name = h[2:] if wildcard else h
        labels = name.split(".")
        for label in labels:
            if not _LABEL.fullmatch(label):
                where = "'*' is only allowed as the whole leftmost label" if "*" in label else "labels are letters, digits and inner hyphens"
                raise ValueError(f"exception pattern {raw!r} is not a host pattern ({where})")
        if wildcard and len(labels) < 2:
            raise ValueError(f"exception pattern {raw!r} is too broad; name a domain such as '*.screenmeet.com'")
        return cls(raw, name, wildcard)

    def matches(self, host: str) -> bool:
        """True when ``host`` (an SNI or CONNECT host) falls under this pattern."""
        h = normalize_host(host)
        if is_ip_literal(h):
            # An address only ever matches an IP exception, never a name pattern.
            return not self.wildcard and str(ipaddress.ip_address(h)) == self.suffix
        if self.wildcard:
            return h.endswith("." + self.suffix) and len(h) > len(self.suffix) + 1
        return h == self.suffix

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Roam:
    """A switch between a client's connections: after ``after`` connections, policy ``to`` applies."""

    after: int
    to: "Policy"

    def to_dict(self) -> dict:
        """The ``roam`` table, with the target's own table under ``policy`` so it stands alone
        (the proxy's JSON may carry a roaming policy without its target)."""
        return {"after": self.after, "to": self.to.name, "policy": self.to.to_dict()}


@dataclass(frozen=True)
class Policy:
    """What one proxy listener does with the connections it receives.

    ``tunnel`` never decrypts (an explicit proxy that only relays CONNECT);
    ``inspect`` decrypts everything except hosts matching ``exceptions``.
    """

    name: str
    mode: str = "inspect"
    exceptions: tuple[HostPattern, ...] = field(default=())
    description: str = ""
    # The network behind the listener and how its proxy forges (see TUNING below);
    # empty means: the real mock server, and the lab's vendor profile decides.
    upstream: str = ""
    forge: str = ""
    untrusted_upstream: str = ""
    leaf_key: str = ""
    tls_min: str = ""
    tls_max: str = ""
    roam: Roam | None = None
    # Proxy login (issue 14): "basic" = the listener answers 407 until the client sends the
    # lab's login (harness.proxy.login); empty = no login.
    auth: str = ""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"policy {self.name!r} has mode {self.mode!r}; valid modes: {', '.join(MODES)}")
        for key, (choices, inspect_only) in _tuning_choices().items():
            value = getattr(self, key)
            if value and value not in choices:
                raise ValueError(f"policy {self.name!r}: {key} = {value!r} is not one of {', '.join(choices)}")
            if value and inspect_only and self.mode != "inspect":
                raise ValueError(f"policy {self.name!r}: {key} applies to mode = \"inspect\" only")
        if self.tls_min and self.tls_max and self.tls_min > self.tls_max:
            raise ValueError(f"policy {self.name!r}: tls_min {self.tls_min} is above tls_max {self.tls_max}")
        if self.roam is not None:
            self._check_roam(self.roam)

    def _check_roam(self, roam: Roam) -> None:
        if isinstance(roam.after, bool) or not isinstance(roam.after, int) or roam.after < 1:
            raise ValueError(f"policy {self.name!r}: roam.after = {roam.after!r} is not a whole number of 1 or more")
        if roam.to.roam is not None:
            raise ValueError(f"policy {self.name!r}: roam.to = {roam.to.name!r} roams itself; a policy switches once")
        if roam.to.auth != self.auth:
            raise ValueError(f"policy {self.name!r}: roam.to = {roam.to.name!r} has another auth; "
                             "a roam changes what the proxy decrypts, not its login")
        if roam.to.upstream != self.upstream:
            # The lab serves the hostile sites its listeners' policies name, not their targets'.
            raise ValueError(f"policy {self.name!r}: roam.to = {roam.to.name!r} has another upstream; "
                             "a roam changes what the proxy does, not the server behind it")

    def policy_for(self, connection: int) -> "Policy":
        """The policy for the ``connection``-th connection (1 = the first) a cell makes through
        this policy's listener: this one for the first ``roam.after``, then ``roam.to``."""
        if connection < 1:
            raise ValueError(f"connections are counted from 1, not {connection}")
        if self.roam is None or connection <= self.roam.after:
            return self
        return self.roam.to
    @classmethod
    def from_dict(cls, name: str, data: dict, *, policies: Mapping[str, "Policy"] | None = None) -> "Policy":
        """Build a policy from its TOML/JSON table; raises ValueError naming the bad value.

        A ``roam`` table names its target (``to``), looked up in ``policies``, or carries
        the target's table under ``policy`` (as :meth:`to_dict` writes it).
        """
        t = Table(f"policy {name!r}", data, error=ValueError)
        t.unknown_keys(("mode", "exceptions", "description", *TUNING, "roam"))
        exceptions = []
        for text in t.str_list("exceptions", example='["*.screenmeet.com"]'):
            try:
                exceptions.append(HostPattern.parse(text))
            except ValueError as e:
                t.fail(str(e))
        # The mode and the tuning values' choices are checked by __post_init__, which
        # guards a Policy built in Python too.
        return cls(name=name, mode=t.get("mode", "inspect"), exceptions=tuple(exceptions),
                   description=t.str("description", default=""),
                   **{key: t.str(key, valid=f'a string such as "{choices[0]}"')
                      for key, (choices, _) in _tuning_choices().items() if key in t},
                   roam=_roam(t, policies or {}) if "roam" in t else None)

    def to_dict(self) -> dict:
        """The table :meth:`from_dict` reads back (tuning keys and ``roam`` only when set)."""
        out = {"mode": self.mode, "exceptions": [p.text for p in self.exceptions], "description": self.description}
        out |= {key: getattr(self, key) for key in TUNING if getattr(self, key)}
        return out | ({"roam": self.roam.to_dict()} if self.roam else {})

    def exception_for(self, host: str | None, destination: str | None = None) -> HostPattern | None:
        """The first exception pattern that matches ``host`` (the SNI or CONNECT host), or whose
        IP literal is ``destination`` (the address the connection goes to; pass it only for a
        product that matches destinations, :func:`match_subjects`), if any."""
        subjects = [s for s in (host, destination) if s]
        return next((p for p in self.exceptions if any(p.matches(s) for s in subjects)), None)

    def decide(self, host: str | None, destination: str | None = None) -> str:
        """Return :data:`INTERCEPT` or :data:`PASS_THROUGH` for a connection to ``host``
        (going to ``destination``, as :meth:`exception_for`)."""
        if self.mode == "tunnel":
            return PASS_THROUGH
        return PASS_THROUGH if self.exception_for(host, destination) else INTERCEPT


def match_subjects(mode: str, host: str | None, destination: str | None) -> tuple[str | None, str | None]:
    """``(host, destination)`` as a product matching in ``mode`` (:data:`MATCH_MODES`) sees them:
    ``sni`` ignores the destination; ``destination`` keeps it when it is an IP address (a name
    would still have to be resolved, which the caller does)."""
    if mode not in MATCH_MODES:
        raise ValueError(f"exception matching {mode!r} is not one of {', '.join(MATCH_MODES)}")
    if mode == "sni" or not destination or not is_ip_literal(normalize_host(destination)):
        return host, None
    return host, normalize_host(destination)


def _roam(t: Table, policies: Mapping[str, Policy]) -> Roam:
    """The ``roam`` table of ``t``: ``{ after = N, to = "NAME" }`` (plus ``policy``, the target's table)."""
    t.mapping("roam", what="after and to", example='{ after = 1, to = "inspect" }', keys=("after", "to", "policy"))
    r = t.sub("roam")
    after = r.number("after", 1, whole=True, required=True)
    to = r.str("to", required=True, nonempty=True)
    if "policy" in r:
        target = Policy.from_dict(to, r.get("policy"))
    elif to in policies:
        target = policies[to]
    else:
        t.fail(f"roam.to = {to!r} names no policy; known: {', '.join(policies) or 'none'}")
    return Roam(int(after), target)


# Optional policy keys, beyond what to decrypt:
#   upstream            the lab hosts resolve to a hostile site presenting that certificate
#                       (harness.model.vocab.HOSTILE_CASES) instead of the real mock server
#   forge               the proxy forges that hostile certificate itself (inspect only)
#   untrusted_upstream  what to do when the upstream certificate is not trusted, instead of
#                       the vendor profile's action (harness.model.vocab.ACTIONS; inspect only)
#   leaf_key            the forged leaves' key instead of the vendor's (harness.model.vocab.KEYS or ca-key)
#   tls_min, tls_max    TLS versions the proxy accepts from clients: "1.2" or "1.3" (inspect only)
#   auth                "basic": the proxy requires a login (407 Proxy Authentication Required; any mode)
TUNING = ("upstream", "forge", "untrusted_upstream", "leaf_key", "tls_min", "tls_max", "auth")


def _tuning_choices() -> dict[str, tuple[tuple[str, ...], bool]]:
    """key -> (valid values, inspect mode only)."""
    versions = ("1.2", "1.3")
    return {"upstream": (tuple(HOSTILE_CASES), False), "forge": (tuple(HOSTILE_CASES), True),
            "untrusted_upstream": (ACTIONS, True), "leaf_key": (("ca-key", *KEYS), True),
            "tls_min": (versions, True), "tls_max": (versions, True), "auth": (AUTH_SCHEMES, False)}


def is_lab_host(host: str | None, domains: tuple[str, ...]) -> bool:
    """True when ``host`` is one of the lab's domains or below one (the proxy serves nothing else)."""
    if not host:
        return False
    h = normalize_host(host)
    return any(h == d or h.endswith("." + d) for d in domains)


def load_policies(path: str | Path | None = None) -> dict[str, Policy]:
    """Load and check ``policies.toml`` (default: the fixtures'): ``{name: Policy}``.

    Raises :class:`BadFileError` with one sentence naming the file, the policy and the bad value.
    """
    path = Path(path) if path else fixtures_dir() / "policies.toml"
    data = read_toml(path, missing_hint="pass an existing policies file")
    tables = named_tables(path, data, "policy", required=False)
    try:
        # Roaming policies name their targets: build the others first, whatever the file's order.
        built = {name: Policy.from_dict(name, table) for name, table in tables.items() if "roam" not in table}
        for name, table in tables.items():
            if "roam" in table:
                to = table["roam"].get("to") if isinstance(table["roam"], dict) else None
                if isinstance(to, str) and "roam" in tables.get(to, {}):
                    raise ValueError(f"policy {name!r}: roam.to = {to!r} roams itself; a policy switches once")
                built[name] = Policy.from_dict(name, table, policies=built)
        return {name: built[name] for name in tables}
    except ValueError as e:
        # from_dict's sentences name the policy (and end with a period, unless __post_init__ wrote them).
        raise BadFileError(f"{path}: {str(e).removesuffix('.')}.") from None
