"""harness.clients.common: both reference clients' most important promise, no application byte
is written before the pin check passes (observed by a recording TLS server)."""


import pytest

from harness.clients import attended, beam
from tests.clients.clienthelpers import RecordingTLSServer, forged_by_org_ca, genuine, run


@pytest.mark.parametrize("client,host,extra,code", [
    (beam, "beam.screenmeet.com", ["--once", "--token", "tok-SECRET"], 5),
    (attended, "api.screenmeet.com", ["--on-warning", "abort", "--code", "code-SECRET"], 3),
])
def test_no_application_byte_before_the_pin_check(pki, tmp_path, client, host, extra, code):
    server = RecordingTLSServer(*forged_by_org_ca(pki, host), tmp_path)
    got, output = run(client, pki, server.port, *extra)
    server.wait()
    assert got == code, output
    assert server.handshake_done
    assert server.received == b"", f"the client wrote {server.received[:80]!r} before/despite the pin check"


def test_negative_with_a_pinned_server_the_request_is_written(pki, tmp_path):
    server = RecordingTLSServer(*genuine(pki), tmp_path)
    got, output = run(beam, pki, server.port, "--once", "--token", "tok-SECRET")
    server.wait()
    assert got == 6  # our recording server answers 500
    assert b"POST /beam/v1/agents/register" in server.received and b"tok-SECRET" in server.received
