"""Tests for harness.model.datafile: reading TOML, the [KIND.NAME] tables, and Table's one-sentence checks."""

from __future__ import annotations

import math
import tomllib
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import BadFileError
from harness.model import datafile
from harness.model.datafile import Table, fixtures_dir, named_tables, read_toml

WHERE = "f.toml: thing 'a'"


def table(text: str) -> Table:
    """A Table over TOML text, so the values are what a file really yields (nan, inf, nested tables)."""
    return Table(WHERE, tomllib.loads(text))


def sentence(check, *args, **kwargs) -> str:
    with pytest.raises(BadFileError) as info:
        check(*args, **kwargs)
    message = str(info.value)
    assert message.startswith("f.toml: thing 'a'") and message.endswith(".") and "\n" not in message
    assert info.value.__cause__ is None
    return message


# -- read_toml and named_tables -------------------------------------------------------------

def test_read_toml_missing_and_broken(tmp_path):
    with pytest.raises(BadFileError, match=r"absent.toml does not exist; pass one\.$"):
        read_toml(tmp_path / "absent.toml", missing_hint="pass one")
    broken = tmp_path / "broken.toml"
    broken.write_text("[x\n")
    with pytest.raises(BadFileError, match="is not valid TOML .*; fix the file"):
        read_toml(broken, missing_hint="unused")
    broken.write_text("a = 1\n")
    assert read_toml(broken, missing_hint="unused") == {"a": 1}


def test_named_tables():
    assert named_tables("f.toml", {"thing": {"a": {"k": 1}}}, "thing") == {"a": {"k": 1}}
    assert named_tables("f.toml", {}, "thing", required=False) == {}
    with pytest.raises(BadFileError, match=r"^f.toml defines no thing; write them as \[thing.NAME\] tables \(see x\)\.$"):
        named_tables("f.toml", {}, "thing", hint=" (see x)")
    with pytest.raises(BadFileError, match="defines no thing"):
        named_tables("f.toml", {"thing": 3}, "thing", required=False)  # present but not a table of tables
    with pytest.raises(BadFileError, match=r"^f.toml: thing 'b' must be a \[thing.b\] table\.$"):
        named_tables("f.toml", {"thing": {"a": {}, "b": [1]}}, "thing")


def test_a_table_that_is_not_a_table():
    assert sentence(Table, WHERE, ["x"]) == "f.toml: thing 'a' must be a table, not ['x']."
    t = table("sub = 3")
    assert sentence(t.sub, "sub") == "f.toml: thing 'a': 'sub' must be a table, not 3."


# -- unknown keys, fail ---------------------------------------------------------------------------

def test_unknown_keys():
    t = table("name = 'x'\ncolour = 'red'\nsize = 3")
    t.unknown_keys(["name", "colour", "size"])
    assert sentence(t.unknown_keys, ["name"]) == "f.toml: thing 'a' has unknown keys ['colour', 'size']; known: name."


def test_unknown_keys_of_a_nested_table_name_it():
    t = table("[answer.continue]\nsay = 'y'")
    assert sentence(t.sub("answer").sub("continue").unknown_keys, ["stdin", "args"]) == (
        "f.toml: thing 'a': 'answer.continue' has unknown keys ['say']; known: stdin, args.")


def test_fail_is_the_loaders_own_sentence():
    assert sentence(table("").fail, "chain = 'root' takes no root_cn") == "f.toml: thing 'a': chain = 'root' takes no root_cn."


def test_another_error_class():
    with pytest.raises(ValueError, match=r"^policy 'x': mode = 3 is not a string\.$"):
        Table("policy 'x'", {"mode": 3}, error=ValueError).str("mode")


# -- str ----------------------------------------------------------------------------------------

def test_str_returns_the_value_or_the_default():
    t = table("chain = 'root'")
    assert t.str("chain", choices=("root", "intermediate")) == "root"
    assert t.str("absent") is None and t.str("absent", default="d") == "d"


@pytest.mark.parametrize("text,kwargs,expected", [
    ("chain = 'tree'", {"choices": ("root", "intermediate")}, "chain = 'tree' is not one of root, intermediate"),
    ("chain = 'tree'", {"choices": ("root", "intermediate"), "valid": "root or intermediate"},
     "chain = 'tree' is not root or intermediate"),
    ("name = 3", {}, "name = 3 is not a string"),
    ("name = true", {}, "name = True is not a string"),
    ("name = ['x']", {}, "name = ['x'] is not a string"),
    ("name = { x = 'y' }", {}, "name = {'x': 'y'} is not a string"),  # a table where a value belongs
    ("name = '  '", {"nonempty": True}, "name = '  ' is not a non-empty string"),
    ("url = 'http://x'", {"ok": lambda v: v.startswith("https://"), "valid": "an https:// URL"},
     "url = 'http://x' is not an https:// URL"),
    ("url = 443", {"ok": lambda v: v.startswith("https://"), "valid": "an https:// URL"},
     "url = 443 is not an https:// URL"),  # ok is only asked about strings
])
def test_str_sentences(text, kwargs, expected):
    assert sentence(table(text).str, text.split()[0], **kwargs) == f"f.toml: thing 'a': {expected}."


