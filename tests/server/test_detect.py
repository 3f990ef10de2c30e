"""The server's interception suspicion: fingerprint mismatch and product headers."""

from harness.model.vendors import load_vendors
from harness.server.detect import Interception, KnownClients, client_family, product_headers, suspect

KNOWN = KnownClients.from_json('{"curl": ["t13d_curl"], "tls-lab-reference-client": ["t13d_ref", "t12d_ref"]}')
PRODUCTS = product_headers(load_vendors())


def verdict(ua="curl/8.1.2", ja4="t13d_curl", headers=None) -> Interception:
    return suspect(user_agent=ua, ja4=ja4, headers=headers or {}, known=KNOWN, products=PRODUCTS)


def test_client_family():
    assert client_family("curl/8.1.2") == "curl"
    assert client_family("tls-lab-reference-client/1") == "tls-lab-reference-client"
    assert client_family("Mozilla/5.0 (X11)") == "mozilla"
    assert client_family("") is None and client_family(None) is None


def test_the_clients_own_fingerprint_is_not_suspected():
    assert verdict() == Interception(False)
    assert not verdict(ua="tls-lab-reference-client/1", ja4="t12d_ref").suspected


def test_another_fingerprint_under_a_known_user_agent_is_suspected():
    v = verdict(ja4="t13d_mitmproxy")
    assert v.suspected and v.product is None
    assert "names curl" in v.reasons[0] and "t13d_mitmproxy" in v.reasons[0]


def test_an_unknown_client_cannot_be_judged_by_fingerprint():
    assert not verdict(ua="Mozilla/5.0", ja4="anything").suspected
    assert not verdict(ua=None, ja4="anything").suspected
    assert not verdict(ja4=None).suspected  # no ClientHello seen


def test_product_headers_name_the_product():
    assert PRODUCTS["Zscaler Internet Access"] == ("z-forwarded-for",)
    v = verdict(headers={"z-forwarded-for": "10.0.0.5"})
    assert v.suspected and v.product == "Zscaler Internet Access" and "z-forwarded-for" in v.reasons[0]
    bluecoat = verdict(headers={"x-bluecoat-via": "ce2cfae06b3f12b4"})
    assert bluecoat.product != v.product and bluecoat.suspected


def test_a_product_is_named_only_when_all_its_headers_are_there():
    wsa = [p for p, names in PRODUCTS.items() if names == ("via", "x-imforwards")]
    assert wsa, PRODUCTS
    assert not verdict(headers={"via": "1.1 squid"}).suspected  # any forward proxy adds Via
    assert verdict(headers={"via": "1.1 wsa", "x-imforwards": "20"}).product == wsa[0]


def test_both_reasons_together():
    v = verdict(ja4="t13d_other", headers={"z-forwarded-for": "1.2.3.4"})
    assert v.suspected and len(v.reasons) == 2


def test_known_clients_file_must_be_an_object_of_lists():
    import pytest
    for bad in ('[]', '{"curl": "t13"}'):
        with pytest.raises(ValueError):
            KnownClients.from_json(bad)
