"""The lab's data files (scenarios, policies, vendors, client definitions): where they are,
reading them as TOML, and checking their tables key by key.

Every loader reads its file the same way::

    data = read_toml(path, missing_hint="pass an existing vendors file")
    for name, table in named_tables(path, data, "vendor").items():   # the [vendor.NAME] tables
        t = Table(f"{path}: vendor {name!r}", table)
        t.unknown_keys(KNOWN)
        chain = t.str("chain", required=True, choices=CHAINS)
        days = t.number("leaf_validity", 1, 3650, whole=True)

and a mistake is one :class:`~harness.errors.BadFileError` sentence naming the
file, the entry, the key, the bad value and what a valid value looks like::

    vendors.toml: vendor 'acme': untrusted_upstream = 'shrug' is not one of block-page, block-reset, ...
    vendors.toml: vendor 'acme': leaf_validity = nan is not a number of days (1-3650), copy or engine.
    vendors.toml: vendor 'acme' lacks 'issuer_cn'; set it to a non-empty string.
    vendors.toml: vendor 'acme' has unknown keys ['colour']; known: product, source, issuer_cn, ...
    clients.toml: client 'x': 'command' must be a non-empty list of strings, e.g. command = ["curl", "{url}"], not 'curl'.
    scenarios.toml: scenario 'one': 'urls' names client 'browser'; known clients: attended, beam.
    scenarios.toml: scenario 'one': 'urls' must map clients to values: urls.beam = 'http://x' is not an https:// URL.

A single value is shown as ``key = value``; a list or table that is wrong as a
whole is described (``'key' must be ...``) with an example, since its value can
be long.  Numbers must be finite and in range: a bool is not a number, and
TOML's ``nan`` and ``inf`` are rejected.  Rules across keys, and the few
sentences older than this module that tests and users quote word for word
(``network 'vpn' is not one of ...``), go through :meth:`Table.fail`.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import NoReturn

from harness.errors import BadFileError
from harness.model.files import TOML_LIMIT, read_text_bounded

# No lab file nests deeper than ~4 levels; the loaders (and json.dumps of what they keep) recurse.
MAX_DEPTH = 32


def read_toml(path: str | Path, *, missing_hint: str) -> dict:
    """Parse a TOML file, or raise :class:`BadFileError` with one sentence.

    ``missing_hint`` finishes the sentence for a file that is missing or not a
    regular file of at most :data:`~harness.model.files.TOML_LIMIT` bytes, e.g.
    ``"pass an existing scenario file"``.  Text that is not UTF-8, holds a NUL,
    breaks TOML's grammar or nests deeper than :data:`MAX_DEPTH` is one sentence too.
    """
    path = Path(path)
    text = read_text_bounded(path, "", TOML_LIMIT, hint=missing_hint, fix="fix the file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BadFileError(f"{path} is not valid TOML ({e}); fix the file.") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise BadFileError(f"{path} nests arrays or tables too deeply to read; fix the file.") from None
    if _depth(data) > MAX_DEPTH:
        raise BadFileError(f"{path} nests arrays or tables more than {MAX_DEPTH} deep; no lab file needs that, "
                           "fix the file.")
    return data


def _depth(value) -> int:
    """How deeply ``value`` nests lists and dicts (iterative: the input may be deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, depth + 1) for v in item]
    return deepest


def fixtures_dir() -> Path:
    """Where the scenario data lives: ``$HARNESS_FIXTURES``, else the installed package's
    ``harness/fixtures`` (the wheel carries them), else a checkout's top-level ``fixtures/``.

    A candidate counts only if it holds ``scenarios.toml``.
    """
    env = os.environ.get("HARNESS_FIXTURES")
    candidates = [Path(env)] if env else []
    # The wheel maps the repository's fixtures/ into the package (pyproject.toml, package-dir).
    # A package imported from a zip is no directory the loaders could open: skipped.
    shipped = resources.files("harness") / "fixtures"
    if isinstance(shipped, Path):
        candidates.append(shipped)
    candidates.append(Path(__file__).resolve().parents[2] / "fixtures")  # an editable install or a checkout
    for c in candidates:
        if (c / "scenarios.toml").is_file():
            return c
    raise BadFileError(
        "cannot find the lab's fixtures (scenarios.toml): the installed package lacks them; "
        "reinstall it from a checkout or a git URL, or set HARNESS_FIXTURES to a fixtures directory."
    )


