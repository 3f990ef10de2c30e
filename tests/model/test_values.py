"""harness.model.values: every number a person types is finite and in range, HOST:PORT is whole,
host names fit DNS and certificates, CA names fit X.509."""

import argparse

import pytest

from harness.model.values import (
    MAX_COUNT,
    certificate_name,
    file_descriptor,
    host_problem,
    lane_count,
    listen_address,
    listen_port,
    non_negative_int,
    non_negative_seconds,
    parse_https_url,
    path_argument,
    port_number,
    positive_int,
    positive_seconds,
    retry_count,
    split_host_port,
)

HUGE = "9" * 5000  # more digits than int() converts


@pytest.mark.parametrize("parse,good,bad", [
    (positive_int, {"1": 1, "40": 40, str(MAX_COUNT): MAX_COUNT}, ["0", "-1", "1.5", "x", "", "nan", "100001", HUGE]),
    (non_negative_int, {"0": 0, "7": 7}, ["-1", "2.0", "inf", "seven", "1e3", "100001", HUGE]),
    (lane_count, {"1": 1, "64": 64}, ["0", "65", "100000", "-1", "4.0", HUGE]),
    (retry_count, {"0": 0, "10000": 10000}, ["-2", "10001", "99999999999999999999", HUGE]),
    (file_descriptor, {"0": 0, "7": 7}, ["-1", "3.5", "99999999999"]),
    (port_number, {"1": 1, "65535": 65535}, ["0", "65536", "-80", "http"]),
    (listen_port, {"0": 0, "8443": 8443}, ["-1", "65536", "any"]),
    (positive_seconds, {"0.5": 0.5, "10": 10.0, "3600": 3600.0},
     ["0", "-1", "nan", "inf", "-inf", "soon", "1e300", "3600.5", "1e309", HUGE]),
    (non_negative_seconds, {"0": 0.0, "2.5": 2.5}, ["-0.1", "nan", "inf", "later", "1e300", "3601"]),
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


@pytest.mark.parametrize("text", ["127.0.0.1", ":443", "host:", "host:0", "host:65536", "host:80x", "",
                                  "a" * 64 + ".com:443", "a b:443", "[::1:443"])
def test_host_port_rejects(text):
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        split_host_port(text)


@pytest.mark.parametrize("host", ["beam.screenmeet.com", "screenmeet.com.", "127.0.0.1", "::1", "fe80::1%eth0",
                                  "a" * 63 + ".com", ".".join(["a" * 63] * 3) + "." + "a" * 61, "bücher.example"])
def test_hosts_that_fit(host):
    assert host_problem(host) is None


@pytest.mark.parametrize("host,says", [
    ("", "it is empty"),
    ("a" * 64 + ".com", "a label of 64 characters; a label has at most 63"),
    (".".join(["a" * 63] * 4), "it is 255 characters long; a host name has at most 253"),
    ("a..b", "an empty label"),
    ("a b.com", "a character a host name cannot have"),
    ("a\0b", "a character a host name cannot have"),
    ("a/b", "a character a host name cannot have"),
    ("ü" * 60 + ".com", "IDNA"),  # a label of 60 characters, but over 63 once punycoded
])
def test_hosts_that_do_not_fit(host, says):
    assert says in host_problem(host)


@pytest.mark.parametrize("url,want", [("https://beam.screenmeet.com/", ("beam.screenmeet.com", 443)),
                                      ("https://[::1]:8443/x", ("::1", 8443)), ("https://x.test:1", ("x.test", 1))])
def test_https_urls(url, want):
    assert parse_https_url(url) == want


@pytest.mark.parametrize("url,says", [
    ("https://[::1", "invalid ipv6 url"),
    ("https://x:99999/", "port out of range"),
    ("https://x:0/", "port 0 is not 1-65535"),
    ("http://x/", "not an https:// URL"),
    ("https:///path", "names no host"),
    ("https://" + "a" * 64 + ".com/", "a label of 64 characters"),
    ("https://" + "a." * 130 + "com/", "at most 253"),
])
def test_https_urls_that_are_not(url, says):
    with pytest.raises(ValueError, match=says):
        parse_https_url(url)


def test_certificate_names():
    assert certificate_name("Acme Corp TLS Inspection Root CA") == "Acme Corp TLS Inspection Root CA"
    assert certificate_name("A" * 64) == "A" * 64
    assert certificate_name("\U0001d400" * 16) == "\U0001d400" * 16  # 64 bytes in UTF-8: the most X.509 takes
    # 17 four-byte characters are 65 bytes, over cryptography's limit (hypothesis found it: --org-cn).
    for bad in ["", "   ", "A" * 65, "Acme\0CA", "Acme\nCA", "x" * 100_000, "\U0001d400" * 17, "\udc80"]:
        with pytest.raises(argparse.ArgumentTypeError, match=r"is not a certificate name \(printable, 1-64 bytes"):
            certificate_name(bad)


def test_paths():
    assert str(path_argument("reports/x")) == "reports/x"
    for bad in ["", "a\0b"]:
        with pytest.raises(argparse.ArgumentTypeError, match="is not a path"):
            path_argument(bad)


def test_listen_address_is_one_address_never_a_wildcard():
    assert listen_address("192.168.1.20") == "192.168.1.20" and listen_address("[fd00::1]") == "fd00::1"
    for text, says in [("0.0.0.0", "every interface"), ("::", "every interface"), ("lan0", "not an IP address"),
                       ("ff02::1", "multicast"), ("10.0.0.1:80", "not an IP address")]:
        with pytest.raises(argparse.ArgumentTypeError, match=says):
            listen_address(text)


def test_ip_literals():
    from harness.model.values import is_ip_literal

    assert is_ip_literal("127.0.0.1") and is_ip_literal("::1") and is_ip_literal("198.19.2.10")
    assert not any(is_ip_literal(t) for t in ("api.screenmeet.com", "[::1]", "127.0.0.1:443", "", "1.2.3"))
