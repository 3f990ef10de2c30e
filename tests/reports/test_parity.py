"""harness.reports.parity: two run documents compared cell by cell (the rule; CI runs it on real
documents of both backends, .ci/run)."""

from __future__ import annotations

import json

import pytest

from harness.reports import parity


def doc(*cells, not_run=(), vendors=None):
    lab = {"vendors": {v: {} for v in vendors}} if vendors else {"backend": "x"}
    return {"lab": lab, "cells": [{"scenario": s, "client": c, "observed": o} for s, c, o in cells],
            "not_run": [{"scenario": s, "client": c, "reason": r} for s, c, r in not_run]}


def test_same_outcomes_everywhere_is_parity():
    a = doc(("direct", "beam", "connected"), ("inspected-decline", "beam", "refused"))
    assert parity.compare(a, doc(*reversed([("direct", "beam", "connected"), ("inspected-decline", "beam", "refused")]))) == []


def test_a_different_outcome_is_named_with_both_sides():
    a = doc(("hostile-expired-tunnel", "beam", "tls-error"))
    b = doc(("hostile-expired-tunnel", "beam", "connected"))
    assert parity.compare(a, b) == [
        "hostile-expired-tunnel/beam: local observed tls-error, compose observed connected."]


def test_a_skip_is_a_difference_unless_a_container_cannot_have_it(monkeypatch):
    a = doc(("hostile-expired-tunnel", "beam", "tls-error"))
    b = doc(not_run=[("hostile-expired-tunnel", "beam", "the compose lab serves no hostile site 'expired'.")])
    assert parity.compare(a, b) == ["hostile-expired-tunnel/beam: the compose run left it out "
                                    "(the compose lab serves no hostile site 'expired'.)."]
    monkeypatch.setattr(parity, "CONTAINER_LIMITS", ("a container has no X.",))
    b = doc(not_run=[("hostile-expired-tunnel", "beam", "a container has no X.")])
    assert parity.compare(a, b) == []
    # Negative: the same reason on the local side is still a difference, and a missing cell too.
    assert parity.compare(b, a) != [] and parity.compare(a, doc()) == [
        "hostile-expired-tunnel/beam: the compose run has no such cell."]


def test_vendor_runs_match_by_occurrence_and_name_the_vendor():
    a = doc(("untrusted", "beam", "tls-error"), ("untrusted", "beam", "connected"), vendors=["zscaler", "fortinet"])
    b = doc(("untrusted", "beam", "tls-error"), ("untrusted", "beam", "tls-error"), vendors=["zscaler", "fortinet"])
    assert parity.compare(a, b) == ["untrusted/beam (fortinet): local observed connected, compose observed tls-error."]


def test_command_exit_codes(tmp_path, capsys):
    same, other = tmp_path / "a.json", tmp_path / "b.json"
    same.write_text(json.dumps(doc(("direct", "beam", "connected"))))
    other.write_text(json.dumps(doc(("direct", "beam", "refused"))))
    assert parity.main([str(same), str(same)]) == 0 and "all 1 cells" in capsys.readouterr().out
    assert parity.main([str(same), str(other)]) == 1 and "direct/beam" in capsys.readouterr().out
    assert parity.main([str(same)]) == 2


@pytest.mark.parametrize("content,says", [("[]", "not a 'harness run --json' document"),
                                          ("{", "not a 'harness run --json' document")])
def test_bad_documents_are_one_sentence(tmp_path, capsys, content, says):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert parity.main([str(bad), str(bad)]) == 2 and says in capsys.readouterr().err
    assert parity.main([str(tmp_path / "missing.json"), str(bad)]) == 2
