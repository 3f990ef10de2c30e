"""harness.proxy.config: the proxy's configuration as data, its JSON form and the gateway addresses."""

import json
from dataclasses import fields

import pytest

from harness.errors import BadFileError
from harness.model.policy import HostPattern, Policy
from harness.proxy.config import ProxyConfig, gateway_addresses, parse_address

POLICIES = {
    "tunnel": Policy("tunnel", "tunnel"),
    "exception-wildcard": Policy("exception-wildcard", "inspect", (HostPattern.parse("*.screenmeet.com"),),
                                 upstream="expired"),
}


def make_config(**kw) -> ProxyConfig:
    options = dict(policies=POLICIES, lanes=2, ports={"tunnel": [9001, 9002]}, upstream_ports=[7001, 7002],
                   sites={"expired": [7101, 7102]}, vendor={"name": "generic"}, pki_dir="/lab/pki",
                   gateways={"tunnel": ["198.18.0.10:443", "198.18.0.11:443"]}, confdir="/lab/pki/mitmproxy",
                   upstream_trust="/lab/pki/trust-public.pem")
    return ProxyConfig(**(options | kw))


def as_json(config: ProxyConfig) -> dict:
    return json.loads(json.dumps(config.to_dict()))


# -- the JSON form ---------------------------------------------------------------------

def test_every_field_survives_json():
    config = make_config(lab_domains=("lab.test",), upstream_host=None, show_secrets=True, journal_first_seq=7)
    assert ProxyConfig.from_dict(as_json(config)) == config
    assert set(as_json(config)) == {f.name for f in fields(ProxyConfig)}
    assert as_json(config)["policies"]["exception-wildcard"] == POLICIES["exception-wildcard"].to_dict()


def test_a_missing_optional_field_takes_its_default():
    data = as_json(make_config())
    del data["lanes"], data["lab_domains"]
    config = ProxyConfig.from_dict(data)
    assert config.lanes == 1 and config.lab_domains == ("screenmeet.com", "scrn.mt", "lab.test")


@pytest.mark.parametrize("change, says", [
    ({"lanes": "2"}, """field 'lanes' must be an integer, not "2\""""),
    ({"show_secrets": 1}, "field 'show_secrets' must be true or false, not 1"),
    ({"upstream_host": 5}, "field 'upstream_host' must be a string or null, not 5"),
    ({"ports": {"tunnel": [9001, True]}}, """field 'ports["tunnel"][1]' must be an integer, not true"""),
    ({"gateways": ["198.18.0.10:443"]}, """field 'gateways' must be an object, not ["198.18.0.10:443"]"""),
    ({"policies": {"tunnel": "tunnel"}}, """field 'policies["tunnel"]' must be an object, not "tunnel\""""),
])
def test_a_wrong_type_is_one_sentence_naming_the_field(change, says):
    with pytest.raises(ValueError) as e:
        ProxyConfig.from_dict(as_json(make_config()) | change)
    assert str(e.value) == says


@pytest.mark.parametrize("name", ["policies", "confdir"])
def test_a_missing_required_field_is_named(name):
    data = as_json(make_config())
    del data[name]
    with pytest.raises(ValueError) as e:
        ProxyConfig.from_dict(data)
    assert str(e.value) == f"field {name!r} is missing"


def test_an_unknown_field_is_named_with_the_known_ones():
    with pytest.raises(ValueError) as e:
        ProxyConfig.from_dict(as_json(make_config()) | {"lane": 2})
    assert str(e.value).startswith("unknown field 'lane'; the fields are policies, lanes, ")
    assert "\n" not in str(e.value)


def test_a_bad_policy_table_says_what_the_policy_reader_says():
    with pytest.raises(ValueError, match="policy 'tunnel' has unknown keys"):
        ProxyConfig.from_dict(as_json(make_config()) | {"policies": {"tunnel": {"mode": "tunnel", "bogus": 1}}})


