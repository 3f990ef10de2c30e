"""harness.lab.ports: the fixed layout (as compose lays it out) and one sentence for a port in use."""

import socket

import pytest

from harness.errors import UsageError
from harness.lab.ports import check_plan_free, check_ports_free, free_ports, plan_ports


def test_fixed_layout_is_policy_major_then_server_journals_and_sites():
    plan = plan_ports(20000, ["tunnel", "inspect"], 2, ["expired"])
    assert plan.proxy == {"tunnel": [20000, 20001], "inspect": [20002, 20003]}
    assert plan.server == [20004, 20005] and (plan.proxy_admin, plan.server_admin) == (20006, 20007)
    assert plan.sites == {"expired": [20008, 20009]} and plan.pac == 20010
    ports = [p for p, _ in plan.roles()]
    assert len(ports) == len(set(ports)) == 11


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


def test_the_pac_port_follows_the_sites_and_binds_the_listen_address_with_the_proxies():
    plan = plan_ports(20000, ["inspect"], 1, ["expired"])
    assert plan.pac == 20005 and (20005, "PAC/WPAD server") in plan.roles()
    assert plan.listen_roles() == [(20000, "proxy listener inspect lane 0"), (20005, "PAC/WPAD server")]


def _taken_on_127_0_0_2_only() -> tuple[socket.socket, int]:
    """A listener on 127.0.0.2 whose port and the plan's next four are free on 127.0.0.1 (the kernel's
    choice for 127.0.0.2 may be a port another lab of this run listens on at 127.0.0.1)."""
    for _ in range(50):
        busy = socket.create_server(("127.0.0.2", 0))
        port = busy.getsockname()[1]
        try:
            check_plan_free("127.0.0.1", plan_ports(port, ["inspect"], 1))
        except UsageError:
            busy.close()
            continue
        return busy, port
    pytest.fail("no port free on 127.0.0.1 next to a kernel-chosen one on 127.0.0.2 in 50 tries")


def test_with_listen_the_public_ports_are_checked_there():
    busy, port = _taken_on_127_0_0_2_only()
    with busy:
        plan = plan_ports(port, ["inspect"], 1)  # the proxy listener's port is taken on 127.0.0.2 only
        check_plan_free("127.0.0.1", plan)
        with pytest.raises(UsageError, match=rf"port {port} on 127.0.0.2 \(proxy listener inspect lane 0\)"):
            check_plan_free("127.0.0.1", plan, "127.0.0.2")
