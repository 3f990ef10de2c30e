"""Tests for harness.model.placeholders: the placeholders of client command templates, their values, filling them."""

from __future__ import annotations

import base64
import hashlib

import pytest

from harness.model.placeholders import PLACEHOLDERS, Invocation, curl_pins, fill, placeholder_values, template_fields


def values(**over):
    pin = "sha256/" + base64.b64encode(hashlib.sha256(b"k").digest()).decode()
    v = placeholder_values(proxy_url="http://127.0.0.1:9", trust="/t.pem", pins="/p.txt", pins_text=pin + "\n",
                           url="https://beam.screenmeet.com/", scenario="s", connect_to="127.0.0.1:8443",
                           secret="S3", lane=1)
    return {**v, **over}


def test_every_placeholder_has_a_value():
    assert set(values()) == set(PLACEHOLDERS)
    v = values()
    assert (v["host"], v["port"], v["connect_host"], v["connect_port"], v["lane"]) == (
        "beam.screenmeet.com", "443", "127.0.0.1", "8443", "1")


def test_curl_pins_form():
    a, b = (base64.b64encode(hashlib.sha256(x).digest()).decode() for x in (b"a", b"b"))
    assert curl_pins(f"# comment\nsha256/{a}\nsha256/{b}\n") == f"sha256//{a};sha256//{b}"


def test_template_fields():
    assert template_fields("--connect-to={host}:{port}:{connect_to}") == {"host", "port", "connect_to"}
    assert template_fields("%{{http_code}}") == set()  # literal braces


@pytest.mark.parametrize("template,says", [
    ("{proxy}", "unknown placeholder {proxy} in '{proxy}'; known: {proxy_url}, {trust}"),
    ("{url!r}", "unknown placeholder {url!r}"),
    ("{port:>5}", "unknown placeholder {port:>5}"),
    ("{url", "template '{url' is malformed"),
    ("%{http_code}", "unknown placeholder {http_code}"),
])
def test_bad_templates_raise_value_error_with_a_sentence(template, says):
    with pytest.raises(ValueError) as info:
        template_fields(template)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_fill_splices_whole_arguments_and_drops_empty_environment():
    run = fill(["curl", "{network}", "{url}", "{answer}"], {"HTTPS_PROXY": "{proxy_url}", "LANE": "{lane}"},
               values(proxy_url=""), splices={"{network}": ["--connect-to", "{host}:{port}:{connect_to}"],
                                              "{answer}": []}, stdin="y\n")
    assert run == Invocation(("curl", "--connect-to", "beam.screenmeet.com:443:127.0.0.1:8443",
                              "https://beam.screenmeet.com/"), {"LANE": "1"}, "y\n")
