"""The lab's own hygiene (DESIGN.md section 7), checked on what the CLI really produces.

* lab CAs are name-constrained by default: Python's ssl, curl and ``openssl verify``
  reject a certificate such a CA signs for another domain, a private address or an
  e-mail address (only ever connecting to 127.0.0.1); ``--no-name-constraints`` lifts it;
* after ``harness up`` every private key in the state directory is 0600 (its
  directories 0700);
* in local mode every listening socket of the proxy and the server, admin
  endpoints included, is bound to loopback (read from /proc, not from lab.json);
* journals redact credentials unless ``--show-secrets``: the reference clients' session
  code and token, and curl sending Basic (-u), Bearer, X-Api-Key, X-Auth-Token, Cookie
  and a JSON password through inspection, in both journals and every report format
  (HTML, JUnit, JSON, the table, the plugin's account), also from a lab that journals in clear.
"""

from __future__ import annotations

import base64
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

from harness.lab.local import LocalLab
from harness.lab.options import LabOptions
from harness.matrix.runner import MatrixRunner
from harness.model.clientdefs import define_client
from harness.model.policy import Policy
from harness.model.scenarios import load_scenarios
from harness.net.journal import JournalReader
from harness.pki.ca import CA, certificate_pem, load_certificates
from harness.plugin import describe_cell
from harness.reports.document import to_json
from harness.reports.publish import write_reports
from harness.reports.table import table as terminal_table
from tests.clihelpers import harness

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


class org_signer:
    """The CA that signs forged leaves (mitmproxy's), whose leaves carry the vendor's intermediates
    (the signer and, for Zscaler, the one above it) up to the deployed org root, as the proxy sends them."""

    def __init__(self, pki: Path) -> None:
        bundle = pki / "mitmproxy" / "mitmproxy-ca.pem"
        self.signer = CA.load(bundle)
        self.intermediates = [c for c in load_certificates(bundle) if c.issuer != c.subject]

    def issue_cert(self, *names: str):
        leaf = self.signer.issue_cert(*names)
        leaf.cert_chain_pems = [leaf.cert_chain_pems[0], *(certificate_pem(c) for c in self.intermediates)]
        return leaf


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
    assert {r["authorization"] for r in server if "authorization" in r} == {"Bearer [redacted]"}
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


# -- credentials through inspection, in the journals and every report format --------------------

# Distinct values, each sent one way; none may appear anywhere unless secrets are shown.
CREDENTIALS = {"basic password": "pw-3f9a1c", "api key": "apikey-7d2e90", "auth token": "authtok-51c0aa",
               "cookie": "cookie-c3d4e5", "bearer": "bearer-9b8a7f", "body password": "bodypw-1e2d3c",
               "env token": "envtok-a1b2c3"}
BASIC_B64 = base64.b64encode(f"alice:{CREDENTIALS['basic password']}".encode()).decode()
SECRET_VALUES = [*CREDENTIALS.values(), BASIC_B64]


def credential_clients() -> list:
    """curl -v through the proxy with every kind of credential: -u (Basic), custom key/token headers,
    a cookie, a JSON body password, then a Bearer token (curl sends one Authorization header at a time)."""
    c = CREDENTIALS
    common = ["curl", "-sS", "-v", "--max-time", "10", "--cacert", "{trust}", "-o", "/dev/null",
              "-H", f"X-Api-Key: {c['api key']}", "-H", f"X-Auth-Token: {c['auth token']}",
              "-H", f"Cookie: sid={c['cookie']}", "-H", "Content-Type: application/json",
              "-d", json.dumps({"name": "agent-1", "password": c["body password"]}).replace("{", "{{").replace("}", "}}")]
    table = dict(policy="unpinned", url="https://beam.screenmeet.com/beam/v1/agents/register",
                 proxy=["--proxy", "{proxy_url}"], direct=["--connect-to", "{host}:{port}:{connect_to}"],
                 env={"LAB_API_TOKEN": c["env token"]})
    return [define_client("curl-basic", command=[*common, "-u", f"alice:{c['basic password']}", "{network}", "{url}"],
                          **table),
            define_client("curl-bearer", command=[*common, "-H", f"Authorization: Bearer {c['bearer']}",
                                                  "{network}", "{url}"], **table)]


