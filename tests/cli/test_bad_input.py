"""Bad input and broken peers through the real command line (subprocesses): each is answered
with one sentence that says what is wrong and what to do, a non-zero exit and no traceback.

Cross-cutting: several commands and clients. Complements tests/cli/test_run.py (unwritable state dir
for 'run'), tests/cli/test_pki.py ('harness pki --check'), tests/cli/test_up.py (ports) and
tests/clients/test_transport.py (in-process timeouts and garbage instead of TLS).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import threading
import time

import pytest

from harness.pki.lab import LabPKI
from tests.clihelpers import ROOT, assert_one_sentence_error, harness

# -- files: trust bundles, pins, CA files ---------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return LabPKI.generate(tmp_path_factory.mktemp("pki"))


def bad_file(tmp_path, kind: str, pki):
    path = tmp_path / f"{kind}.pem"
    content = {
        "garbage": os.urandom(512),
        "empty": b"",
        "truncated": b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n",
        "key-only": pki.server_key.read_bytes(),
        "text": b"this is not a certificate\n",
    }.get(kind)
    if kind == "directory":
        path.mkdir()
    elif kind != "missing":
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("kind,says", [
    ("garbage", "holds no valid PEM certificate"),
    ("empty", "holds no valid PEM certificate"),
    ("truncated", "holds no valid PEM certificate"),
    ("key-only", "holds no valid PEM certificate"),
    ("missing", "does not exist"),
    ("directory", "is a directory, not a regular file"),
])
@pytest.mark.parametrize("client", ["beam", "attended"])
def test_bad_trust_bundle(tmp_path, pki, kind, says, client):
    trust = bad_file(tmp_path, kind, pki)
    proc = harness(client, "--trust", str(trust), "--pins", str(pki.pins_file), "--no-proxy", "--once"
                   if client == "beam" else "--no-proxy")
    assert_one_sentence_error(proc, 2)
    assert says in proc.stderr and str(trust) in proc.stderr and "harness pki" in proc.stderr


@pytest.mark.parametrize("content,says", [
    (b"sha256/" + b"A" * 22 + b"==\n", "decodes to 16 bytes, a SHA-256 pin has 32"),
    (b"sha256/not*base64*at*all\n", "not valid base64"),
    (b"# only a comment\n\n", "holds no pin"),
    (b"", "holds no pin"),
    (b"\xff\xfe\x00garbage", "is not UTF-8 text"),
    (b"sha1/" + b"A" * 27 + b"=\n", "does not start with 'sha256/'"),
])
def test_malformed_pins_file(tmp_path, pki, content, says):
    pins = tmp_path / "pins.txt"
    pins.write_bytes(content)
    proc = harness("beam", "--trust", str(pki.trust_public), "--pins", str(pins), "--no-proxy", "--once")
    assert_one_sentence_error(proc, 2)
    assert says in proc.stderr and str(pins) in proc.stderr


def test_pins_file_is_a_directory(tmp_path, pki):
    proc = harness("beam", "--trust", str(pki.trust_public), "--pins", str(tmp_path), "--once")
    assert_one_sentence_error(proc, 2)
    assert "is a directory, not a regular file" in proc.stderr


@pytest.mark.parametrize("content,says", [
    ("cert-only", "holds no private key (a certificate without its key?)"),
    ("garbage", "holds no valid PEM certificate"),
    ("other-key", "does not belong to certificate"),
])
def test_proxy_with_a_bad_organisation_ca(tmp_path, pki, content, says):
    """The proxy's CA file (mitmproxy-ca.pem in the confdir): not mitmproxy's traceback."""
    confdir = tmp_path / "confdir"
    confdir.mkdir()
    data = {"cert-only": pki.org_ca.read_bytes(), "garbage": os.urandom(300),
            "other-key": pki.server_key.read_bytes() + pki.org_ca.read_bytes()}[content]
    (confdir / "mitmproxy-ca.pem").write_bytes(data)
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "harness.proxy", "--policies", str(ROOT / "fixtures" / "policies.toml"),
                           "--confdir", str(confdir), "--base-port", "0"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, stdin=subprocess.DEVNULL)
    assert_one_sentence_error(proc, 2)
    assert says in proc.stderr and "harness pki" in proc.stderr


# -- names, URLs and the environment --------------------------------------------------------

@pytest.mark.parametrize("command", ["up", "run", "pki"])
def test_unknown_vendor(tmp_path, command):
    if "--vendor" not in harness(command, "--help").stdout:
        pytest.skip(f"'harness {command}' has no --vendor option")
    proc = harness(command, "--vendor", "no-such-vendor", "--state-dir", str(tmp_path / "state"))
    assert_one_sentence_error(proc, 2)
    assert "unknown vendor 'no-such-vendor'; choose one of:" in proc.stderr


@pytest.mark.parametrize("proxy", ["http://127.0.0.1:notaport", "http://:8080", "http://127.0.0.1:99999",
                                   "socks5://127.0.0.1:1080", "http://[::1"])
def test_malformed_proxy_url(pki, proxy):
    proc = harness("beam", "--proxy", proxy, "--pins", str(pki.pins_file), "--once")
    assert_one_sentence_error(proc, 2)
    assert "is malformed; write it as http://HOST:PORT" in proc.stderr


@pytest.mark.parametrize("args,says", [
    (["--url", "https://[::1"], "server URL 'https://[::1' is malformed"),
    (["--url", "https://beam.screenmeet.com:0"], "is malformed (port 0 is not 1-65535); write it as https://HOST[:PORT]"),
    (["--url", "https://bad host/"], "is malformed (its host 'bad host': it holds a character a host name cannot have)"),
    (["--url", f"https://{'a' * 64}.com/"], "a label of 64 characters; a label has at most 63"),
    (["--connect-to", "127.0.0.1:99999"], "write it as HOST:PORT (port 1-65535)"),
    (["--connect-to", "[::1"], "write it as HOST:PORT (port 1-65535)"),
    (["--connect-to", f"{'a' * 64}.com:443"], "write it as HOST:PORT (port 1-65535)"),
    (["--proxy", f"http://{'a' * 64}.com:8080"], "is malformed (its host: it has a label of 64 characters"),
    (["--timeout", "-1"], "is not a number of seconds above 0"),
    (["--timeout", "nan"], "is not a number of seconds above 0"),
    (["--timeout", "1e300"], "is not a number of seconds above 0, at most 3600"),
    (["--backoff-base", "-0.5"], "is not a number of seconds from 0 to 3600"),
    (["--backoff-cap", "1e300"], "is not a number of seconds from 0 to 3600"),
    (["--interval", "inf"], "is not a number of seconds from 0 to 3600"),
    (["--retries", "-2"], "is not a number of retries from 0 to 10000"),
    (["--retries", "99999999999999999999"], "is not a number of retries from 0 to 10000"),
    (["--heartbeats", "1e6"], "is not a whole number from 0 to 100000"),
])
def test_malformed_client_arguments(pki, args, says):
    proc = harness("beam", *args, "--pins", str(pki.pins_file), "--no-proxy", "--once")
    assert_one_sentence_error(proc, 2)
    assert says in proc.stderr


def test_malformed_https_proxy_environment(pki):
    env = {**os.environ, "HTTPS_PROXY": "proxy.corp:eighty", "NO_PROXY": ""}
    proc = harness("attended", "--pins", str(pki.pins_file), env=env)
    assert_one_sentence_error(proc, 2)
    assert "proxy URL 'proxy.corp:eighty' is malformed" in proc.stderr


@pytest.mark.parametrize("how", ["beam", "attended", "probe", "env"])
@pytest.mark.parametrize("proxy", ["http://lab@127.0.0.1:3128", "http://:hunter2@127.0.0.1:3128",
                                   "http://a%3Ab:hunter2@127.0.0.1:3128"])
def test_a_bad_proxy_login(pki, how, proxy):
    """Issue 14: a proxy login that cannot be sent is one sentence and exit 2, without the password."""
    env = {**os.environ, "NO_PROXY": ""}
    if how == "env":
        env["HTTPS_PROXY"] = proxy
        proc = harness("beam", "--pins", str(pki.pins_file), "--once", env=env)
    elif how == "probe":
        proc = harness("probe", "beam.screenmeet.com", "--proxy", proxy, env=env)
    else:
        proc = harness(how, "--proxy", proxy, "--pins", str(pki.pins_file), *(["--once"] if how == "beam" else []), env=env)
    assert_one_sentence_error(proc, 2)
    assert "has a bad login" in proc.stderr and "hunter2" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("command", ["up", "pki"])
def test_unwritable_state_dir(tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = harness(command, "--state-dir", str(blocker / "state"))
    assert_one_sentence_error(proc, 1)
    assert "not writable" in proc.stderr and "--state-dir" in proc.stderr


def test_compose_without_the_docker_command(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # an empty directory: no docker, no docker-compose
    for args in (["up", "--lab", "compose", "--state-dir", str(tmp_path / "s")], ["down", "--lab", "compose"]):
        proc = harness(*args, env=env)
        assert_one_sentence_error(proc, 1)
        assert "the docker command is not installed; install Docker Engine or use --lab local." in proc.stderr


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker command (not an engine)")
def test_compose_with_a_dead_docker_engine(tmp_path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    proc = harness("up", "--lab", "compose", "--state-dir", str(tmp_path / "s"), env=env, timeout=60)
    assert_one_sentence_error(proc, 1)
    assert "no Docker engine answers; start dockerd or use --lab local." in proc.stderr


# -- broken peers: a server (or proxy) that answers garbage, too much, or nothing -------------

class ScriptedServer:
    """A TLS server with the genuine (pinned) certificate whose answers are scripted.

    It serves at most ``max_connections`` connections and stops by itself after
    ``lifetime`` seconds, whatever the client does.
    """

    def __init__(self, pki, script, *, tls: bool = True, max_connections: int = 2, lifetime: float = 10.0):
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(pki.server_chain, pki.server_key)
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.end = time.monotonic() + lifetime
        self.max_connections = max_connections
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        served = 0
        while served < self.max_connections and time.monotonic() < self.end:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            served += 1
            conn.settimeout(max(0.1, self.end - time.monotonic()))
            sock = conn
            try:
                sock = self.ctx.wrap_socket(conn, server_side=True) if self.ctx else conn
                self.script(sock, served, self.end)
            except (OSError, ssl.SSLError):
                pass
            finally:
                sock.close()  # the TLS socket owns the descriptor once wrapped
                conn.close()
        self.listener.close()

    def close(self):
        self.end = 0
        self.thread.join(5)


def read_request(sock) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def answer(raw: bytes):
    def script(sock, n, end):
        read_request(sock)
        sock.sendall(raw)
    return script


def oversized_body(sock, n, end):
    read_request(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n")
    chunk = b"x" * 65536
    for _ in range(3000000 // len(chunk)):
        sock.sendall(chunk)  # the client gives up after 1 MiB: then this raises and the script ends


def silent(sock, n, end):
    read_request(sock)
    while time.monotonic() < end and sock.recv(1):  # until the client hangs up (or the lifetime ends)
        pass


def trickle(sock, n, end):
    read_request(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    while time.monotonic() < end:
        sock.sendall(b"X")
        time.sleep(0.1)  # deliberate pacing: a server that drips one byte at a time


def registers_then_bad_websocket(sock, n, end):
    request = read_request(sock)
    if n == 1:
        body = json.dumps({"agent_id": "a1", "heartbeat_path": "/beam/v1/agents/a1/heartbeat"}).encode()
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(body), body))
    else:
        assert b"Upgrade: websocket" in request or b"upgrade: websocket" in request.lower()
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: bm90LXRoZS1yaWdodC1rZXk=\r\n\r\n\x81\x05hello")


BROKEN_SERVERS = {
    "garbage": (answer(b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe\r\n\r\n"), "is not valid HTTP"),
    "oversized-body": (oversized_body, "is larger than 1048576 bytes; the server is broken or hostile"),
    "oversized-headers": (answer(b"HTTP/1.1 200 OK\r\nX-Filler: " + b"a" * 200_000 + b"\r\n\r\n"), "is not valid HTTP"),
    "not-json": (answer(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\n<html>"), "not JSON"),
    "closes-without-answer": (answer(b""), "closed the connection without answering POST /beam/v1/agents/register"),
    "silent": (silent, "timed out waiting for the answer to POST /beam/v1/agents/register"),
    "trickle": (trickle, "timed out waiting for the answer to POST /beam/v1/agents/register (more than 1s)"),
    "bad-websocket": (registers_then_bad_websocket, "WebSocket"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_SERVERS))
def test_beam_against_a_broken_server(pki, case):
    script, says = BROKEN_SERVERS[case]
    server = ScriptedServer(pki, script)
    try:
        start = time.monotonic()
        proc = harness("beam", "--trust", str(pki.trust_public), "--pins", str(pki.pins_file), "--no-proxy",
                       "--connect-to", f"127.0.0.1:{server.port}", "--once", "--timeout", "1", "--token", "tok-X",
                       timeout=30)
        elapsed = time.monotonic() - start
    finally:
        server.close()
    assert_one_sentence_error(proc, 6)
    assert proc.stderr.startswith("ERROR: network error: ") and says in proc.stderr, proc.stderr
    assert elapsed < 10, f"the client took {elapsed:.1f}s against a {case} server"


def test_attended_against_a_silent_server(pki):
    server = ScriptedServer(pki, silent)
    try:
        proc = harness("attended", "--trust", str(pki.trust_public), "--pins", str(pki.pins_file), "--no-proxy",
                       "--connect-to", f"127.0.0.1:{server.port}", "--timeout", "0.5", timeout=30)
    finally:
        server.close()
    assert_one_sentence_error(proc, 6)
    assert "timed out waiting for the answer to POST /api/v1/sessions/join" in proc.stderr


@pytest.mark.parametrize("case,script,says", [
    ("silent", silent, "timed out waiting for the proxy's answer to CONNECT beam.screenmeet.com:443"),
    ("trickle", trickle, "timed out waiting for the proxy's answer to CONNECT beam.screenmeet.com:443 (more than 1s)"),
    ("garbage", answer(b"\x16\x03\x01 this is TLS, not HTTP\r\n\r\n"), "with something that is not HTTP"),
])
def test_beam_against_a_broken_proxy(pki, case, script, says):
    proxy = ScriptedServer(pki, script, tls=False)
    try:
        proc = harness("beam", "--trust", str(pki.trust_public), "--pins", str(pki.pins_file),
                       "--proxy", f"http://127.0.0.1:{proxy.port}", "--once", "--timeout", "1", timeout=30)
    finally:
        proxy.close()
    assert_one_sentence_error(proc, 6)
    assert says in proc.stderr, proc.stderr


def cut_handshake(sock, n, end):
    sock.recv(4096)  # the ClientHello; then hang up, as a proxy that restarts (or refuses) does


@pytest.mark.parametrize("retries,events", [(["--once"], 0), (["--retries", "2"], 2)])
def test_beam_retries_a_handshake_cut_off_then_calls_it_a_tls_failure(pki, retries, events):
    server = ScriptedServer(pki, cut_handshake, tls=False, max_connections=3)
    try:
        proc = harness("beam", "--trust", str(pki.trust_public), "--pins", str(pki.pins_file), "--no-proxy",
                       "--connect-to", f"127.0.0.1:{server.port}", "--timeout", "2", "--backoff-base", "0.01",
                       "--backoff-cap", "0.02", *retries, timeout=30)
    finally:
        server.close()
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.count("retrying in") == events
    assert proc.stderr.splitlines()[-1].startswith("ERROR: TLS verification failed for beam.screenmeet.com: "
                                                  "TLS handshake failed")


@pytest.mark.parametrize("args,code", [
    (["run", "--scenario", "no-such-scenario"], 2),
    (["run", "--lanes", "0"], 2),
    (["frobnicate"], 2),
    (["beam", "--pins", "/nonexistent/pins.txt"], 2),
    (["beam", "--pins", "README.md"], 2),
    (["attended", "--pins", "README.md", "--proxy", "ftp://x"], 2),
    (["attended", "--url", "http://plain"], 2),
])
def test_bad_input_is_one_sentence(args, code, tmp_path):
    proc = harness(*args, "--state-dir", str(tmp_path)) if args[0] == "run" else harness(*args)
    assert_one_sentence_error(proc, code)