def named_tables(path: str | Path, data: dict, kind: str, *, required: bool = True, hint: str = "") -> dict[str, dict]:
    """The ``[KIND.NAME]`` tables of a parsed file, by name.

    Raises :class:`BadFileError` when there are none (unless not ``required``) or
    one is not a table; ``hint`` ends the first sentence, e.g. ``" (see fixtures/clients.toml)"``.
    """
    tables = data.get(kind, {})
    if not isinstance(tables, dict) or (required and not tables):
        raise BadFileError(f"{path} defines no {kind}; write them as [{kind}.NAME] tables{hint}.")
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise BadFileError(f"{path}: {kind} {name!r} must be a [{kind}.{name}] table.")
    return tables


def show_value(value) -> str:
    """A value as a sentence quotes it: its repr, cut short (a whole table can be long)."""
    try:
        text = repr(value)
    except ValueError:  # an int of over 4300 digits has no repr
        return f"<{type(value).__name__} too long to show>"
    return text if len(text) <= 60 else text[:57] + "..."


class Table:
    """One table of a data file (a ``[vendor.NAME]``, a ``[[scenario]]``), read key by key.

    ``where`` names the file and the entry, e.g. ``"fixtures/vendors.toml: vendor 'acme'"``;
    every check returns the value or raises ``error`` with one sentence starting
    with it.  ``error`` is :class:`BadFileError` for files; ``ValueError`` where that
    is the caller's contract (:meth:`harness.model.policy.Policy.from_dict`, which
    also reads the proxy's JSON).  ``prefix`` is the path of a nested table
    (``"answer.continue."``), so its keys are named in full.
    """

    def __init__(self, where: str, table: dict, *, error: type[Exception] = BadFileError, prefix: str = ""):
        self.where, self.data, self.error, self.prefix = where, table, error, prefix
        if not isinstance(table, dict):
            self._raise(f"{self._owner()} must be a table, not {show_value(table)}")

    def __repr__(self) -> str:
        return f"Table({self.where!r}, prefix={self.prefix!r}, keys={list(self.data)!r})"

    def __contains__(self, key) -> bool:
        return key in self.data

    def get(self, key, default=None):
        """The raw value, unchecked (for keys whose rule the loader states itself)."""
        return self.data.get(key, default)

    def fail(self, problem: str) -> NoReturn:
        """Raise ``"WHERE: problem."``: for rules across keys, which only the loader knows."""
        self._raise(f"{self.where}: {problem}")

    def sub(self, key: str) -> "Table":
        """The nested table at ``key`` (check it first with :meth:`mapping`), its keys named ``key.KEY``."""
        return Table(self.where, self.data.get(key, {}), error=self.error, prefix=f"{self.prefix}{key}.")

    # -- sentences -------------------------------------------------------------------------

    def _name(self, key) -> str:
        return f"{self.prefix}{key}"

    def _owner(self) -> str:
        return f"{self.where}: '{self.prefix[:-1]}'" if self.prefix else self.where

    def _raise(self, sentence: str) -> NoReturn:
        raise self.error(sentence + ".")

    def _bad(self, key, value, valid: str) -> NoReturn:
        self._raise(f"{self.where}: {self._name(key)} = {show_value(value)} is not {valid}")

    def _missing(self, key, valid: str, required: bool, default):
        if required:
            self._raise(f"{self._owner()} lacks {key!r}; set it to {valid}")
        return default

    # -- the checks ----------------------------------------------------------------------

    def unknown_keys(self, known: Iterable[str]) -> None:
        """Reject keys outside ``known`` (a typo must not be silently ignored)."""
        known = list(known)
        if unknown := set(self.data) - set(known):
            self._raise(f"{self._owner()} has unknown keys {sorted(unknown, key=str)}; known: {', '.join(known)}")

    def number(self, key: str, low: float = -math.inf, high: float = math.inf, *, above: float | None = None,
               whole: bool = False, required: bool = False, default: float | None = None,
               valid: str | None = None) -> float | None:
        """A finite number from ``low`` to ``high`` (and above ``above``); ``whole``: an integer.

        A bool is not a number (TOML's ``true`` would otherwise read as 1), and ``nan``
        and ``inf`` are refused whatever the range.
        """
        valid = valid or _number_kind(low, high, above, whole)
        if key not in self.data:
            return self._missing(key, valid, required, default)
        value = self.data[key]
        kinds = int if whole else (int, float)
        ok = isinstance(value, kinds) and not isinstance(value, bool)
        # math.isfinite converts to float: a huge Python int (define_client) would overflow.
        ok = ok and (isinstance(value, int) or math.isfinite(value))
        ok = ok and low <= value <= high and (above is None or value > above)
        if not ok:
            self._bad(key, value, valid)
        return value

    def str_list(self, key: str, *, required: bool = False, nonempty: bool = False,
                 example: str = '["..."]') -> tuple[str, ...]:
        """A list of strings (non-empty if ``nonempty``); ``example`` is a valid value, as written in TOML."""
        what = "a non-empty list of strings" if nonempty else "a list of strings"
        if key not in self.data:
            return self._missing(key, f"{what}, e.g. {self._name(key)} = {example}", required, ())
        value = self.data[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (nonempty and not value):
            self._raise(f"{self.where}: '{self._name(key)}' must be {what}, e.g. {self._name(key)} = {example}, "
                        f"not {show_value(value)}")
        return tuple(value)

    def mapping(self, key: str, *, what: str, example: str, required: bool = False, nonempty: bool = False,
                keys: Iterable[str] | None = None, kind: str = "key",
                values: Callable[[object], bool] | None = None, valid: str = "") -> dict:
        """A table of ``what`` (e.g. ``"clients to outcomes"``), as a new dict.

        ``keys``: the names it may use (``kind`` says what they are: ``"client"``);
        ``values``: a check of each value, ``valid`` what passes it.
        """
        shown = self._name(key)
        if key not in self.data:
            return self._missing(key, f"a table mapping {what}, e.g. {shown} = {example}", required, {})
        value = self.data[key]
        if not isinstance(value, dict) or (nonempty and not value):
            self._raise(f"{self.where}: '{shown}' must map {what}, e.g. {shown} = {example}, not {show_value(value)}")
        if keys is not None:
            keys = list(keys)
            for k in value:
                if k not in keys:
                    self._raise(f"{self.where}: '{shown}' names {kind} {k!r}; known {kind}s: {', '.join(keys)}")
        if values is not None:
            for k, v in value.items():
                if not values(v):
                    self._raise(f"{self.where}: '{shown}' must map {what}: {shown}.{k} = {show_value(v)} is not {valid}")
        return dict(value)

    def str(self, key: str, *, required: bool = False, default: str | None = None,
            choices: Iterable[str] | None = None, nonempty: bool = False, ok: Callable[[str], bool] | None = None,
            valid: str | None = None) -> str | None:
        """A string: one of ``choices`` if given, not blank if ``nonempty``, passing ``ok`` if given;
        ``valid`` says what is valid (needed with ``ok``; by default from ``choices``).

        (Defined last in the class: the name shadows the builtin in the class body.)
        """
        choices = None if choices is None else tuple(choices)
        valid = valid or (f"one of {', '.join(choices)}" if choices is not None
                          else "a non-empty string" if nonempty else "a string")
        if key not in self.data:
            return self._missing(key, valid, required, default)
        value = self.data[key]
        if (not isinstance(value, str) or (choices is not None and value not in choices)
                or (nonempty and not value.strip()) or (ok is not None and not ok(value))):
            self._bad(key, value, valid)
        return value


def _number_kind(low: float, high: float, above: float | None, whole: bool) -> str:
    """``"a whole number from 1 to 3650"``, ``"a number above 0"``: the default description."""
    noun = "a whole number" if whole else "a number"

    def show(n: float):
        return int(n) if whole or float(n).is_integer() else n

    if above is not None:
        return f"{noun} above {show(above)}" + (f" and at most {show(high)}" if high < math.inf else "")
    if low > -math.inf and high < math.inf:
        return f"{noun} from {show(low)} to {show(high)}"
    if low > -math.inf:
        return f"{noun} of {show(low)} or more"
    if high < math.inf:
        return f"{noun} of {show(high)} or less"
    return f"a finite {noun[2:]}"
