"""The proxy-behaviour keys of vendor profiles (issue 13): exception_match, connect_ports,
request_headers; how they load, what they refuse, and the shipped profiles' facts."""

import pytest

from harness.errors import BadFileError
from harness.model.vendors import VendorProfile, load_vendors
from tests.model.vendorhelpers import GOOD, write

KEYS = '''exception_match = "destination"
connect_ports = [443, 8443]
request_headers = { "X-Acme-Via" = "acme {client_ip}" }
'''
SOURCES = '''exception_match = "doc: x"
connect_ports = "doc: x"
request_headers = "sample: x"
'''


def profile(keys: str = KEYS, sources: str = SOURCES, tmp_path=None) -> str:
    return GOOD.replace("\n[vendor.acme.source]\n", "\n" + keys + "\n[vendor.acme.source]\n") + sources


def test_the_keys_load_and_survive_the_proxys_json(tmp_path):
    v = load_vendors(write(tmp_path, profile()))["acme"]
    assert (v.exception_match, v.connect_ports, v.request_headers) == (
        "destination", (443, 8443), {"X-Acme-Via": "acme {client_ip}"})
    again = VendorProfile.from_dict(v.to_dict())
    assert again == v and again.connect_ports == (443, 8443) and again.request_headers == v.request_headers


def test_without_them_a_profile_matches_names_allows_every_port_and_adds_nothing(tmp_path):
    v = load_vendors(write(tmp_path, GOOD))["acme"]
    assert (v.exception_match, v.connect_ports, v.request_headers) == ("sni", None, {})
    assert v.allows_port(443) and v.allows_port(9443)


def test_allows_port_follows_the_list(tmp_path):
    v = load_vendors(write(tmp_path, profile()))["acme"]
    assert v.allows_port(443) and v.allows_port(8443)
    assert not v.allows_port(9443) and not v.allows_port(80)


@pytest.mark.parametrize("change, sentence", [
    (('"destination"', '"address"'), "exception_match = 'address' is not one of sni, destination"),
    (("[443, 8443]", "[]"), "connect_ports must be a non-empty list of TCP ports"),
    (("[443, 8443]", "[0]"), "connect_ports must be a non-empty list of TCP ports"),
    (("[443, 8443]", "[443, true]"), "connect_ports must be a non-empty list of TCP ports"),
    (("[443, 8443]", '"443"'), "connect_ports must be a non-empty list of TCP ports"),
    (('"X-Acme-Via"', '"X Acme"'), "request_headers names 'X Acme', which is not an HTTP header name"),
    (('"acme {client_ip}"', "3"), "request_headers.X-Acme-Via = 3 is not a printable string"),
    (('"acme {client_ip}"', '"a\\nb"'), "is not a printable string"),
])
def test_bad_values_are_one_sentence(tmp_path, change, sentence):
    old, new = change
    with pytest.raises(BadFileError) as info:
        load_vendors(write(tmp_path, profile(KEYS.replace(old, new))))
    assert sentence in str(info.value) and str(info.value).endswith(".") and "'acme'" in str(info.value)


def test_every_key_needs_its_source(tmp_path):
    with pytest.raises(BadFileError, match="connect_ports needs a source"):
        load_vendors(write(tmp_path, profile(sources=SOURCES.replace('connect_ports = "doc: x"\n', ""))))


# -- the shipped facts -----------------------------------------------------------------------------

VENDORS = load_vendors()


@pytest.mark.parametrize("name, mode", [
    ("generic", "sni"), ("zscaler", "sni"), ("netskope", "sni"),
    ("palo-alto", "destination"), ("fortinet", "destination")])
def test_name_matching_proxies_and_destination_matching_firewalls(name, mode):
    assert VENDORS[name].exception_match == mode


@pytest.mark.parametrize("name, header", [
    ("zscaler", "Z-Forwarded-For"), ("symantec-bluecoat", "X-BlueCoat-Via"),
    ("cisco-wsa", "Via"), ("cisco-wsa", "X-IMForwards")])
def test_products_announce_themselves_with_their_documented_headers(name, header):
    v = VENDORS[name]
    assert header in v.request_headers and v.source_kind("request_headers") == "sample"


def test_only_the_wsa_restricts_connect_ports():
    assert {n for n, v in VENDORS.items() if v.connect_ports} == {"cisco-wsa"}
    assert VENDORS["cisco-wsa"].allows_port(443) and not VENDORS["cisco-wsa"].allows_port(9443)
