"""Where the credentials go: the proxy's decrypted view and the server, from the journals.

The test lab keeps credentials in clear (tests/conftest.py), so these checks
search the real decrypted view, not a redacted summary.
"""

import json


def _text(records) -> str:
    return json.dumps(records)


def test_inspection_never_sees_beam_token_or_session_code(run_scenario):
    beam = run_scenario("inspected-continue", "beam")
    attended = run_scenario("inspected-decline", "attended")
    for cell in (beam, attended):
        assert cell.passed, cell.verdict.reasons
        assert cell.secret not in _text(cell.proxy_records), "credential visible to the inspection proxy"
        assert cell.secret not in _text(cell.server_records), "credential reached the server"
        assert cell.secret not in cell.output  # the client does not even print it
        intercepted = [r for r in cell.proxy_records if r["action"] == "intercepted"]
        assert intercepted and all(r["requests"] == [] for r in intercepted)


def test_exception_lets_credentials_reach_the_server_unseen(run_scenario):
    for client in ("beam", "attended"):
        cell = run_scenario("exception-wildcard", client)
        assert cell.passed, cell.verdict.reasons
        assert cell.secret in _text(cell.server_records), "credential did not reach the server"
        assert cell.secret not in _text(cell.proxy_records)
        connections = [r for r in cell.proxy_records if r["kind"] == "connection"]
        assert connections and all(r["action"] == "passed-through" and r["client_tls"] == "not-terminated"
                                   and r["requests"] == [] for r in connections)


def test_negative_a_person_who_continues_exposes_the_session_code(run_scenario):
    """The check above can fail: when the person continues past the warning, the MITM reads the code."""
    cell = run_scenario("inspected-continue", "attended")
    assert cell.passed, cell.verdict.reasons
    assert cell.secret in _text(cell.proxy_records)
    assert "session-code" in cell.verdict.observation.credentials_at_proxy
