"""harness.clients.attended: the attended client warns about inspection and goes on if the person continues."""



from harness.clients import attended
from tests.clients.clienthelpers import RecordingTLSServer, forged_by_org_ca, run


def test_attended_continue_writes_after_the_warning(pki, tmp_path):
    server = RecordingTLSServer(*forged_by_org_ca(pki, "api.screenmeet.com"), tmp_path)
    got, output = run(attended, pki, server.port, "--on-warning", "continue", "--code", "c0de")
    server.wait()
    assert '"event": "warning"' in output
    assert b"POST /api/v1/sessions/join" in server.received
