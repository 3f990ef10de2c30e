"""Through the real proxy (mitmproxy with the lab's addons, real TLS, curl and openssl as
clients): the vendor profiles' proxy behaviour, judged from both journals (issue 13).

* a client without SNI is forged for, and its upstream verified as, the CONNECT host;
* a CONNECT by IP literal reaches the lab, where the IP exception matches it;
* exceptions match the name (sni) or also the destination address (PAN-OS);
* CONNECT to ports outside a product's list is refused (Cisco WSA);
* the headers a product adds reach the server (its journal), not the proxy journal's
  view of what the client sent.
"""

from __future__ import annotations

import subprocess

import pytest

from harness.lab.local import LocalLab
from harness.lab.options import LabOptions
from harness.model.policy import HostPattern, Policy
from harness.model.vendors import get_vendor
from harness.net.journal import JournalReader

POLICIES = {"inspect": Policy("inspect"),
            "exception-ip": Policy("exception-ip", exceptions=(HostPattern.parse("127.0.0.1"),))}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """lab("cisco-wsa") -> LabInfo of a one-lane lab emulating that vendor (started once per module)."""
    labs, infos = [], {}

    def get(vendor: str):
        if vendor not in infos:
            one = LocalLab(LabOptions(state_dir=tmp_path_factory.mktemp(vendor), lanes=1, show_secrets=True,
                                      vendor=get_vendor(vendor)), policies=POLICIES)
            infos[vendor] = one.start()
            labs.append(one)
        return infos[vendor]

    try:
        yield get
    finally:
        for one in labs:
            one.stop()


class Journals:
    """Both journals' records since this object was made."""

    def __init__(self, info):
        self.proxy, self.server = JournalReader(info.proxy_admin), JournalReader(info.server_admin)
        self.p0, self.s0 = self.proxy.last_seq(), self.server.last_seq()

    def connections(self):
        return [r for r in self.proxy.read(after=self.p0) if r["kind"] == "connection"]

    def requests(self):
        return [r for r in self.server.read(after=self.s0) if r["kind"] == "http"]


def curl(info, url: str, policy: str = "inspect", *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}",
                           "--proxy", info.proxy_url(policy), "--cacert", info.pki["trust_public_org"], *extra, url],
                          capture_output=True, text=True, timeout=60)


def s_client(info, target: str, policy: str, *extra: str) -> str:
    """openssl s_client through the proxy (CONNECT target), sending one GET; its whole output."""
    proxy = info.proxy_url(policy).split("//", 1)[1]
    request = b"GET / HTTP/1.1\r\nHost: api.screenmeet.com\r\nConnection: close\r\n\r\n"
    done = subprocess.run(["openssl", "s_client", "-proxy", proxy, "-connect", target, "-ign_eof",
                           "-CAfile", info.pki["trust_public_org"], *extra],
                          input=request, capture_output=True, timeout=60)
    return (done.stdout + done.stderr).decode("utf-8", "replace")


# -- (a) no SNI -------------------------------------------------------------------------------

@pytest.mark.parametrize("vendor", ["generic", "zscaler"])
def test_a_client_without_sni_is_forged_for_the_connect_host(lab, vendor):
    info = lab(vendor)
    j = Journals(info)
    out = s_client(info, "api.screenmeet.com:443", "inspect", "-noservername")
    assert "HTTP/1.1 200" in out, out
    # The forged leaf names the CONNECT host (the lab's CAs are name-constrained: 127.0.0.1 would fail).
    assert "Verify return code: 0 (ok)" in out, out
    (record,) = j.connections()
    assert (record["sni"], record["connect_host"], record["action"]) == (None, "api.screenmeet.com:443", "intercepted")
    assert record["upstream_error"] is None and not record["blocked"]
    assert [r["path"] for r in j.requests()] == ["/"]


def test_a_client_with_sni_still_gets_its_own_name(lab):
    info = lab("generic")
    out = s_client(info, "api.screenmeet.com:443", "inspect", "-servername", "api.screenmeet.com")
    assert "HTTP/1.1 200" in out and "Verify return code: 0 (ok)" in out, out


# -- (b) CONNECT by IP literal ----------------------------------------------------------------------

def test_connect_by_ip_literal_reaches_the_lab_and_the_ip_exception_matches_it(lab):
    info = lab("generic")
    j = Journals(info)
    out = s_client(info, "127.0.0.1:443", "exception-ip", "-noservername")
    (record,) = j.connections()
    assert (record["connect_host"], record["exception"], record["action"]) == ("127.0.0.1:443", "127.0.0.1", "passed-through")
    # Passed through: the client saw the server's own certificate, not a forged one.
    assert "Acme Corp TLS Inspection Root CA" not in out, out


def test_connect_by_ip_literal_is_inspected_without_an_exception(lab):
    info = lab("generic")
    j = Journals(info)
    s_client(info, "127.0.0.1:443", "inspect", "-noservername")
    (record,) = j.connections()
    assert record["action"] == "intercepted" and record["connect_host"] == "127.0.0.1:443"


def test_other_ports_of_the_lab_address_stay_refused(lab):
    info = lab("generic")
    admin_port = info.server_admin.rsplit(":", 1)[1].split("/")[0]
    done = curl(info, f"https://127.0.0.1:{admin_port}/", "inspect")
    assert "403" in done.stdout + done.stderr


# -- (c) exception matching: name or destination ---------------------------------------------