def test_load_turns_a_bad_file_into_one_sentence(tmp_path):
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps(as_json(make_config()) | {"lanes": None}))
    with pytest.raises(BadFileError) as e:
        ProxyConfig.load(path)
    assert str(e.value) == (f"proxy configuration {path} is invalid (field 'lanes' must be an integer, not null); "
                            "regenerate it with 'harness up'.")
    with pytest.raises(BadFileError, match="does not exist; start the proxy through 'harness up'"):
        ProxyConfig.load(tmp_path / "missing.json")


# -- gateway addresses ---------------------------------------------------------------------

def test_gateway_addresses_are_consecutive_per_policy_and_lane():
    assert gateway_addresses("198.18.0.10", ["inspect", "exception-wildcard", "exception-ip"], 2) == {
        "inspect": ["198.18.0.10:443", "198.18.0.11:443"],
        "exception-wildcard": ["198.18.0.12:443", "198.18.0.13:443"],
        "exception-ip": ["198.18.0.14:443", "198.18.0.15:443"]}


def test_parse_address_needs_an_ip_and_a_port():
    assert parse_address("198.18.0.10:443") == ("198.18.0.10", 443)
    assert parse_address("[2001:db8::1]:443") == ("2001:db8::1", 443)
    for bad in ("screenmeet.com:443", "198.18.0.10", "198.18.0.10:https"):
        with pytest.raises(ValueError, match="not IP:PORT"):
            parse_address(bad)


# -- live upstream (harness up --upstream live) ---------------------------------------------

def test_live_sends_screenmeet_names_to_their_real_address_and_port():
    config = make_config(upstream_mode="live", upstream_host="127.0.0.1")
    assert config.upstream_for("api.screenmeet.com", 443, 0) == ("api.screenmeet.com", 443)
    assert config.upstream_for("x.scrn.mt", 443, 1) == ("x.scrn.mt", 443)
    # lab.test and hostile sites stay the lab's; other hosts are still refused.
    assert config.upstream_for("a.lab.test", 443, 0) == ("127.0.0.1", 7001)
    assert config.upstream_for("api.screenmeet.com", 443, 1, "expired") == ("127.0.0.1", 7102)
    assert config.upstream_for("example.com", 443, 0) is None


def test_mock_is_the_default_and_maps_screenmeet_names_to_the_mock():
    config = make_config()
    assert config.upstream_mode == "mock"
    assert config.upstream_for("api.screenmeet.com", 443, 1) == ("127.0.0.1", 7002)


def test_an_unknown_upstream_mode_is_refused():
    with pytest.raises(ValueError, match="upstream_mode is 'internet'; it must be one of mock, live"):
        make_config(upstream_mode="internet")
    with pytest.raises(BadFileError, match="upstream_mode"):
        ProxyConfig.load(_written(make_config(), upstream_mode="internet"))


def _written(config: ProxyConfig, **changes):
    import tempfile

    path = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    path.write(json.dumps(as_json(config) | changes))
    path.close()
    return path.name
# -- IP literals (issue 13) ---------------------------------------------------------------------------

def test_the_lab_address_on_443_reaches_the_lanes_server_like_a_name():
    from tests.proxy.addonhelpers import make_config

    config = make_config()
    assert config.upstream_for("127.0.0.1", 443, 1) == ("127.0.0.1", 7002)
    assert config.upstream_for("[127.0.0.1]", 443, 0) == ("127.0.0.1", 7001)
    # Other ports of that address (the journals' admin endpoints) and other addresses stay refused.
    assert config.upstream_for("127.0.0.1", 8080, 1) is None
    assert config.upstream_for("127.0.0.2", 443, 1) is None
    assert config.upstream_for("10.0.0.1", 443, 1) is None
    # Compose: names resolve by DNS, there is no lab address.
    from dataclasses import replace

    assert replace(config, upstream_host=None).upstream_for("127.0.0.1", 443, 1) is None
