"""Tests for harness.clients.probe: the pure verdict, then the real probe against every lab policy and direct."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.clients.probe import (
    Facts,
    assess,
    decrypted,
    exception_pattern,
    leads_to,
    parse_target,
    probe_name,
    proxy_status,
    rule_block_page,
    rule_proxy_login,
    rule_unpinned,
    rule_untrusted,
)
from harness.errors import UsageError
from harness.proxy.roaming import reset_lane

HOSTS = ("beam.screenmeet.com", "api.screenmeet.com")


# -- the verdict, without a network -------------------------------------------------------


def facts(**kw) -> Facts:
    return Facts(**{"host": "beam.screenmeet.com", "port": 443, "proxy": "http://127.0.0.1:3128", "trusted": True,
                    "issuer_cn": "Contoso Inspection CA", "pins_checked": True, "pin_matched": False, **kw})


def test_inspected():
    r = assess(facts())
    assert (r.verdict, r.exit_code) == ("inspected", 5)
    assert r.message.startswith("This network inspects TLS to beam.screenmeet.com (issuer CN=Contoso Inspection CA). "
                                "Beam will refuse to connect")
    assert r.fix == "add a TLS inspection exception for *.screenmeet.com."


def test_not_inspected_when_the_pin_matches():
    r = assess(facts(pin_matched=True, issuer_cn="Lab Public Intermediate CA"))
    assert (r.verdict, r.exit_code, r.fix) == ("not-inspected", 0, None)
    assert r.message.startswith("No inspection: the certificate for beam.screenmeet.com carries ScreenMeet's pinned key")


def test_untrusted_forged_vs_untrusted_genuine():
    forged = assess(facts(trusted=False, trust_error="unable to get local issuer certificate"))
    genuine = assess(facts(trusted=False, trust_error="unable to get local issuer certificate", pin_matched=True))
    assert forged.exit_code == genuine.exit_code == 4
    assert forged.message.startswith("Certificate not trusted: unable to get local issuer certificate.")
    assert "inspection proxy whose CA is not deployed" in forged.message and "*.screenmeet.com" in forged.fix
    assert "lacks the public CA" in genuine.message and "screenmeet" not in genuine.fix


def test_no_pins_cannot_tell_and_network_errors():
    assert assess(facts(pins_checked=False, pin_matched=None)).verdict == "trusted-unpinned"
    r = assess(facts(network_error="cannot connect to 127.0.0.1:3128 (Connection refused)"))
    assert (r.verdict, r.exit_code) == ("network-error", 6) and "through the proxy http://127.0.0.1:3128" in r.message


def test_a_407_says_the_proxy_wants_a_login():
    f = facts(network_error="the proxy refused CONNECT beam.screenmeet.com:443: 407 Proxy Authentication Required",
              proxy_status=407)
    r = rule_proxy_login(f)
    assert (r.verdict, r.exit_code) == ("proxy-login", 6) and assess(f) == r
    assert r.message.startswith("The proxy http://127.0.0.1:3128 wants a login (HTTP 407")
    assert "proxy login" in r.fix
    assert rule_proxy_login(facts(network_error="x", proxy_status=403)) is None
    assert assess(facts(network_error="x", proxy_status=403)).verdict == "network-error"
    assert proxy_status("the proxy refused CONNECT a.b:443: 407 Proxy Authentication Required") == 407
    assert proxy_status("cannot connect to 127.0.0.1:1 (Connection refused)") is None


def test_an_untrusted_server_chain_through_a_tunnel_is_not_inspection():
    f = facts(trusted=False, trust_error="unable to get local issuer certificate", forges=False)
    r = rule_untrusted(f)
    assert (r.verdict, r.exit_code) == ("untrusted", 4)
    assert "the server's own chain, untrusted, and the proxy is not decrypting" in r.message
    assert "inspects" not in r.message and "inspection proxy" not in r.message
    assert "exception changes nothing" in r.fix
    # Direct (no proxy): nothing on the path re-signs it.
    assert "nothing on the path re-signs it" in rule_untrusted(replace(f, proxy=None)).message
    # A proxy that forged for the made-up name is re-signing: the old advice stands.
    forged = rule_untrusted(replace(f, forges=True))
    assert "inspection proxy whose CA is not deployed" in forged.message and "*.screenmeet.com" in forged.fix


def test_a_block_page_behind_an_untrusted_upstream():
    r = rule_block_page(facts(block_status=502))
    assert (r.verdict, r.exit_code) == ("blocked", 5) and assess(facts(block_status=502)) == r
    assert "the proxy answered with a block page: HTTP 502" in r.message
    assert "An inspection exception alone will not help" in r.message
    assert r.fix.startswith("find out why the proxy rejects beam.screenmeet.com's certificate")
    # Only on a decrypted connection: the real server's (pinned) answer is never a block page.
    assert rule_block_page(facts(block_status=502, pin_matched=True)) is None
    assert rule_block_page(facts(block_status=None)) is None


def test_without_pins_a_non_public_issuer_is_inspection_likely():
    f = facts(pins_checked=False, pin_matched=None, public_issuer=False)
    r = rule_unpinned(f)
    assert (r.verdict, r.exit_code) == ("inspection-likely", 5) and assess(f) == r
    assert r.message.startswith("Inspection likely: beam.screenmeet.com presented a certificate issued by "
                                "CN=Contoso Inspection CA")
    assert decrypted(f) and not decrypted(replace(f, public_issuer=True)) and not decrypted(replace(f, public_issuer=None))
    assert assess(replace(f, public_issuer=True)).verdict == "trusted-unpinned"
    assert assess(replace(f, public_issuer=None)).verdict == "trusted-unpinned"  # no bundle: cannot tell


def test_leads_to_checks_the_signature_not_only_the_name():
    from harness.pki.ca import CA
    root = CA(common_name="Public Root", key_type="ec")
    inter = root.create_child_ca(common_name="Public Inter", key_type="ec")
    impostor = CA(common_name="Public Root", key_type="ec")  # same name, other key
    leaf = inter.issue_cert("beam.screenmeet.com").cert
    assert leads_to([leaf, inter.cert], [root.cert]) and leads_to([root.cert], [root.cert])
    assert not leads_to([leaf, inter.cert], [impostor.cert]) and not leads_to([leaf], [root.cert])


def test_probe_name_is_made_up_under_the_domain():
    a, b = probe_name("beam.screenmeet.com"), probe_name("beam.screenmeet.com")
    assert a != b and a.endswith(".screenmeet.com") and a.startswith("tls-lab-probe-")


def test_exception_pattern_and_targets():
    assert exception_pattern("beam.screenmeet.com") == "*.screenmeet.com"
    assert exception_pattern("x.eu.scrn.mt") == "*.scrn.mt"
    assert parse_target("beam.screenmeet.com") == ("beam.screenmeet.com", 443)
    assert parse_target("https://api.screenmeet.com:8443/x") == ("api.screenmeet.com", 8443)
    with pytest.raises(UsageError, match="malformed"):
        parse_target("ftp://beam.screenmeet.com")


# -- the real probe, through the lab ----------------------------------------------------------


def probe(capsys, *args) -> tuple[int, dict]:
    code = main(["probe", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def lab_args(lab, *, trust="public+org", pins=True):
    args = ["--trust", lab.trust_bundle(trust)]
    return args + (["--pins", lab.pins_file] if pins else [])


# Whether each policy in front of the real mock server inspects (beam.screenmeet.com, api.screenmeet.com),
# written out rather than derived from Policy.decide, the code under test.  A roaming policy is
# probed right after its lane's count restarted: the probe's one connection is the cell's first.
INSPECTS = {
    "tunnel": (False, False),
    "inspect": (True, True),
    "exception-wildcard": (False, False),
    "exception-api": (True, False),
    "exception-apex": (True, True),  # the apex covers no service host
    "exception-ip": (True, True),  # an IP exception never matches a connection by name
    "exception-both": (False, False),
    "inspect-tls12": (True, True),
    "inspect-tls13": (True, True),
    "inspect-ecdsa": (True, True),
    "inspect-rsa": (True, True),
    "roam-exception-then-inspect": (False, False),
    "roam-inspect-then-exception": (True, True),
    "roam-inspect-then-rekeyed": (True, True),
    # Behind the proxy login (issue 14): tls_lab.proxy_url() gives the probe the login.
    "inspect-login": (True, True),
    "exception-wildcard-login": (False, False),
}


def test_the_table_covers_every_policy_in_front_of_the_mock_server(lab_policies):
    assert set(INSPECTS) == {name for name, p in lab_policies.items() if not (p.upstream or p.forge)}


@pytest.mark.parametrize("policy", INSPECTS)
@pytest.mark.parametrize("host", HOSTS)
def test_every_lab_policy(tls_lab, capsys, policy, host):
    """Exit 5 exactly where the policy decrypts the host, 0 where it passes it through
    (every policy in front of the real mock server; hostile upstreams are the next test's)."""
    inspected = INSPECTS[policy][HOSTS.index(host)]
    reset_lane(tls_lab.proxy_admin, 0)
    code, doc = probe(capsys, host, "--proxy", tls_lab.proxy_url(policy), *lab_args(tls_lab))
    assert code == (5 if inspected else 0), doc["message"]
    assert doc["verdict"] == ("inspected" if inspected else "not-inspected")
    assert doc["issuer"] == (tls_lab.org_issuer_cn if inspected else "Lab Public Intermediate CA")
    assert doc["pins"]["matched"] is (not inspected)
    assert f"CN={doc['issuer']}" in doc["chain"][0]["issuer"]


def test_probe_predicts_beam_in_every_proxy_scenario(tls_lab, lab_policies, capsys):
    """What the probe says before anything is installed is what Beam then does, hostile upstreams included
    (not where the policy roams: the probe sees one connection, Beam's heartbeat is its second)."""
    from harness.model.scenarios import load_scenarios

    exit_for = {"connected": 0, "refused": 5, "tls-error": 4}
    checked = 0
    for s in load_scenarios():
        if s.network != "proxy" or s.client_args.get("beam") or s.expect.get("beam") not in exit_for:
            continue
        if lab_policies[s.policy].roam is not None:
            continue
        host = parse_target(s.urls.get("beam", "https://beam.screenmeet.com"))[0]
        code, doc = probe(capsys, host, "--proxy", tls_lab.proxy_url(s.policy), *lab_args(tls_lab, trust=s.trust))
        assert code == exit_for[s.expect["beam"]], (s.name, doc["message"])
        checked += 1
    assert checked >= 20


def test_inspected_text_names_issuer_beam_and_fix(tls_lab, capsys):
    code = main(["probe", "beam.screenmeet.com", "--proxy", tls_lab.proxy_url("exception-apex"), *lab_args(tls_lab)])
    out = capsys.readouterr().out
    assert code == 5
    assert (f"This network inspects TLS to beam.screenmeet.com (issuer CN={tls_lab.org_issuer_cn}). "
            "Beam will refuse to connect") in out
    assert "fix       Add a TLS inspection exception for *.screenmeet.com." in out
    assert "chain 0   subject" in out and "issuer  O=" in out


def test_direct_is_not_inspected(tls_lab, capsys):
    code, doc = probe(capsys, "beam.screenmeet.com", "--connect-to", tls_lab.server_connect[0],
                      *lab_args(tls_lab, trust="public"))
    assert code == 0 and doc["verdict"] == "not-inspected" and doc["proxy"] is None
    assert [c["subject"].split("CN=")[-1] for c in doc["chain"]] == [
        "screenmeet.com", "Lab Public Intermediate CA", "Lab Public Root CA"]


def test_inspection_with_the_org_ca_not_deployed(tls_lab, capsys):
    code, doc = probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxy_url("inspect"),
                      *lab_args(tls_lab, trust="public"))
    assert code == 4 and doc["verdict"] == "untrusted" and doc["trusted"] is False
    assert doc["issuer"] == tls_lab.org_issuer_cn  # named from the second, unverified look
    assert "not deployed" in doc["message"] and "*.screenmeet.com" in doc["fix"]