@pytest.mark.parametrize("vendor, action", [("palo-alto", "passed-through"), ("zscaler", "intercepted")])
def test_an_ip_exception_matches_a_named_client_only_where_the_product_matches_destinations(lab, vendor, action):
    info = lab(vendor)
    j = Journals(info)
    curl(info, "https://api.screenmeet.com/", "exception-ip")
    (record,) = j.connections()
    assert (record["sni"], record["action"]) == ("api.screenmeet.com", action)
    if action == "passed-through":
        assert (record["exception"], record["destination"]) == ("127.0.0.1", "127.0.0.1")
    else:
        assert record["exception"] is None and "destination" not in record


# -- (d) CONNECT ports ------------------------------------------------------------------------------

@pytest.mark.parametrize("vendor, port, allowed", [
    ("cisco-wsa", 9443, False), ("cisco-wsa", 8443, True), ("generic", 9443, True)])
def test_connect_ports_outside_the_products_list_are_refused(lab, vendor, port, allowed):
    info = lab(vendor)
    j = Journals(info)
    done = curl(info, f"https://api.screenmeet.com:{port}/")
    (record,) = j.connections()
    if allowed:
        assert done.stdout == "200", done.stderr
        assert "connect_denied" not in record and [r["path"] for r in j.requests()] == ["/"]
    else:
        assert done.returncode != 0 and "403" in done.stderr, done.stderr
        assert record["action"] == "blocked" and str(port) in record["connect_denied"]
        assert j.requests() == []


# -- (4) headers the product adds -------------------------------------------------------------------

@pytest.mark.parametrize("vendor, added", [
    ("symantec-bluecoat", {"x-bluecoat-via": "ce2cfae06b3f12b4"}),
    ("zscaler", {"z-forwarded-for": "127.0.0.1"}),
    ("cisco-wsa", {"via": "1.1 wsa.acme.example:80 (Cisco-WSA/12.0.1-268)", "x-imforwards": "20"}),
    ("generic", {}),
])
def test_the_server_receives_the_headers_the_product_adds(lab, vendor, added):
    info = lab(vendor)
    j = Journals(info)
    assert curl(info, "https://api.screenmeet.com/").stdout == "200"
    (received,) = j.requests()
    product_headers = {"x-bluecoat-via", "z-forwarded-for", "via", "x-imforwards"}
    assert {k: v for k, v in received["headers"].items() if k in product_headers} == added
    assert received["headers"]["host"] == "api.screenmeet.com"
    # The proxy journal keeps what the client sent: none of them.
    (record,) = j.connections()
    assert not product_headers & set(record["requests"][0]["headers"])


def test_headers_are_added_only_to_decrypted_requests(lab):
    info = lab("symantec-bluecoat")
    j = Journals(info)
    # The same client and request, passed through by the IP exception: the tunnel carries the
    # client's bytes untouched, so the server receives no product header.
    out = s_client(info, "127.0.0.1:443", "exception-ip", "-noservername")
    (record,) = j.connections()
    assert record["action"] == "passed-through"
    (received,) = j.requests()
    assert "HTTP/1.1 200" in out and "x-bluecoat-via" not in received["headers"]
    # Negative: decrypted, the same request gets the header.  (By name: inspected by IP literal,
    # the upstream is verified for 127.0.0.1, which the server's certificate does not name.)
    s_client(info, "api.screenmeet.com:443", "inspect", "-noservername")
    assert [r["headers"].get("x-bluecoat-via") for r in j.requests()] == [None, "ce2cfae06b3f12b4"]


# -- (e) HTTP/2: the protocol each leg negotiated --------------------------------------------------

def test_a_client_asking_for_h2_gets_h2_on_both_legs_through_inspection(run_client):
    cell = run_client("curl-http2", "inspected-http2")
    assert cell.passed, cell.verdict.reasons
    assert "HTTP 200 over 2" in cell.output
    (record,) = [r for r in cell.proxy_records if r["kind"] == "connection"]
    assert (record["action"], record["alpn_client"], record["alpn_server"]) == ("intercepted", "h2", "h2")
    assert [(r["path"], r["protocol"]) for r in cell.server_records if r["kind"] == "http"] == [("/", "HTTP/2")]


@pytest.mark.parametrize("client", ["attended", "beam"])
def test_the_reference_clients_keep_http11_on_both_legs(run_scenario, client):
    cell = run_scenario("inspected-http2", client)
    assert cell.passed, cell.verdict.reasons
    legs = {(r["alpn_client"], r["alpn_server"]) for r in cell.proxy_records
            if r["kind"] == "connection" and r["client_tls"] == "established"}
    assert legs == {("http/1.1", "http/1.1")}
    assert {r["protocol"] for r in cell.server_records if r["kind"] == "http"} <= {"HTTP/1.1"}


@pytest.mark.parametrize("flag, alpn, protocol", [("--http1.1", "http/1.1", "HTTP/1.1"), ("--http2", "h2", "HTTP/2")])
def test_the_journals_record_the_protocol_each_leg_negotiated(lab, flag, alpn, protocol):
    # Under a vendor that forges itself (harness/proxy/forge.py's connection) too.
    info = lab("zscaler")
    j = Journals(info)
    assert curl(info, "https://api.screenmeet.com/", "inspect", flag).stdout == "200"
    (record,) = j.connections()
    assert (record["alpn_client"], record["alpn_server"]) == (alpn, alpn)
    (received,) = j.requests()
    assert received["protocol"] == protocol and received["headers"]["z-forwarded-for"] == "127.0.0.1"