def run_credential_clients(runner: MatrixRunner) -> list:
    scenario = {s.name: s for s in load_scenarios()}["inspected-continue"]
    cells = [runner.run_cell(scenario, client) for client in credential_clients()]
    for cell in cells:
        assert cell.passed, cell.verdict.reasons  # through inspection: the proxy read them, the server got them
        decrypted = [q for r in cell.proxy_records for q in r["requests"]]
        assert decrypted and {"x-api-key", "x-auth-token", "cookie", "authorization"} <= set(decrypted[0]["headers"])
        assert {"authorization", "x-api-key", "x-auth-token", "cookie", "password"} <= set(
            cell.verdict.observation.credentials_at_proxy)
    return cells


def report_texts(directory: Path, cells: list, *, show_secrets: bool) -> dict[str, str]:
    """Every report format: the three files, the JSON ``harness run --json`` prints, the terminal table
    and the pytest plugin's account of each cell."""
    written = write_reports(directory, cells, lab={"backend": "local"}, seconds=1.0, show_secrets=show_secrets)
    texts = {p.name: p.read_text(encoding="utf-8") for p in written}
    texts["--json"] = to_json(cells, show_secrets=show_secrets)
    texts["table"] = terminal_table(cells)
    if not show_secrets:
        texts["describe_cell"] = "\n".join(describe_cell(c) for c in cells)
    return texts


@pytest.fixture(scope="module")
def redacting_runner(tmp_path_factory):
    """A lab of its own that journals as a shared one does: credentials redacted (the test lab shows them)."""
    lab = LocalLab(LabOptions(state_dir=tmp_path_factory.mktemp("redacting"), lanes=1, show_secrets=False),
                   policies={"inspect": Policy("inspect")})
    info = lab.start()
    try:
        yield MatrixRunner(info, policies={"inspect": Policy("inspect")})
    finally:
        lab.stop()


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("curl"), reason="no curl")
def test_no_credential_in_journals_or_any_report(redacting_runner, tmp_path):
    cells = run_credential_clients(redacting_runner)
    journals = json.dumps([[c.proxy_records, c.server_records] for c in cells])
    log_files = sorted(Path(redacting_runner.lab.state_dir).rglob("*.log"))
    assert {p.name for p in log_files} >= {"proxy.log", "server.log"}
    logs = "".join(p.read_text(errors="replace") for p in log_files)
    assert not [v for v in SECRET_VALUES if v in logs]  # the proxy's and the server's own logs
    reports = report_texts(tmp_path / "redacted", cells, show_secrets=False)
    assert set(reports) == {"report.html", "junit.xml", "report.json", "--json", "table", "describe_cell"}
    for what, value in zip([*CREDENTIALS, "basic base64"], SECRET_VALUES):
        assert value not in journals, f"{what} in a journal"
        for name, text in reports.items():
            assert value not in text, f"{what} in {name}"
    # What the reader still learns: which credentials went where, by name.
    # (curl -v prints "> Authorization: ..." over HTTP/1.1 and "[authorization: ...]" over HTTP/2.)
    assert "authorization: basic [redacted]" in reports["report.json"].lower()
    assert "x-api-key: [redacted]" in reports["report.html"].lower()
    assert "LAB_API_TOKEN=" in reports["junit.xml"] and "x-auth-token" in reports["report.json"]
    # --show-secrets shows them (what the command and curl's own output carried): the checks above can fail.
    shown = report_texts(tmp_path / "shown", cells, show_secrets=True)
    for name in ("report.html", "report.json"):
        assert all(value in shown[name] for value in SECRET_VALUES), name
    # JUnit keeps the command and the output's last lines (curl -v prints the Basic value earlier).
    assert all(value in shown["junit.xml"] for value in CREDENTIALS.values())


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("curl"), reason="no curl")
def test_reports_redact_a_lab_that_journals_in_clear(lab_runner, tmp_path):
    """The session lab keeps credentials in clear (tests/conftest.py): the proxy journal really holds every
    header and the body, and the reports alone must redact them."""
    cells = run_credential_clients(lab_runner)
    journals = json.dumps([c.proxy_records for c in cells])
    on_the_wire = [BASIC_B64, *(CREDENTIALS[k] for k in ("api key", "auth token", "cookie", "bearer", "body password"))]
    assert all(value in journals for value in on_the_wire)
    for name, text in report_texts(tmp_path, cells, show_secrets=False).items():
        for value in SECRET_VALUES:
            assert value not in text, f"{value} in {name}"
