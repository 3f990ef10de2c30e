"""Vendor profiles: how real inspection products forge certificates, as data.

``fixtures/vendors.toml`` describes each product (issuer names, chain shape,
key types, leaf validity, what it does with an untrusted upstream
certificate), every value with a cited source.  This module loads and checks
it; :func:`harness.pki.lab.vendor_cas` turns a profile into lab CAs, and the
proxy (:mod:`harness.proxy.forge`) forges leaves the way the profile says.

::

    load_vendors()            {name: VendorProfile}, or one BadFileError sentence
    get_vendor("zscaler")     one profile, or UnknownNameError listing the known ones
    profile.issuing_cn        the CN a client sees as the issuer of a forged leaf
    profile.source_kind(key)  "doc" | "sample" | "lab"
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.model.datafile import fixtures_dir, read_toml
from harness.errors import BadFileError, UnknownNameError
from harness.model.vocab import ACTIONS, KEYS

CHAINS = ("root", "intermediate")
SOURCE_KINDS = ("doc", "sample", "lab")
DEFAULT_VENDOR = "generic"

# key -> (required?, check, what a valid value looks like)
_VALUE_KEYS = {
    "issuer_cn": (True, lambda v: isinstance(v, str) and v.strip(), "a non-empty string"),
    "issuer_o": (False, lambda v: isinstance(v, str), "a string"),
    "root_cn": (False, lambda v: isinstance(v, str) and v.strip(), "a non-empty string"),
    "root_o": (False, lambda v: isinstance(v, str), "a string"),
    "chain": (True, lambda v: v in CHAINS, " or ".join(CHAINS)),
    "key": (True, lambda v: v in KEYS, ", ".join(KEYS)),
    "leaf_key": (True, lambda v: v in KEYS or v == "ca-key", "ca-key or " + ", ".join(KEYS)),
    "leaf_validity": (True, lambda v: v in ("copy", "engine") or (type(v) is int and 0 < v <= 3650),
                      "a number of days (1-3650), copy or engine"),
    "untrusted_upstream": (True, lambda v: v in ACTIONS, ", ".join(ACTIONS)),
    "untrusted_issuer_cn": (False, lambda v: isinstance(v, str) and v.strip(), "a non-empty string"),
    "block_status": (False, lambda v: type(v) is int and 400 <= v <= 599, "an HTTP error status (400-599)"),
    "block_page": (False, lambda v: isinstance(v, str) and v.strip(), "a non-empty string"),
}
_LABEL_KEYS = ("product", "source")


def parse_key(spec: str) -> tuple[str, int]:
    """``"rsa-2048"`` -> ``("rsa", 2048)``, ``"ec-256"`` -> ``("ec", 256)`` (as :mod:`harness.pki.ca` takes them)."""
    kind, _, size = spec.partition("-")
    return kind, int(size)


@dataclass(frozen=True)
class VendorProfile:
    """One inspection product's forging behaviour; see ``fixtures/vendors.toml`` for the keys."""

    name: str
    product: str
    issuer_cn: str
    chain: str
    key: str
    leaf_key: str
    leaf_validity: int | str
    untrusted_upstream: str
    issuer_o: str | None = None
    root_cn: str | None = None
    root_o: str | None = None
    untrusted_issuer_cn: str | None = None
    block_status: int | None = None
    block_page: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def issuing_cn(self) -> str:
        """The CN of the CA that signs forged leaves: what a client shows as the issuer."""
        return self.issuer_cn

    @property
    def untrusted_cn(self) -> str:
        """The CN of the CA used for untrusted upstreams (a lab name when the product has none)."""
        return self.untrusted_issuer_cn or "Acme Corp Untrusted Issuer CA"

    def source_kind(self, key: str) -> str:
        """``doc``, ``sample`` or ``lab``: where the value of ``key`` comes from."""
        return self.sources[key].split(":", 1)[0]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VendorProfile":
        return cls(**data)



def vendors_file() -> Path:
    return fixtures_dir() / "vendors.toml"


def _profile(path: Path, name: str, table) -> VendorProfile:
    where = f"{path}: vendor {name!r}"
    if not isinstance(table, dict):
        raise BadFileError(f"{where} must be a [vendor.{name}] table.")
    if unknown := set(table) - set(_VALUE_KEYS) - set(_LABEL_KEYS):
        raise BadFileError(f"{where} has unknown keys {sorted(unknown)}; known keys: "
                           f"{', '.join([*_LABEL_KEYS, *_VALUE_KEYS])}.")
    for key, (required, ok, valid) in _VALUE_KEYS.items():
        if key not in table:
            if required:
                raise BadFileError(f"{where} lacks {key!r}; set it to {valid}.")
            continue
        if not ok(table[key]):
            raise BadFileError(f"{where}: {key} = {table[key]!r} is not {valid}.")
    sources = table.get("source", {})
    if not isinstance(sources, dict):
        raise BadFileError(f"{where}: 'source' must be a [vendor.{name}.source] table.")
    for key in set(table) - set(_LABEL_KEYS):
        text = sources.get(key)
        if not isinstance(text, str) or text.split(":", 1)[0] not in SOURCE_KINDS or ":" not in text:
            raise BadFileError(f"{where}: {key} needs a source, e.g. source.{key} = \"doc: <where it is documented>\" "
                               f"(kinds: {', '.join(SOURCE_KINDS)}).")
    if extra := set(sources) - set(table):
        raise BadFileError(f"{where}: sources given for keys it does not set: {', '.join(sorted(extra))}.")
    shape = table["chain"] == "intermediate"
    if shape != ("root_cn" in table):
        raise BadFileError(f"{where}: chain = {table['chain']!r} " + (
            "needs root_cn (the root that signs the intermediate)." if shape else
            "takes no root_cn (the issuer is the root); use chain = \"intermediate\"."))
    action = table["untrusted_upstream"]
    if action == "re-sign-untrusted" and "untrusted_issuer_cn" not in table:
        raise BadFileError(f"{where}: untrusted_upstream = \"re-sign-untrusted\" needs untrusted_issuer_cn.")
    if action != "block-page" and ("block_status" in table or "block_page" in table):
        raise BadFileError(f"{where}: block_status and block_page apply to untrusted_upstream = \"block-page\" only.")
    if ("block_status" in table) != ("block_page" in table):
        raise BadFileError(f"{where}: give both block_status and block_page, or neither.")
    values = {k: v for k, v in table.items() if k != "source"}
    return VendorProfile(name=name, product=str(table.get("product", name)), sources=dict(sources),
                         **{k: v for k, v in values.items() if k != "product"})


def load_vendors(path: str | Path | None = None) -> dict[str, VendorProfile]:
    """Load and check ``vendors.toml``: ``{name: VendorProfile}``."""
    path = Path(path) if path else vendors_file()
    data = read_toml(path, missing_hint="pass an existing vendors file")
    tables = data.get("vendor", {})
    if not isinstance(tables, dict) or not tables:
        raise BadFileError(f"{path} defines no vendor; write profiles as [vendor.NAME] tables.")
    return {name: _profile(path, name, table) for name, table in tables.items()}


def get_vendor(name: str, path: str | Path | None = None) -> VendorProfile:
    """The profile called ``name``; :class:`UnknownNameError` lists the known ones."""
    vendors = load_vendors(path)
    if name not in vendors:
        raise UnknownNameError("vendor", name, list(vendors))
    return vendors[name]
