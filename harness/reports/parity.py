"""Backend parity: two ``harness run --json`` documents of the same rows, compared cell by cell.

``python -m harness.reports.parity LOCAL.json COMPOSE.json`` prints every cell
whose observed outcome differs between the local and the compose lab, and every
cell one of them left out, then exits 1; with none, one line saying how many
cells agree, exit 0.  A cell may be left out on one side only for a reason of
:data:`CONTAINER_LIMITS` (something a container cannot have; the reason names
it); any other skip is a difference.

Cells are matched by (scenario, client, occurrence): an ``--all-vendors`` run
holds one cell per vendor for each pair, in the order of its labs, which both
backends share (``fixtures/vendors.toml``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.errors import LabError
from harness.matrix.runner import COMPOSE_SERVER_ADDRESS
from harness.model.files import read_text_bounded

# The reasons a row may run on one backend and not on the other: what a container cannot have.
# One: the local server's fixed address (127.0.0.1), which the IP-exception row's policy names and a
# destination-matching vendor (PAN-OS, FortiGate) needs; everything else the local lab serves (hostile
# sites, vendor profiles, unconstrained CAs, the transparent gateway) exists in containers too.
# Add a reason here only with its row.
CONTAINER_LIMITS: tuple[str, ...] = (COMPOSE_SERVER_ADDRESS,)
DOCUMENT_LIMIT = 64 << 20  # a run document of the whole vendor matrix is a few MB


Key = tuple[str, str, int]


def _label(document: dict, key: Key) -> str:
    scenario, client, k = key
    vendors = list(document.get("lab", {}).get("vendors", {}))
    return f"{scenario}/{client}" + (f" ({vendors[k]})" if k < len(vendors) else "")


def outcomes(document: dict) -> tuple[dict[Key, str], dict[Key, str]]:
    """``(observed, left_out)`` of a run document: the observed outcome of every cell run, and the
    reason of every cell left out, by (scenario, client, occurrence)."""
    observed: dict[Key, str] = {}
    for cell in document["cells"]:
        k = sum(1 for s, c, _ in observed if (s, c) == (cell["scenario"], cell["client"]))
        observed[(cell["scenario"], cell["client"], k)] = cell["observed"]
    left: dict[Key, str] = {}
    for cell in document.get("not_run", []):
        k = sum(1 for s, c, _ in left if (s, c) == (cell["scenario"], cell["client"]))
        left[(cell["scenario"], cell["client"], k)] = cell["reason"]
    return observed, left


def compare(local: dict, compose: dict) -> list[str]:
    """Every difference between two run documents of the same rows, one sentence each (none: parity)."""
    ran = {"local": outcomes(local), "compose": outcomes(compose)}
    docs = {"local": local, "compose": compose}
    keys = sorted({k for observed, left in ran.values() for k in (*observed, *left)})
    differences = []
    for key in keys:
        seen = {name: observed.get(key) for name, (observed, _) in ran.items()}
        if None not in seen.values():
            if seen["local"] != seen["compose"]:
                differences.append(f"{_label(local, key)}: local observed {seen['local']}, "
                                   f"compose observed {seen['compose']}.")
            continue
        for name, (observed, left) in ran.items():
            if key in observed:
                continue
            why = left.get(key)
            if why is None:
                differences.append(f"{_label(docs[name], key)}: the {name} run has no such cell.")
            elif why not in CONTAINER_LIMITS or name == "local":
                differences.append(f"{_label(docs[name], key)}: the {name} run left it out ({why}).")
    return differences


def _load(path: str) -> dict:
    return json.loads(read_text_bounded(Path(path), "run document", DOCUMENT_LIMIT,
                                        hint="write it with 'harness run --json > FILE'",
                                        fix="write it again with 'harness run --json > FILE'"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m harness.reports.parity LOCAL.json COMPOSE.json", file=sys.stderr)
        return 2
    try:
        local, compose = (_load(p) for p in argv)
        differences = compare(local, compose)
    except LabError as e:
        print(f"parity: {e}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError) as e:
        print(f"parity: a document is not a 'harness run --json' document ({e}); write it again.", file=sys.stderr)
        return 2
    for line in differences:
        print(line)
    if differences:
        print(f"{len(differences)} difference(s) between the local and the compose run.", file=sys.stderr)
        return 1
    print(f"Parity: all {len(local['cells'])} cells observed the same outcome on the local and the compose lab.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
