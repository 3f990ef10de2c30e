"""harness.cli.banner: what 'harness up' prints about the running lab."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import replace

from harness.cli import banner
from harness.cli.banner import describe_lab, harness_command, try_lines
from harness.lab.info import LabInfo, Machines, Transparent
from tests.clihelpers import ROOT

PKI = {"org_ca": "/s/pki/org-ca.pem", "trust_public": "/s/pki/trust-public.pem",
       "trust_public_org": "/s/pki/trust-public-org.pem", "pins_file": "/s/pki/pins.txt"}


def info(**changes) -> LabInfo:
    fields = dict(backend="local", state_dir="/s", lanes=2,
                  proxies={"inspect": ["http://127.0.0.1:9001", "http://127.0.0.1:9002"],
                           "exception-wildcard": ["http://127.0.0.1:9011", "http://127.0.0.1:9012"]},
                  server_connect=["127.0.0.1:9100", "127.0.0.1:9101"], proxy_admin="http://127.0.0.1:9200",
                  server_admin="http://127.0.0.1:9201", pki=PKI, org_issuer_cn="Acme Corp TLS Inspection CA")
    return LabInfo(**{**fields, **changes})


def test_names_the_ca_trust_pins_lane_zero_and_lab_json():
    text = describe_lab(info())
    # The PKI files are not there: the CN is named, no file claimed.
    assert "(local, 2 lane(s))" in text and "inspection CA     CN=Acme Corp TLS Inspection CA\n" in text
    assert "public + org CA: /s/pki/trust-public-org.pem" in text and "pins              /s/pki/pins.txt" in text
    assert "http://127.0.0.1:9001" in text and "http://127.0.0.1:9002" not in text  # lane 0 only
    assert "curl --proxy http://127.0.0.1:9001 --cacert /s/pki/trust-public-org.pem" in text
    assert "attended --proxy http://127.0.0.1:9001" in text  # the README's line, PORT filled in
    assert text.splitlines()[-1].endswith("/s/lab.json")
    assert "vendor profile" not in text and "transparent" not in text and "corp shell" not in text


def test_vendor_and_transparent_gateway_lines():
    text = describe_lab(info(vendor="zscaler", transparent=Transparent(gateways={"inspect": ["10.77.0.1:443"]},
                                                                      namespace="labns")))
    assert "vendor profile    zscaler" in text
    assert "gateway address for inspect: 10.77.0.1:443" in text
    assert "sudo ip netns exec labns " in text and " beam --no-proxy --connect-to 10.77.0.1:443" in text


def test_compose_lab_offers_a_corp_shell():
    text = describe_lab(info(backend="compose", machines=Machines(corp={"beam": ["docker", "exec", "0123456789abcdef"]})))
    assert "docker exec -it 0123456789ab sh" in text and "(inside a corp container)" in text


def readme_try_commands() -> list[str]:
    """The commands of the README's "Driving the lab by hand" after 'With the lab up', comments dropped."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Driving the lab by hand", 1)[1].split("\n## ", 1)[0]
    after = section.split("With the lab up", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", after, re.S)[:2]
    lines = [line.split("  #")[0].rstrip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def as_readme(line: str, info) -> str:
    """A banner line with the README's placeholders in place of this lab's values."""
    port = info.proxies["inspect"][0].rsplit(":", 1)[1]
    admin = info.proxy_admin.rsplit(":", 1)[1]
    return (line.replace(str(info.state_dir), ".lab").replace(f"127.0.0.1:{port}", "127.0.0.1:PORT")
            .replace(f"127.0.0.1:{admin}", "127.0.0.1:ADMIN").strip())


def test_the_banners_try_lines_are_the_readmes(tls_lab):
    commands = readme_try_commands()
    assert len(commands) == 4 and all(c.startswith(("curl ", "./lab ")) for c in commands), commands
    shown = describe_lab(tls_lab, prog="./lab").splitlines()
    start = next(i for i, line in enumerate(shown) if line.startswith("  try"))
    assert "PORT in the README is the inspect proxy's port, ADMIN the proxy journal's" in shown[start]
    assert [as_readme(line, tls_lab) for line in shown[start + 1:start + 5]] == commands
    assert shown[start + 1:start + 5] == try_lines(tls_lab, "./lab")[1:]


def test_without_an_inspect_proxy_the_banner_says_so(tls_lab):
    info = replace(tls_lab, proxies={k: v for k, v in tls_lab.proxies.items() if k != "inspect"})
    assert try_lines(info, "harness") == [
        "  try               (no inspect proxy in this lab: start it with --policies default or all)"]


def test_harness_command_is_what_was_typed(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_PROG", "./lab")
    assert harness_command() == "./lab"
    monkeypatch.delenv("HARNESS_PROG")
    script = tmp_path / "venv" / "bin" / "harness"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), "up"])
    monkeypatch.setattr(banner.shutil, "which", lambda name: None)  # not on PATH: the path, as typed from here
    assert harness_command() == "venv/bin/harness"
    monkeypatch.setattr(banner.shutil, "which", lambda name: str(script))  # on PATH: its name
    assert harness_command() == "harness"
    monkeypatch.setattr(sys, "argv", ["/somewhere/harness/__main__.py", "up"])  # python -m harness
    assert harness_command() == f"{shlex.quote(os.path.abspath(sys.executable))} -m harness"


