from mitmproxy.http import Headers

from harness.proxy.headers import added_headers, apply


def test_templates_get_the_client_address():
    assert added_headers({"Z-Forwarded-For": "{client_ip}", "X-Via": "fixed"}, "10.0.0.7") == [
        ("Z-Forwarded-For", "10.0.0.7"), ("X-Via", "fixed")]
    assert added_headers({"Z-Forwarded-For": "{client_ip}"}, None) == [("Z-Forwarded-For", "unknown")]
    assert added_headers({}, "10.0.0.7") == []


def test_apply_replaces_the_clients_copy_but_appends_to_via():
    h = Headers(host="a", **{"X-BlueCoat-Via": "forged-by-client", "Via": "1.1 upstream"})
    apply(h, [("X-BlueCoat-Via", "ce2cfae06b3f12b4"), ("Via", "1.1 wsa"), ("X-IMForwards", "20")])
    assert h.get_all("X-BlueCoat-Via") == ["ce2cfae06b3f12b4"]
    assert h["Via"] == "1.1 upstream, 1.1 wsa" and h["X-IMForwards"] == "20" and h["host"] == "a"


def test_apply_adds_via_when_there_is_none():
    h = Headers(host="a")
    apply(h, [("Via", "1.1 wsa")])
    assert h["Via"] == "1.1 wsa"
