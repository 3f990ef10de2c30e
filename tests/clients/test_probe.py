"""Tests for harness.clients.probe: the pure verdict, then the real probe against every lab policy and direct."""

from __future__ import annotations

import json

import pytest

from harness.cli.main import main
from harness.clients.probe import Facts, assess, exception_pattern, parse_target
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


def test_without_pins_it_cannot_tell(tls_lab, capsys):
    code, doc = probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxy_url("inspect"),
                      *lab_args(tls_lab, pins=False))
    assert code == 0 and doc["verdict"] == "trusted-unpinned" and doc["pins"]["checked"] is False


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
    """Ground truth: the proxy finished a handshake with the probe and decrypted nothing; the server got no request."""
    for policy in ("inspect", "exception-wildcard"):
        probe(capsys, "beam.screenmeet.com", "--proxy", tls_lab.proxy_url(policy), *lab_args(tls_lab))
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
])
def test_bad_input_is_one_sentence(capsys, args, needle):
    assert main(["probe", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_the_407_rule_is_a_login_verdict():
    from harness.clients.probe import login_verdict, render_text

    problem = "the proxy at http://127.0.0.1:3128 requires a login (407 Proxy Authentication Required); give it ..."
    r = login_verdict(facts(network_error=problem, trusted=None), problem)
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