def test_lab_up_prints_commands_that_work_as_typed(tmp_path):
    """./lab up --detach: the banner's commands, pasted into a shell in the checkout, do what they say."""
    state = tmp_path / "lab"
    up = subprocess.run(["./lab", "up", "--detach", "--lanes", "1", "--state-dir", str(state)], cwd=ROOT,
                        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    try:
        assert up.returncode == 0, up.stderr
        lines = up.stdout.splitlines()
        assert lines[0].endswith(f"Stop it with './lab down --state-dir {state}'.")  # no Ctrl-C: it is detached
        start = next(i for i, line in enumerate(lines) if line.startswith("  try"))
        curl, journal, beam, attended = (line.strip() for line in lines[start + 1:start + 5])
        assert beam.startswith("./lab beam ") and attended.startswith("./lab attended ")

        def shell(line: str) -> subprocess.CompletedProcess:
            return subprocess.run(["bash", "-c", line], cwd=ROOT, capture_output=True, text=True, timeout=120,
                                  stdin=subprocess.DEVNULL)

        refused = shell(beam)
        assert refused.returncode == 5 and "Beam refused to connect" in refused.stderr + refused.stdout
        declined = shell(attended)  # ask, and no terminal: declines and says why
        assert declined.returncode == 3 and "nobody can answer" in declined.stdout
        forged = shell(curl)
        assert forged.returncode == 0 and "issuer: CN=Acme Corp TLS Inspection Root CA" in forged.stderr
        seen = json.loads(shell(journal).stdout)
        records = seen["records"] if isinstance(seen, dict) else seen
        assert any(r.get("action") == "intercepted" for r in records)
    finally:
        down = subprocess.run(["./lab", "down", "--state-dir", str(state)], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    assert down.returncode == 0 and not (state / "lab.json").exists()


def test_listen_on_a_lan_address_is_loud_and_names_the_device_proxy_and_pac():
    lan = info(listen="192.168.1.20", device_proxies={"inspect": "192.168.1.20:9001", "exception-wildcard": "192.168.1.20:9011"},
               pac={"inspect": "http://192.168.1.20:9300/pac/inspect/proxy.pac",
                    "exception-wildcard": "http://192.168.1.20:9300/pac/exception-wildcard/proxy.pac"},
               pac_default="http://192.168.1.20:9300/proxy.pac", wpad="http://192.168.1.20:9300/wpad.dat")
    text = describe_lab(lan)
    first = text.splitlines()[0]
    assert first.startswith("!!! --listen 192.168.1.20: the lab's proxy and its inspection CA are now reachable from")
    assert "journals stay on loopback" in first
    assert "    inspect             192.168.1.20:9001   http://192.168.1.20:9300/pac/inspect/proxy.pac" in text
    assert ("  PAC / WPAD        http://192.168.1.20:9300/proxy.pac   http://192.168.1.20:9300/wpad.dat   "
            "(policy inspect)") in text
    assert "loopback only" not in text
    local = describe_lab(replace(lan, listen="127.0.0.1"))
    assert "!!!" not in local and "(loopback only: 'up --listen ADDRESS' for a device on the LAN)" in local
    assert "real device" not in describe_lab(info())  # no PAC server (compose): no device lines


def test_each_ca_cn_is_printed_beside_the_file_that_holds_it(tmp_path):
    """'up --vendor zscaler' printed the intermediate's CN beside the root's file: each CN now goes
    with the file whose certificate carries it."""
    from harness.model.vendors import get_vendor
    from harness.pki.ca import load_certificate
    from harness.pki.lab import LabPKI
    from harness.pki.names import display_name

    for vendor in ("zscaler", "generic", "fortinet"):
        pki = LabPKI.generate(tmp_path / vendor, vendor=get_vendor(vendor))
        text = describe_lab(info(pki={**PKI, **pki.describe()}, org_issuer_cn=pki.org_issuer_cn))
        lines = [line for line in text.splitlines() if "CN=" in line]
        assert any(f"CN={pki.org_issuer_cn}" in line for line in lines)
        for line in lines:
            cn, path = re.match(r"\s+\S+ CA\s+CN=(.*?)  \(([^):]+)", line).groups()
            assert display_name(load_certificate(path).subject) == cn, line
        assert len(lines) == (2 if vendor == "zscaler" else 1)


def test_live_upstream_mitmweb_and_evidence_lines():
    from harness.lab.info import Evidence

    plain = describe_lab(info(), prog="harness")
    assert "upstream" not in plain and "mitmweb" not in plain and "evidence bundle" not in plain
    e = Evidence(upstream="live", upstream_trust="/etc/ssl/certs/ca-certificates.crt", web="http://127.0.0.1:9100/",
                 keylog="/e/keys.txt", pcap="/e/lab.pcap")
    text = describe_lab(info(evidence=e), prog="harness")
    assert "upstream          LIVE" in text and "/etc/ssl/certs/ca-certificates.crt" in text
    assert "mitmweb           http://127.0.0.1:9100/  (no login in this mitmproxy: loopback only)" in text
    assert "/e/keys.txt  (0600" in text and "/e/lab.pcap" in text and "harness evidence DIR" in text
    with_token = describe_lab(info(evidence=Evidence(web="http://127.0.0.1:9100/?token=abc")), prog="harness")
    assert "?token=abc" in with_token and "no login" not in with_token


def test_proxy_login_line_in_clear_only_when_asked():
    lab = info(proxy_logins={"inspect": "lab:s3cret"})
    assert "lab:s3cret" in describe_lab(lab, show_login=True)
    hidden = describe_lab(lab, show_login=False)
    assert "s3cret" not in hidden and "proxy login       lab:[redacted]  for inspect" in hidden
    assert "proxy login" not in describe_lab(info(), show_login=True)
