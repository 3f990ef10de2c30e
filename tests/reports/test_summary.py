"""harness.reports.summary: what the journals say, for SUMMARY.md (pure)."""

from harness.reports.summary import READ, REFUSED_AFTER, REFUSED_TLS, summarize, summary_markdown


def record(**kw) -> dict:
    base = {"kind": "connection", "policy": "inspect", "sni": "api.screenmeet.com", "connect_host": None,
            "action": "intercepted", "forged_issuer": "Acme Root", "exception": None, "client": "127.0.0.1:5000",
            "client_tls": "established", "client_tls_error": None, "requests": [], "open": False}
    return base | kw


def join(agent: str | None = None) -> dict:
    return {"method": "POST", "path": "/api/v1/sessions/join", "headers": {"user-agent": agent} if agent else {}}


def test_each_inspected_connection_says_what_its_client_did():
    s = summarize([
        record(requests=[join("attended/1")]),
        record(sni="beam.screenmeet.com"),
        record(client_tls="failed", client_tls_error="unknown ca"),
        record(open=True),  # still open: it may yet send requests, so no verdict
    ], [])
    assert [o.outcome for o in s.outcomes] == [READ, REFUSED_AFTER, REFUSED_TLS]
    assert s.outcomes[0].user_agent == "attended/1" and s.outcomes[2].detail == "unknown ca"
    api = s.inspected["api.screenmeet.com"]
    assert api.connections == 3 and api.issuers == {"Acme Root"} and api.requests == ["POST /api/v1/sessions/join"]


def test_pass_through_is_excepted_and_never_a_client_outcome():
    s = summarize([record(action="passed-through", policy="exception-wildcard", exception="*.screenmeet.com",
                          forged_issuer=None, sni=None, connect_host="beam.screenmeet.com:443")], [])
    assert list(s.excepted) == ["beam.screenmeet.com"] and not s.inspected and not s.outcomes
    assert s.excepted["beam.screenmeet.com"].exceptions == {"*.screenmeet.com"}


def test_blocked_and_unseen_connections_are_left_out():
    s = summarize([record(action="blocked"), record(action=None)], [])
    assert not s.inspected and not s.excepted and not s.outcomes


def test_server_requests_are_counted_and_messages_are_not():
    s = summarize([], [{"kind": "http", "host": "api.screenmeet.com", "method": "GET", "path": "/", "status": 200},
                       {"kind": "ws-message", "host": "api.screenmeet.com", "path": "/ws"}])
    assert s.server_requests == ["api.screenmeet.com GET / 200"]


def test_markdown_has_the_three_sections_and_escapes_table_cells():
    s = summarize([record(requests=[join("a|b")]), record(action="passed-through", sni="beam.screenmeet.com")], [])
    text = summary_markdown(s, title="T", facts=["fact one"], files=["f.har: the HAR"])
    assert text.startswith("# T\n\n* fact one\n")
    for heading in ("## Inspected", "## Excepted", "## Clients under inspection", "## Files"):
        assert heading in text
    assert "a\\|b" in text and "* f.har: the HAR" in text
    empty = summary_markdown(summarize([], []), title="T", facts=[], files=[])
    assert "Nothing was inspected." in empty and "Nothing was passed through." in empty
