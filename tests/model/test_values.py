"""harness.model.values: every number a person types is finite and in range, HOST:PORT is whole."""

import argparse

import pytest

from harness.model.values import (
    listen_port,
    non_negative_int,
    non_negative_seconds,
    port_number,
    positive_int,
    positive_seconds,
    split_host_port,
)


@pytest.mark.parametrize("parse,good,bad", [
    (positive_int, {"1": 1, "40": 40}, ["0", "-1", "1.5", "x", "", "nan"]),
    (non_negative_int, {"0": 0, "7": 7}, ["-1", "2.0", "inf", "seven"]),
    (port_number, {"1": 1, "65535": 65535}, ["0", "65536", "-80", "http"]),
    (listen_port, {"0": 0, "8443": 8443}, ["-1", "65536", "any"]),
    (positive_seconds, {"0.5": 0.5, "10": 10.0}, ["0", "-1", "nan", "inf", "-inf", "soon"]),
    (non_negative_seconds, {"0": 0.0, "2.5": 2.5}, ["-0.1", "nan", "inf", "later"]),
])
def test_numbers_in_range_or_one_sentence(parse, good, bad):
    for text, value in good.items():
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=f"^{text!r} is not "):
            parse(text)


@pytest.mark.parametrize("text,want", [("127.0.0.1:8443", ("127.0.0.1", 8443)), ("[::1]:443", ("::1", 443)),
                                        ("proxy:8100", ("proxy", 8100))])
def test_host_port(text, want):
    assert split_host_port(text) == want


@pytest.mark.parametrize("text", ["127.0.0.1", ":443", "host:", "host:0", "host:65536", "host:80x", ""])
def test_host_port_rejects(text):
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        split_host_port(text)
