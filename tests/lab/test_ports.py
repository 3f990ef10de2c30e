"""harness.lab.ports: the fixed layout (as compose lays it out) and one sentence for a port in use."""

import socket

import pytest

from harness.errors import UsageError
from harness.lab.ports import check_ports_free, free_ports, plan_ports


def test_fixed_layout_is_policy_major_then_server_journals_and_sites():
    plan = plan_ports(20000, ["tunnel", "inspect"], 2, ["expired"])
    assert plan.proxy == {"tunnel": [20000, 20001], "inspect": [20002, 20003]}
    assert plan.server == [20004, 20005] and (plan.proxy_admin, plan.server_admin) == (20006, 20007)
    assert plan.sites == {"expired": [20008, 20009]}
    ports = [p for p, _ in plan.roles()]
    assert len(ports) == len(set(ports)) == 10


def test_free_ports_are_distinct_and_leave_the_proxy_its_own():
    plan = free_ports("127.0.0.1", 3, ["expired", "sha1"])
    ports = plan.server + plan.sites["expired"] + plan.sites["sha1"]
    assert len(set(ports)) == 9 and all(ports)
    assert plan.proxy == {} and plan.proxy_admin == 0


def test_a_port_in_use_is_named_with_its_role():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        plan = plan_ports(port - 3, ["inspect"], 1)
        role = dict((p, r) for p, r in plan.roles())[port]
        assert role == "server journal endpoint"
        with pytest.raises(UsageError, match=rf"port {port} on 127.0.0.1 \(server journal endpoint\) is "
                                                     "already in use; stop what uses it or choose another --base-port"):
            check_ports_free("127.0.0.1", [(port, role)])


def test_out_of_range_is_a_usage_error_before_any_bind():
    with pytest.raises(UsageError, match=r"port 65536 \(mock server lane 0\) is outside 1-65535"):
        check_ports_free("127.0.0.1", [(80, "proxy"), (65536, "mock server lane 0")])
