"""The server's view of a cell: yes/no/-, what it must be, and the grades (pure)."""

from harness.matrix.serverview import expected_interception, grades, interception_reasons, saw_interception
from harness.model.verdict import Observation


def request(suspected=False, letter="A", tls=True):
    r = {"kind": "http", "interception": {"suspected": suspected, "reasons": ["why"] if suspected else [],
                                          "product": None}}
    r["tls"] = {"grade": {"letter": letter, "reason": ""}} if tls else None
    return r


def obs(intercepted=0, server=0, before=0):
    return Observation(outcome="connected", exit_code=0, issuer_seen=None, pin_match=None, warned=False, secure=None,
                       intercepted=intercepted, passed_through=0, client_handshakes_failed=0, decrypted_requests=0,
                       credentials_at_proxy=(), server_requests=server, websocket_messages_at_proxy=0,
                       server_requests_before_inspection=before)


def test_saw_interception():
    assert saw_interception([]) == "-"
    assert saw_interception([{"kind": "ws-message"}]) == "-"
    assert saw_interception([request(), request()]) == "no"
    assert saw_interception([request(), request(suspected=True)]) == "yes"


def test_expected_interception():
    assert expected_interception(obs(intercepted=1, server=0)) is None  # refused: nothing reached it
    assert expected_interception(obs(intercepted=1, server=2)) == "yes"
    assert expected_interception(obs(intercepted=0, server=2)) == "no"
    assert expected_interception(obs(intercepted=1, server=2, before=2)) is None  # roaming: only pre-inspection ones


def test_interception_reasons_name_the_disagreement():
    assert interception_reasons(obs(intercepted=1, server=1), [request(suspected=True)]) == []
    assert "did not notice" in interception_reasons(obs(intercepted=1, server=1), [request()])[0]
    assert "did not intercept (why)" in interception_reasons(obs(server=1), [request(suspected=True)])[0]


def test_grades():
    assert grades([]) == "-" and grades([request(tls=False)]) == "-"
    assert grades([request(letter="B"), request(letter="A"), request(letter="B")]) == "A/B"


def test_upstream_grades_are_those_of_intercepted_connections_only():
    from harness.matrix.serverview import upstream_grades

    proxy = [{"kind": "connection", "action": "intercepted", "upstream_local": ["127.0.0.1:5000"]},
             {"kind": "connection", "action": "passed-through", "upstream_local": ["127.0.0.1:6000"]}]
    server = [{**request(letter="B"), "client": "127.0.0.1:5000"}, {**request(letter="A"), "client": "127.0.0.1:6000"}]
    assert upstream_grades(proxy, server) == {"B"}
    assert upstream_grades(proxy[1:], server) == set()
