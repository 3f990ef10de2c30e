"""The lab's own hygiene (DESIGN.md section 7), checked on what the CLI really produces.

* lab CAs are name-constrained by default: Python's ssl, curl and ``openssl verify``
  reject a certificate such a CA signs for another domain, a private address or an
  e-mail address (only ever connecting to 127.0.0.1); ``--no-name-constraints`` lifts it;
* after ``harness up`` every private key in the state directory is 0600 (its
  directories 0700);
* in local mode every listening socket of the proxy and the server, admin
  endpoints included, is bound to loopback (read from /proc, not from lab.json);
* journals redact credentials unless ``--show-secrets``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from harness.net.journal import JournalReader
from harness.pki.ca import CA
from tests.cli.test_main import harness

# -- name constraints ------------------------------------------------------------------------


class OneShotTLSServer:
    """Serves ``count`` TLS connections with ``leaf`` on 127.0.0.1, answering 200 to anything."""

    def __init__(self, leaf, count: int = 1):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(self.ctx)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, args=(count,), daemon=True)
        self.thread.start()

    def _serve(self, count):
        for _ in range(count):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            except (OSError, ssl.SSLError):
                pass  # the client rejected the certificate
            finally:
                conn.close()

    def close(self):
        self.thread.join(10)
        self.sock.close()


def python_client_accepts(ca_file: Path, host: str, leaf) -> tuple[bool, str]:
    server = OneShotTLSServer(leaf)
    ctx = ssl.create_default_context(cafile=str(ca_file))
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as tcp:
            with ctx.wrap_socket(tcp, server_hostname=host) as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return True, ""
    except ssl.SSLCertVerificationError as e:
        return False, e.verify_message
    finally:
        server.close()


def curl_accepts(ca_file: Path, host: str, leaf) -> tuple[bool, str]:
    server = OneShotTLSServer(leaf)
    try:
        proc = subprocess.run(
            ["curl", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", str(ca_file),
             "--resolve", f"{host}:{server.port}:127.0.0.1", f"https://{host}:{server.port}/", "-o", os.devnull],
            capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    finally:
        server.close()
    return proc.returncode == 0, proc.stderr.strip()


def openssl_accepts(ca_file: Path, host: str, leaf) -> tuple[bool, str]:
    """``openssl verify`` of the leaf with its intermediates (offline: no connection at all)."""
    with tempfile.TemporaryDirectory() as tmp:
        leaf_file, chain_file = Path(tmp, "leaf.pem"), Path(tmp, "chain.pem")
        leaf_file.write_bytes(leaf.cert_chain_pems[0].bytes())
        chain_file.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems[1:]))
        untrusted = ["-untrusted", str(chain_file)] if len(leaf.cert_chain_pems) > 1 else []
        proc = subprocess.run(["openssl", "verify", "-CAfile", str(ca_file), *untrusted, str(leaf_file)],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


@pytest.fixture(scope="module")
def pki_dirs(tmp_path_factory):
    dirs = {"constrained": [], "unconstrained": ["--no-name-constraints"], "zscaler": ["--vendor", "zscaler"]}
    out = {}
    for name, flags in dirs.items():
        d = tmp_path_factory.mktemp(name)
        assert harness("pki", "--state-dir", str(d), *flags).returncode == 0
        out[name] = d / "pki"
    return out


def org_signer(pki: Path) -> CA:
    """The CA that signs forged leaves (mitmproxy's), with its chain up to the deployed org root."""
    signer = CA.load(pki / "mitmproxy" / "mitmproxy-ca.pem")
    root = CA.load(pki / "org-ca.pem", pki / "org-ca.key")
    if signer.cert != root.cert:
        signer.parent = root  # the vendor's intermediate: its leaves carry it in their chain
    return signer


CLIENTS = {"python-ssl": python_client_accepts,
           "curl": pytest.param(curl_accepts, marks=pytest.mark.skipif(not shutil.which("curl"), reason="no curl")),
           "openssl": pytest.param(openssl_accepts,
                                   marks=pytest.mark.skipif(not shutil.which("openssl"), reason="no openssl"))}
# Names an org CA taken from the lab must not sign for.  The checked host comes first; an address or
# mailbox rides next to a lab name, so the clients only ever connect to 127.0.0.1 (curl by --resolve).
FORBIDDEN = {"example.com": ("example.com",), "192.168.1.1": ("api.lab.test", "192.168.1.1"),
             "10.20.30.40": ("api.lab.test", "10.20.30.40"),
             "e-mail": ("api.lab.test", "someone@example.com")}


@pytest.mark.parametrize("pki_name", ["constrained", "zscaler"])
@pytest.mark.parametrize("forbidden", FORBIDDEN.values(), ids=FORBIDDEN.keys())
@pytest.mark.parametrize("client", CLIENTS.values(), ids=CLIENTS.keys())
def test_org_ca_cannot_sign_outside_the_lab(pki_dirs, client, forbidden, pki_name):
    pki = pki_dirs[pki_name]
    signer = org_signer(pki)
    ok, why = client(pki / "org-ca.pem", forbidden[0], signer.issue_cert(*forbidden))
    assert not ok and "permitted subtree violation" in why, why
    # The lab's own names work with the same CA and client (the positive next to each negative).
    ok, why = client(pki / "org-ca.pem", "api.screenmeet.com", signer.issue_cert("api.screenmeet.com"))
    assert ok, why


@pytest.mark.parametrize("forbidden", FORBIDDEN.values(), ids=FORBIDDEN.keys())
@pytest.mark.parametrize("client", CLIENTS.values(), ids=CLIENTS.keys())
def test_only_no_name_constraints_lets_the_org_ca_sign_anything(pki_dirs, client, forbidden):
    """The negative that shows the test above can fail: the same leaves pass under an unconstrained CA."""
    pki = pki_dirs["unconstrained"]
    ok, why = client(pki / "org-ca.pem", forbidden[0], org_signer(pki).issue_cert(*forbidden))
    assert ok, why


@pytest.mark.parametrize("client", CLIENTS.values(), ids=CLIENTS.keys())
def test_public_lab_ca_is_constrained_even_without_name_constraints(pki_dirs, client):
    """--no-name-constraints only concerns the inspection CAs; the 'public' lab root stays constrained."""
    pki = pki_dirs["unconstrained"]
    inter = CA.load(pki / "public-intermediate.pem", pki / "public-intermediate.key")
    inter.parent = CA.load(pki / "public-root.pem", pki / "public-root.key")
    ok, why = client(pki / "public-root.pem", "www.example.com", inter.issue_cert("www.example.com"))
    assert not ok and "permitted subtree violation" in why, why


# -- a running lab, started by the CLI, with and without --show-secrets ---------------------------

def start_lab(state_dir: Path, *extra: str) -> dict:
    proc = harness("up", "--detach", "--lanes", "1", "--state-dir", str(state_dir), *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads((state_dir / "lab.json").read_text())


@pytest.fixture(scope="module")
def labs(tmp_path_factory):
    dirs = {"redacted": tmp_path_factory.mktemp("lab-redacted"), "shown": tmp_path_factory.mktemp("lab-shown")}
    started = {}
    try:
        started["redacted"] = start_lab(dirs["redacted"])
        started["shown"] = start_lab(dirs["shown"], "--show-secrets")
        yield started
    finally:
        for d in dirs.values():
            harness("down", "--state-dir", str(d))


@pytest.mark.slow
def test_private_keys_are_0600_and_their_directories_0700(labs):
    state = Path(labs["redacted"]["state_dir"])
    keys = [p for p in state.rglob("*") if p.is_file() and (p.suffix == ".key" or p.name == "mitmproxy-ca.pem")]
    assert len(keys) >= 7 and any(p.name == "mitmproxy-ca.pem" for p in keys)
    # Whatever its name, a file holding a private key is private.
    holding_keys = [p for p in state.rglob("*") if p.is_file() and b"PRIVATE KEY-----" in p.read_bytes()]
    assert set(holding_keys) == set(keys), "a private key in a file not named *.key or mitmproxy-ca.pem"
    for path in keys:
        assert path.stat().st_mode & 0o777 == 0o600, f"{path} is {oct(path.stat().st_mode & 0o777)}"
        for parent in path.relative_to(state).parents:
            mode = (state / parent).stat().st_mode & 0o777
            assert mode & 0o077 == 0, f"{state / parent} is {oct(mode)}"


def listening_addresses(pid: int) -> list[str]:
    """HOST:PORT of every listening TCP socket the process holds (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A = LISTEN
                continue
            addr_hex, port_hex = fields[1].split(":")
            raw = bytes.fromhex(addr_hex)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # /proc prints host-order words
            found.append(f"{socket.inet_ntop(family, raw)}:{int(port_hex, 16)}")
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_every_listening_socket_binds_loopback(labs):
    info = labs["redacted"]
    for name, expected in (("proxy", len(info["proxies"]) * info["lanes"] + 1), ("server", info["lanes"] + 1)):
        addresses = listening_addresses(info["pids"][name])
        assert len(addresses) >= expected, (name, addresses)
        assert all(a.rsplit(":", 1)[0] in ("127.0.0.1", "::1") for a in addresses), (name, addresses)
    admin_ports = {int(info[k].rsplit(":", 1)[1]) for k in ("proxy_admin", "server_admin")}
    bound = {int(a.rsplit(":", 1)[1]) for name in ("proxy", "server") for a in listening_addresses(info["pids"][name])}
    assert admin_ports <= bound


def run_clients(info: dict, code: str, token: str) -> None:
    org_trust, pins = info["pki"]["trust_public_org"], info["pki"]["pins_file"]
    runs = [
        ("attended", info["proxies"]["inspect"][0], ["--on-warning", "continue", "--code", code], 0),
        ("attended", info["proxies"]["exception-wildcard"][0], ["--code", code], 0),
        ("beam", info["proxies"]["exception-wildcard"][0], ["--token", token], 0),
        ("beam", info["proxies"]["inspect"][0], ["--token", token], 5),
    ]
    for client, proxy, extra, want in runs:
        proc = harness(client, "--proxy", proxy, "--trust", org_trust, "--pins", pins, "--timeout", "5",
                       *(["--once"] if client == "beam" else []), *extra)
        assert proc.returncode == want, proc.stdout + proc.stderr
        assert code not in proc.stdout + proc.stderr and token not in proc.stdout + proc.stderr


def journals(info: dict) -> tuple[list[dict], list[dict]]:
    return (JournalReader(info["proxy_admin"]).read(settle=5), JournalReader(info["server_admin"]).read())


@pytest.mark.slow
def test_journals_redact_credentials_by_default(labs):
    info = labs["redacted"]
    code, token = "code-8f1c2e", "beam-token-5b7d9a"
    run_clients(info, code, token)
    proxy, server = journals(info)
    everything = json.dumps([proxy, server])
    assert code not in everything and token not in everything
    # The proxy still says *that* it saw a credential (the person continued past the warning) ...
    decrypted = [q for r in proxy for q in r["requests"]]
    assert [q["credentials"] for q in decrypted if q["path"] == "/api/v1/sessions/join"] == [["session-code"]]
    assert all("body" not in q for q in decrypted)
    # ... and the server that it received one.
    assert {r["code"] for r in server if "code" in r} == {"[redacted]"}
    assert {r["authorization"] for r in server if "authorization" in r} == {"[redacted]"}
    logs = "".join(p.read_text(errors="replace") for p in Path(info["state_dir"]).rglob("*.log"))
    assert code not in logs and token not in logs


@pytest.mark.slow
def test_show_secrets_journals_credentials_in_clear(labs):
    info = labs["shown"]
    code, token = "code-3a9e77", "beam-token-c40f11"
    run_clients(info, code, token)
    proxy, server = journals(info)
    decrypted = [q for r in proxy for q in r["requests"]]
    # The MITM's view: the session code the person exposed by continuing; never Beam's token.
    assert any(code in q.get("body", "") for q in decrypted)
    assert token not in json.dumps(proxy)
    assert code in {r.get("code") for r in server} and f"Bearer {token}" in {r.get("authorization") for r in server}
