"""Tests for harness.clients.decision: the exact words shown and the pure decisions."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.clients.decision import (
    EXCEPTION_FIX,
    NO_TTY_SENTENCE,
    ON_WARNING_CHOICES,
    WarningDecision,
    attended_warning,
    backoff_delays,
    beam_refusal,
    decide_on_warning,
    decision_message,
)

# The warning word for word as the behaviour contract (DESIGN.md section 1, which is not part of
# this repository) writes it: the copy here is what the client is held to, with no file outside
# the checkout to read.
DESIGN_WARNING = (
    "WARNING: The connection to the support server may not be secure because of an SSL certificate "
    "mismatch. If you are connected via a VPN, your traffic might be monitored. Certificate Issuer: "
    "CN=<issuer CN>. Are you sure you wish to continue?"
)


# -- the attended client's warning ------------------------------------------------

def test_warning_is_the_design_text_with_the_issuer_cn():
    assert attended_warning("Contoso TLS Inspection CA") == DESIGN_WARNING.replace(
        "<issuer CN>", "Contoso TLS Inspection CA")


def test_the_design_text_is_one_sentence_pair_with_one_placeholder():
    assert DESIGN_WARNING.count("<issuer CN>") == 1 and attended_warning("<issuer CN>") == DESIGN_WARNING
    assert re.fullmatch(r"WARNING: [^\n`]+ Are you sure you wish to continue\?", DESIGN_WARNING)


def test_warning_names_exactly_the_given_issuer():
    text = attended_warning("Zscaler Intermediate Root CA")
    assert "Certificate Issuer: CN=Zscaler Intermediate Root CA. Are you sure" in text
    assert "CN=Contoso" not in text
    assert attended_warning("A") != attended_warning("B")


def test_warning_is_one_line():
    assert "\n" not in attended_warning("Org CA")
    assert attended_warning("Org CA").startswith("WARNING: ")
    assert attended_warning("Org CA").endswith("Are you sure you wish to continue?")


# -- Beam's refusal ----------------------------------------------------------------------

def test_beam_refusal_names_host_issuer_and_fix():
    text = beam_refusal("beam.screenmeet.com", "Contoso TLS Inspection CA")
    assert "beam.screenmeet.com" in text
    assert "CN=Contoso TLS Inspection CA" in text
    assert "*.screenmeet.com" in text and EXCEPTION_FIX == "*.screenmeet.com"
    assert "No credentials were sent" in text
    assert "\n" not in text


def test_beam_refusal_is_not_the_bypassable_warning():
    text = beam_refusal("beam.screenmeet.com", "Org CA")
    assert "Are you sure" not in text
    assert not text.startswith("WARNING")


def test_beam_refusal_changes_with_host_and_issuer():
    a = beam_refusal("beam.screenmeet.com", "Org CA")
    assert beam_refusal("api.screenmeet.com", "Org CA") != a
    assert "beam.screenmeet.com" not in beam_refusal("api.screenmeet.com", "Org CA")
    assert "CN=Other CA" in beam_refusal("beam.screenmeet.com", "Other CA")
    assert "CN=Org CA" not in beam_refusal("beam.screenmeet.com", "Other CA")


# -- decide_on_warning -----------------------------------------------------------------------

def test_the_choices():
    assert ON_WARNING_CHOICES == ("ask", "continue", "abort")


@pytest.mark.parametrize("is_tty", [True, False])
@pytest.mark.parametrize("answer", ["y", "n", "", None])
def test_continue_mode_always_proceeds(is_tty, answer):
    assert decide_on_warning("continue", is_tty=is_tty, answer=answer) == WarningDecision(True, "continue")


@pytest.mark.parametrize("is_tty", [True, False])
@pytest.mark.parametrize("answer", ["y", "yes", "n", "", None])
def test_abort_mode_never_proceeds(is_tty, answer):
    assert decide_on_warning("abort", is_tty=is_tty, answer=answer) == WarningDecision(False, "abort")


@pytest.mark.parametrize("answer", ["y", "yes", "Y", "YES", "Yes", " y ", "yes\n"])
def test_ask_on_a_tty_proceeds_on_yes(answer):
    assert decide_on_warning("ask", is_tty=True, answer=answer) == WarningDecision(True, "continue")


@pytest.mark.parametrize("answer", ["n", "no", "N", "", "   ", "\n", "yess", "ye", "yes please", "oui", "1", "true"])
def test_ask_on_a_tty_declines_anything_else(answer):
    assert decide_on_warning("ask", is_tty=True, answer=answer) == WarningDecision(False, "declined")


@pytest.mark.parametrize("answer", ["y", "yes", "n", "", None])
def test_ask_without_a_tty_aborts_whatever_the_answer(answer):
    assert decide_on_warning("ask", is_tty=False, answer=answer) == WarningDecision(False, "no-tty")


def test_ask_on_a_tty_without_an_answer_aborts():
    # End of input: nobody answered.
    assert decide_on_warning("ask", is_tty=True, answer=None) == WarningDecision(False, "no-tty")
    assert decide_on_warning("ask", is_tty=True) == WarningDecision(False, "no-tty")


def test_decision_messages():
    assert decision_message(WarningDecision(True, "continue")) == "Continuing; this session is NOT secure."
    assert decision_message(WarningDecision(False, "abort")) == "Not continuing."
    assert decision_message(WarningDecision(False, "declined")) == "Not continuing."
    # Without a terminal it says why it declined: nobody can answer, and how to decide instead.
    no_tty = decision_message(decide_on_warning("ask", is_tty=False))
    assert no_tty == NO_TTY_SENTENCE
    assert "nobody can answer" in no_tty and "--on-warning continue" in no_tty and "--on-warning abort" in no_tty


# -- backoff_delays ---------------------------------------------------------------------------

def test_no_retries_no_delays():
    assert backoff_delays(0, base=0.5, cap=30, rand=lambda: 0.5) == []


def test_delays_grow_exponentially_then_cap():
    top = backoff_delays(8, base=0.5, cap=10.0, rand=lambda: 1.0)
    assert top == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    bottom = backoff_delays(8, base=0.5, cap=10.0, rand=lambda: 0.0)
    assert bottom == [d / 2 for d in top]


def test_the_longest_retry_count_stays_at_the_cap():
    """--retries 10000 (the most a person may ask for): 2 ** 1024 would overflow a float."""
    delays = backoff_delays(10_000, base=3600.0, cap=3600.0, rand=lambda: 1.0)
    assert len(delays) == 10_000 and set(delays[1:]) == {3600.0}


def test_jitter_spans_the_upper_half():
    mid = backoff_delays(3, base=1.0, cap=100.0, rand=lambda: 0.5)
    assert mid == [0.75, 1.5, 3.0]


def test_a_cap_below_base_caps_every_delay():
    assert backoff_delays(3, base=5.0, cap=2.0, rand=lambda: 1.0) == [2.0, 2.0, 2.0]


def test_rand_is_called_once_per_delay():
    calls = []

    def rand():
        calls.append(1)
        return 0.25

    assert len(backoff_delays(5, base=1, cap=4, rand=rand)) == 5
    assert len(calls) == 5


@given(retries=st.integers(0, 40), base=st.floats(0.001, 10), cap=st.floats(0.001, 120), seed=st.integers())
def test_delays_are_capped_with_jitter_in_half_to_full(retries, base, cap, seed):
    rng = random.Random(seed)
    delays = backoff_delays(retries, base=base, cap=cap, rand=rng.random)
    assert len(delays) == retries
    for attempt, delay in enumerate(delays):
        d = min(cap, base * 2 ** attempt)
        assert d / 2 <= delay <= d
        assert delay <= cap


def test_deterministic_rand_gives_deterministic_delays():
    a = backoff_delays(6, base=0.5, cap=30, rand=random.Random(7).random)
    b = backoff_delays(6, base=0.5, cap=30, rand=random.Random(7).random)
    c = backoff_delays(6, base=0.5, cap=30, rand=random.Random(8).random)
    assert a == b
    assert a != c