def test_genuine_server_with_a_trust_store_lacking_the_public_ca(tls_lab, capsys):
    code, doc = probe(capsys, "beam.screenmeet.com", "--connect-to", tls_lab.server_connect[0],
                      "--trust", tls_lab.pki["org_ca"], "--pins", tls_lab.pins_file)
    assert code == 4 and doc["pins"]["matched"] is True and "lacks the public CA" in doc["message"]


def test_without_pins_the_verdict_is_only_as_good_as_the_public_bundle(tls_lab, capsys):
    # A public bundle without the lab's public root: the real server's chain then looks no more public than a forged one.
    code, doc = probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxy_url("tunnel"),
                      "--public-trust", tls_lab.pki["org_ca"], *lab_args(tls_lab, pins=False))
    assert code == 5 and doc["verdict"] == "inspection-likely" and doc["pins"]["checked"] is False


def test_without_pins_a_non_public_issuer_reports_inspection_likely(tls_lab, capsys):
    public = ["--public-trust", tls_lab.trust_bundle("public")]
    code, doc = probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxy_url("inspect"), *public,
                      *lab_args(tls_lab, pins=False))
    assert (code, doc["verdict"], doc["public_issuer"]) == (5, "inspection-likely", False)
    assert f"issued by CN={tls_lab.org_issuer_cn}" in doc["message"] and doc["issuer"] == tls_lab.org_issuer_cn
    code, doc = probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxy_url("tunnel"), *public,
                      *lab_args(tls_lab, pins=False))
    assert (code, doc["verdict"], doc["public_issuer"]) == (0, "trusted-unpinned", True)


