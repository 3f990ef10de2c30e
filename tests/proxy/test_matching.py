from harness.model.policy import Policy
from harness.proxy.config import Listener
from harness.proxy.matching import destination_of
from tests.proxy.addonhelpers import make_config

LISTENER = Listener(Policy("inspect"), lane=1, port=1)


def test_the_destination_is_where_the_lab_sends_the_connect_host():
    config = make_config()
    assert destination_of({"connect_host": "api.screenmeet.com:443", "original_dst": None}, config, LISTENER) == "127.0.0.1"
    assert destination_of({"connect_host": "127.0.0.1:443", "original_dst": None}, config, LISTENER) == "127.0.0.1"


def test_a_transparent_connection_goes_to_its_original_destination():
    record = {"connect_host": None, "original_dst": "198.18.0.11:443"}
    assert destination_of(record, make_config(), LISTENER) == "198.18.0.11"


def test_no_destination_outside_the_lab_or_without_a_record():
    config = make_config()
    assert destination_of({"connect_host": "example.org:443", "original_dst": None}, config, LISTENER) is None
    assert destination_of({"connect_host": "bad", "original_dst": None}, config, LISTENER) is None
    assert destination_of({"connect_host": None, "original_dst": None}, config, LISTENER) is None
    assert destination_of(None, config, LISTENER) is None
    # A hostile site this lab does not serve: no destination rather than an error.
    hostile = Listener(Policy("h", upstream="expired"), lane=1, port=1)
    assert destination_of({"connect_host": "api.screenmeet.com:443", "original_dst": None}, config, hostile) is None
