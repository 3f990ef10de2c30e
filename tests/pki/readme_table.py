"""The README's vendor shape table, rendered from fixtures/vendors.toml (tests/pki/test_shapes.py
checks the README carries exactly these rows)."""

from __future__ import annotations

HEADER = ("| vendor | CAs, root first (pathLen, lifetime) | leaf issuer DN | leaf subject / key / hash / validity "
          "| leaf extensions (+ SAN) | untrusted upstream | sources of the shape |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
_FACTS = {"ca_dns": "DNs", "ca_path_lens": "pathLen", "ca_days": "lifetimes", "leaf_subject": "subject",
          "leaf_key": "key", "leaf_hash": "hash", "leaf_validity": "validity", "leaf_extensions": "extensions"}


def _days(n: int) -> str:
    return f"{n // 365} y" if n >= 365 else f"{n} d"


def row(v) -> str:
    """One vendor's row."""
    dns = v.ca_names()
    cas = []
    for i, dn in enumerate(dns):
        cn = next(a[3:] for a in dn if a.startswith("CN="))
        bits = [f"pathLen {v.ca_path_lens[i - 1] if v.ca_path_lens else len(dns) - 1 - i}"] if i else []
        bits += [_days(v.ca_days[i])] if v.ca_days else []
        cas.append(f"`{cn}`" + (f" ({', '.join(bits)})" if bits else ""))
    issuer = ", ".join(dns[-1])
    if v.name == "generic":
        leaf, extensions = "mitmproxy's own (CA key, its validity)", "mitmproxy's own"
    else:
        subject = {"copy": "copied", "cn": "CN only", "template": "product's O + CN"}[v.leaf_subject]
        key = {"match": "as the server's", "ca-key": "the CA's own"}.get(v.leaf_key, v.leaf_key.upper())
        validity = f"{v.leaf_validity} d" if isinstance(v.leaf_validity, int) else v.leaf_validity
        leaf = f"{subject} / {key} / {v.leaf_hash.upper()} / {validity}"
        extensions = ", ".join(v.leaf_extensions) or "none"
    kinds: dict[str, list[str]] = {}
    for key, label in _FACTS.items():
        if key in v.sources:
            kinds.setdefault(v.source_kind(key), []).append(label)
    sources = "; ".join(f"{k}: {', '.join(kinds[k])}" for k in ("doc", "sample", "lab") if k in kinds)
    return (f"| {v.name} | {' → '.join(cas)} | `{issuer}` | {leaf} | {extensions} | {v.untrusted_upstream} "
            f"| {sources} |")


def table(vendors) -> str:
    """The whole table."""
    return "\n".join([HEADER, *(row(v) for v in vendors.values())])