def test_an_untrusted_server_through_a_tunnel_is_not_called_inspection(tls_lab, lab_journal, capsys):
    """The server's own untrusted chain relayed by a tunnel: the probe says the proxy is not decrypting, and the
    journal agrees (every probe connection passed through, none forged)."""
    lane = 2
    code, doc = probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxies["tunnel-untrusted-root"][lane],
                      *lab_args(tls_lab))
    assert (code, doc["verdict"], doc["forges"]) == (4, "untrusted", False)
    assert "the proxy is not decrypting" in doc["message"] and "inspection proxy" not in doc["message"]
    records = [r for r in lab_journal.proxy_records(lane=lane) if r["kind"] == "connection"]
    assert len(records) == 3 and {r["action"] for r in records} == {"passed-through"}
    # The same untrusted server behind inspection with the CA not deployed: the proxy forges for the made-up name.
    code, doc = probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxies["inspect"][lane],
                      *lab_args(tls_lab, trust="public"))
    assert (code, doc["verdict"], doc["forges"]) == (4, "untrusted", True)
    assert "inspection proxy whose CA is not deployed" in doc["message"]


def test_behind_an_untrusted_upstream_block_page(tls_lab, lab_journal, capsys):
    """The proxy answers the probe's credential-free HEAD / itself (mitmproxy's 502): the probe says so, and that an
    exception alone will not help; the journal shows the blocked request, and the server saw nothing."""
    lane = 3
    code, doc = probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxies["untrusted-block-page"][lane],
                      *lab_args(tls_lab))
    assert (code, doc["verdict"], doc["block_status"]) == (5, "blocked", 502)
    assert "the proxy answered with a block page: HTTP 502" in doc["message"]
    assert "exception alone will not help" in doc["message"]
    blocked = [r for r in lab_journal.proxy_records(lane=lane) if r["kind"] == "connection" and r["blocked"]]
    assert blocked and [q["method"] for q in blocked[-1]["requests"]] == ["HEAD"]
    assert [r for r in lab_journal.server_records(lane=lane) if r["kind"] == "http"] == []
    # Plain inspection answers from the server: inspected, not blocked.
    code, doc = probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxies["inspect"][lane], *lab_args(tls_lab))
    assert (code, doc["verdict"], doc["block_status"]) == (5, "inspected", None)