def test_str_required():
    assert sentence(table("").str, "issuer_cn", required=True, nonempty=True) == (
        "f.toml: thing 'a' lacks 'issuer_cn'; set it to a non-empty string.")
    assert sentence(table("").str, "chain", required=True, choices=("root", "intermediate")) == (
        "f.toml: thing 'a' lacks 'chain'; set it to one of root, intermediate.")


def test_long_values_are_cut_short():
    message = sentence(table(f"name = {list(range(100))}").str, "name")
    assert "..." in message and len(message) < 120


# -- number ---------------------------------------------------------------------------------------

def test_number_returns_ints_and_floats():
    t = table("days = 7\ntimeout = 0.5\nbig = 9223372036854775807")
    assert t.number("days", 1, 3650, whole=True) == 7
    assert t.number("timeout", above=0) == 0.5
    assert t.number("big", 0) == 2 ** 63 - 1
    assert t.number("absent", default=30) == 30
    # Python callers (define_client) may pass ints TOML cannot hold; they are still compared, not overflowed.
    assert Table(WHERE, {"n": 10 ** 400}).number("n", 0) == 10 ** 400


@pytest.mark.parametrize("text,args,kwargs,expected", [
    ("days = 0", (1, 3650), {"whole": True}, "days = 0 is not a whole number from 1 to 3650"),
    ("days = 3651", (1, 3650), {"whole": True}, "days = 3651 is not a whole number from 1 to 3650"),
    ("days = 7.0", (1, 3650), {"whole": True}, "days = 7.0 is not a whole number from 1 to 3650"),
    ("days = true", (1, 3650), {"whole": True}, "days = True is not a whole number from 1 to 3650"),
    ("timeout = false", (), {"above": 0}, "timeout = False is not a number above 0"),
    ("timeout = nan", (), {"above": 0}, "timeout = nan is not a number above 0"),
    ("timeout = inf", (), {"above": 0}, "timeout = inf is not a number above 0"),
    ("timeout = -inf", (), {}, "timeout = -inf is not a finite number"),
    ("timeout = nan", (), {}, "timeout = nan is not a finite number"),
    ("timeout = 0", (), {"above": 0}, "timeout = 0 is not a number above 0"),
    ("timeout = 11", (), {"above": 0, "high": 10}, "timeout = 11 is not a number above 0 and at most 10"),
    ("timeout = '5'", (), {"above": 0}, "timeout = '5' is not a number above 0"),
    ("timeout = [5]", (), {"above": 0}, "timeout = [5] is not a number above 0"),
    ("retries = -1", (0,), {"whole": True}, "retries = -1 is not a whole number of 0 or more"),
    ("ratio = 1.5", (-math.inf, 1), {}, "ratio = 1.5 is not a number of 1 or less"),
    ("status = 302", (400, 599), {"whole": True, "valid": "an HTTP error status (400-599)"},
     "status = 302 is not an HTTP error status (400-599)"),
])
def test_number_sentences(text, args, kwargs, expected):
    assert sentence(table(text).number, text.split()[0], *args, **kwargs) == f"f.toml: thing 'a': {expected}."


def test_number_required():
    assert sentence(table("").number, "days", 1, 3650, whole=True, required=True) == (
        "f.toml: thing 'a' lacks 'days'; set it to a whole number from 1 to 3650.")


# -- str_list -------------------------------------------------------------------------------------

def test_str_list():
    t = table("tags = ['core', 'x']\nnone = []")
    assert t.str_list("tags") == ("core", "x")
    assert t.str_list("none") == () and t.str_list("absent") == ()


@pytest.mark.parametrize("text,kwargs,expected", [
    ("tags = 'core'", {"example": '["core"]'}, "'tags' must be a list of strings, e.g. tags = [\"core\"], not 'core'"),
    ("tags = [1]", {}, "'tags' must be a list of strings, e.g. tags = [\"...\"], not [1]"),
    ("tags = [['core']]", {}, "'tags' must be a list of strings, e.g. tags = [\"...\"], not [['core']]"),  # too deep
    ("tags = { a = 'b' }", {}, "'tags' must be a list of strings, e.g. tags = [\"...\"], not {'a': 'b'}"),
    ("command = []", {"nonempty": True, "example": '["curl"]'},
     "'command' must be a non-empty list of strings, e.g. command = [\"curl\"], not []"),
])
def test_str_list_sentences(text, kwargs, expected):
    assert sentence(table(text).str_list, text.split()[0], **kwargs) == f"f.toml: thing 'a': {expected}."


def test_str_list_required():
    assert sentence(table("").str_list, "command", required=True, nonempty=True, example='["curl"]') == (
        "f.toml: thing 'a' lacks 'command'; set it to a non-empty list of strings, e.g. command = [\"curl\"].")


