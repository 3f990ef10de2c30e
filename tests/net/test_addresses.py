"""harness.net.addresses: the lane layout (ports and gateway addresses)."""

import ipaddress

import pytest

from harness.errors import UsageError
from harness.net.addresses import check_local_address, lane_layout, url_host


def test_lane_layout_of_ports_is_policy_major_and_consecutive():
    assert lane_layout(8100, ["tunnel", "inspect"], 2) == {"tunnel": [8100, 8101], "inspect": [8102, 8103]}


def test_lane_layout_counts_ipv4_addresses_across_octets():
    layout = lane_layout(ipaddress.IPv4Address("198.51.100.254"), ["a", "b"], 2)
    assert [str(a) for a in layout["a"] + layout["b"]] == ["198.51.100.254", "198.51.100.255", "198.51.101.0",
                                                           "198.51.101.1"]


def test_lane_layout_of_one_lane_and_of_no_names():
    assert lane_layout(10, ["a", "b", "c"], 1) == {"a": [10], "b": [11], "c": [12]}
    # Negative: nothing to lay out is an empty table, not an error.
    assert lane_layout(10, [], 4) == {}


def test_a_listen_address_must_be_this_machines():
    check_local_address("127.0.0.1")
    check_local_address("127.0.0.2")  # all of 127/8 is local
    with pytest.raises(UsageError, match=r"^192.0.2.1 is not an address of this machine; choose one that"):
        check_local_address("192.0.2.1")  # TEST-NET-1: never assigned


def test_url_host_brackets_ipv6():
    assert (url_host("10.0.0.1"), url_host("fd00::1")) == ("10.0.0.1", "[fd00::1]")
