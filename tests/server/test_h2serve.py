"""HTTP/2 at the mock server (harness/server/h2serve.py): the ALPN choice, the same routes and
journal as HTTP/1.1, through real TLS with curl (nghttp2) as the client."""

import asyncio
import subprocess

import pytest

from harness.server.h2serve import HTTP2, H2Request
from harness.server.mock import MAX_BODY


def test_an_h2_request_reads_like_an_aiohttp_one():
    r = H2Request([(":method", "POST"), (":path", "/api/v1/sessions/join?token=x"), (":authority", "api.screenmeet.com"),
                   (":scheme", "https"), ("content-type", "application/json")], b'{"code": "4711"}', transport=None)
    assert (r.method, r.path, r.host, r.version) == ("POST", "/api/v1/sessions/join", "api.screenmeet.com", HTTP2)
    assert dict(r.headers) == {"content-type": "application/json", "host": "api.screenmeet.com"}
    assert asyncio.run(r.json()) == {"code": "4711"}
    with pytest.raises(ValueError):
        asyncio.run(H2Request([(":method", "POST")], b"", None).json())


@pytest.fixture
def curl_direct(tls_lab, lab_journal):
    host, port = tls_lab.server_connect[0].rsplit(":", 1)

    def run(url: str, *extra: str) -> subprocess.CompletedProcess:
        name = url.split("/")[2]
        return subprocess.run(["curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                               "--cacert", tls_lab.pki["trust_public"], "--connect-to", f"{name}:443:{host}:{port}",
                               *extra, url], capture_output=True, text=True, timeout=60)

    return run


@pytest.mark.parametrize("url, extra, status", [
    ("https://api.screenmeet.com/api/v1/sessions/join", ["-d", '{"code": "4711"}'], 200),
    ("https://api.screenmeet.com/api/v1/sessions/join", ["-d", '{"nocode": 1}'], 400),
    ("https://beam.screenmeet.com/api/v1/sessions/join", ["-d", '{"code": "1"}'], 421),  # wrong host
    ("https://beam.screenmeet.com/beam/v1/agents/register", ["-X", "POST", "-H", "Authorization: Bearer t0k"], 200),
    ("https://beam.screenmeet.com/beam/v1/agents/register", ["-X", "POST"], 401),
    ("https://screenmeet.com/", [], 200),
    ("https://screenmeet.com/nowhere", [], 404),
    # WebSockets stay on HTTP/1.1: over h2 the path is not served.
    ("https://api.screenmeet.com/api/v1/sessions/abc/ws", [], 404),
])
def test_the_routes_over_h2_answer_and_journal_as_over_http11(curl_direct, lab_journal, url, extra, status):
    done = curl_direct(url, "--http2", *extra)
    assert done.stdout == f"{status} 2", done.stderr
    record = lab_journal.server_records(lane=0)[-1]
    assert (record["status"], record["protocol"], record["path"]) == (status, "HTTP/2", "/" + url.split("/", 3)[3])
    assert record["host"] == url.split("/")[2] and record["headers"]["host"] == record["host"]
    if status == 200 and "join" in url:
        assert record["code"] == "4711" and record["session"]
    if "Authorization: Bearer t0k" in extra:
        assert record["authorization"] == "Bearer t0k" == record["headers"]["authorization"]


def test_a_client_offering_http11_only_gets_http11(curl_direct, lab_journal):
    done = curl_direct("https://screenmeet.com/", "--http1.1")
    assert done.stdout == "200 1.1", done.stderr
    assert lab_journal.server_records(lane=0)[-1]["protocol"] == "HTTP/1.1"


def test_an_oversized_h2_body_is_refused_and_not_journaled(curl_direct, lab_journal, tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b"x" * (MAX_BODY + 1024))
    before = len(lab_journal.server_records(lane=0))
    done = curl_direct("https://api.screenmeet.com/api/v1/sessions/join", "--http2", "--data-binary", f"@{big}")
    assert done.returncode != 0 and not done.stdout.startswith("200")
    assert len(lab_journal.server_records(lane=0)) == before