def test_a_proxy_that_wants_a_login(tmp_path, capsys):
    """A real mitmdump with --proxyauth answers CONNECT with 407: the probe says the proxy wants a login."""
    from harness.net.addresses import reserve_ports
    port = reserve_ports("127.0.0.1", 1)[0]
    mitmdump = str(Path(sys.executable).with_name("mitmdump"))
    proc = subprocess.Popen([mitmdump, "--listen-host", "127.0.0.1", "--listen-port", str(port), "--set", "proxyauth=probe:secret", "--set", f"confdir={tmp_path}", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            code, doc = probe(capsys, "beam.screenmeet.com", "--proxy", f"http://127.0.0.1:{port}", "--timeout", "20")
            if doc["verdict"] != "network-error" or time.monotonic() > deadline:
                break
            time.sleep(0.3)  # still starting
        assert (code, doc["verdict"], doc["proxy_status"]) == (6, "proxy-login", 407), doc
        assert "wants a login (HTTP 407" in doc["message"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_network_errors(tls_lab, capsys):
    code, doc = probe(capsys, "beam.screenmeet.com", "--proxy", "http://127.0.0.1:1", *lab_args(tls_lab))
    assert code == 6 and "Connection refused" in doc["message"]
    # The lab proxy refuses hosts outside the lab (403 to CONNECT): a network error, not a TLS verdict.
    code, doc = probe(capsys, "example.com", "--proxy", tls_lab.proxy_url("inspect"), *lab_args(tls_lab))
    assert code == 6 and "403" in doc["message"]


def test_honours_https_proxy_like_the_clients(tls_lab, capsys, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", tls_lab.proxy_url("inspect"))
    assert probe(capsys, "beam.screenmeet.com", *lab_args(tls_lab))[0] == 5
    assert probe(capsys, "beam.screenmeet.com", "--no-proxy", "--connect-to", tls_lab.server_connect[0],
                 *lab_args(tls_lab))[0] == 0


def test_probe_sends_no_application_byte(tls_lab, lab_journal, capsys):
    """Ground truth: with --handshake-only the proxy finished a handshake with the probe and decrypted nothing;
    the server got no request."""
    for policy in ("inspect", "exception-wildcard"):
        probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxy_url(policy), "--handshake-only",
              *lab_args(tls_lab))
    records = [r for r in lab_journal.proxy_records(lane=0) if r["kind"] == "connection"]
    assert {r["action"] for r in records} == {"intercepted", "passed-through"}
    assert all(r["requests"] == [] and r["websocket"] == [] for r in records)
    assert [r for r in records if r["action"] == "intercepted"][0]["client_tls"] == "established"
    assert [r for r in lab_journal.server_records(lane=0) if r["kind"] == "http"] == []


@pytest.mark.parametrize("args,needle", [
    (["ftp://x"], "probe target 'ftp://x' is malformed"),
    (["beam.screenmeet.com", "--pins", "/nonexistent/pins.txt"], "does not exist"),
    (["beam.screenmeet.com", "--proxy", "socks5://x:1"], "proxy URL 'socks5://x:1' is malformed"),
    (["beam.screenmeet.com", "--connect-to", "nowhere"], "--connect-to 'nowhere' is malformed"),
    (["beam.screenmeet.com", "--public-trust", "/nonexistent/roots.pem"], "pass --public-trust a PEM bundle"),
])
def test_bad_input_is_one_sentence(capsys, args, needle):
    assert main(["probe", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_the_407_rule_is_a_login_verdict():
    from harness.clients.probe import render_text, rule_proxy_login

    problem = "the proxy at http://127.0.0.1:3128 requires a login (407 Proxy Authentication Required); give it ..."
    r = rule_proxy_login(facts(network_error=problem, trusted=None, proxy_status=407))
    assert (r.verdict, r.exit_code) == ("proxy-login", 6)
    assert "requires a login" in r.message and "http://USER:PASSWORD@HOST:PORT" in r.fix
    assert "verdict   PROXY LOGIN:" in render_text(r) and r.to_dict()["verdict"] == "proxy-login"


def test_probe_through_a_login_proxy(tls_lab, capsys):
    """The 407 rule end to end: harness probe through the lab's login policy, without and with the login."""
    args = ["probe", "beam.screenmeet.com", "--pins", tls_lab.pins_file, "--trust", tls_lab.pki["trust_public_org"], "--json"]
    assert main([*args, "--proxy", tls_lab.proxy_url("inspect-login", login=False)]) == 6
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "proxy-login" and "requires a login" in out["message"]
    assert main([*args, "--proxy", tls_lab.proxy_url("inspect-login")]) == 5
    out = capsys.readouterr().out
    assert json.loads(out)["verdict"] == "inspected"
    assert tls_lab.proxy_logins["inspect-login"].split(":", 1)[1] not in out  # the proxy is shown without its login


def test_by_default_only_a_bare_head_on_a_decrypted_connection(tls_lab, lab_journal, capsys):
    """Without --handshake-only: where the pins show decryption, one HEAD / without credentials; where the pins
    match (passed through), not a byte."""
    lane = 0
    for policy in ("inspect", "exception-wildcard"):
        probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxies[policy][lane], *lab_args(tls_lab))
    records = [r for r in lab_journal.proxy_records(lane=lane) if r["kind"] == "connection"]
    seen = [q for r in records for q in r["requests"]]
    assert [(q["method"], q["path"]) for q in seen] == [("HEAD", "/")]
    assert not seen[0]["credentials"] and "authorization" not in seen[0]["headers"]
    assert [(r["method"], r["path"]) for r in lab_journal.server_records(lane=lane) if r["kind"] == "http"] == [
        ("HEAD", "/")]