# -- mapping and sub --------------------------------------------------------------------------------

EXPECT = dict(what="clients to outcomes", example='{ beam = "refused" }')


def test_mapping_returns_a_copy():
    t = table("[expect]\nbeam = 'refused'")
    got = t.mapping("expect", keys=("attended", "beam"), values=lambda v: v == "refused", valid="refused", **EXPECT)
    assert got == {"beam": "refused"}
    got["attended"] = "x"
    assert "attended" not in t.get("expect")
    assert t.mapping("absent", **EXPECT) == {}


@pytest.mark.parametrize("text,kwargs,expected", [
    ("expect = 'refused'", {}, "'expect' must map clients to outcomes, e.g. expect = { beam = \"refused\" }, not 'refused'"),
    ("expect = {}", {"nonempty": True}, "'expect' must map clients to outcomes, e.g. expect = { beam = \"refused\" }, not {}"),
    ("expect = ['x']", {}, "'expect' must map clients to outcomes, e.g. expect = { beam = \"refused\" }, not ['x']"),
    ("expect = { atended = 'refused' }", {"keys": ("attended", "beam"), "kind": "client"},
     "'expect' names client 'atended'; known clients: attended, beam"),
    ("expect = { beam = 'fine' }", {"values": lambda v: v == "refused", "valid": "refused"},
     "'expect' must map clients to outcomes: expect.beam = 'fine' is not refused"),
    ("expect = { beam = { deeper = 'refused' } }", {"values": lambda v: isinstance(v, str), "valid": "a string"},
     "'expect' must map clients to outcomes: expect.beam = {'deeper': 'refused'} is not a string"),  # too deep
])
def test_mapping_sentences(text, kwargs, expected):
    assert sentence(table(text).mapping, "expect", **EXPECT, **kwargs) == f"f.toml: thing 'a': {expected}."


def test_mapping_required():
    assert sentence(table("").mapping, "expect", required=True, **EXPECT) == (
        "f.toml: thing 'a' lacks 'expect'; set it to a table mapping clients to outcomes, e.g. expect = { beam = \"refused\" }.")


def test_sub_names_nested_keys_in_full():
    t = table("[answer.continue]\nstdin = 3\nargs = 'x'")
    sub = t.sub("answer").sub("continue")
    assert sentence(sub.str, "stdin") == "f.toml: thing 'a': answer.continue.stdin = 3 is not a string."
    assert sentence(sub.str_list, "args") == (
        "f.toml: thing 'a': 'answer.continue.args' must be a list of strings, e.g. answer.continue.args = [\"...\"], not 'x'.")
    assert sentence(sub.str, "absent", required=True) == "f.toml: thing 'a': 'answer.continue' lacks 'absent'; set it to a string."
    assert table("").sub("absent").data == {}


# -- fixtures_dir: $HARNESS_FIXTURES, the installed package's, a checkout's ---------------------

CHECKOUT_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def fixtures_in(root: Path) -> Path:
    (root / "fixtures").mkdir(parents=True)
    (root / "fixtures" / "scenarios.toml").write_text("")
    return root / "fixtures"


def package_at(monkeypatch, where) -> None:
    """importlib.resources as datafile sees it, answering for a package installed at ``where``."""
    monkeypatch.setattr(datafile, "resources", SimpleNamespace(files=lambda package: where))


def test_fixtures_dir_prefers_the_environment_then_the_installed_package(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_FIXTURES", raising=False)
    installed = fixtures_in(tmp_path / "site-packages" / "harness")
    package_at(monkeypatch, tmp_path / "site-packages" / "harness")
    assert fixtures_dir() == installed  # before the checkout's
    mine = fixtures_in(tmp_path / "mine")
    monkeypatch.setenv("HARNESS_FIXTURES", str(mine))
    assert fixtures_dir() == mine


def test_fixtures_dir_falls_back_to_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_FIXTURES", raising=False)
    package_at(monkeypatch, tmp_path)  # an editable install: the package has no fixtures/ of its own
    assert fixtures_dir() == CHECKOUT_FIXTURES
    archive = tmp_path / "harness.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("harness/fixtures/scenarios.toml", "")
    package_at(monkeypatch, zipfile.Path(archive, "harness/"))  # imported from a zip: nothing to open as a file
    assert fixtures_dir() == CHECKOUT_FIXTURES


def test_no_fixtures_anywhere_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_FIXTURES", raising=False)
    package_at(monkeypatch, tmp_path)
    monkeypatch.setattr(datafile, "__file__", str(tmp_path / "site-packages" / "harness" / "model" / "datafile.py"))
    with pytest.raises(BadFileError) as info:
        fixtures_dir()
    assert str(info.value) == (
        "cannot find the lab's fixtures (scenarios.toml): the installed package lacks them; "
        "reinstall it from a checkout or a git URL, or set HARNESS_FIXTURES to a fixtures directory.")
