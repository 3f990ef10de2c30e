"""The audit's sites: each case served under its own name with its certificate, the revoked site's
CRL over HTTP (fetches counted), the names an appliance must resolve, and the --trust check."""

from __future__ import annotations

import socket
import ssl
import urllib.request

import pytest
from cryptography import x509

from harness.audit.drive import insecure_context
from harness.audit.sites import CASES, CONTROL, CRL_HOST, SCREENMEET_HOSTS, AuditSites, is_bad, load_trust, site_host
from harness.errors import BadFileError
from harness.model.vocab import HOSTILE_CASES
from harness.pki.hostile import REVOKED, VALID_SHAPES
from harness.pki.lab import LabPKI


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    state = tmp_path_factory.mktemp("audit-sites")
    LabPKI.generate(state)
    with AuditSites(state) as s:
        yield s


def test_the_catalogue():
    assert CASES[0] == CONTROL and set(CASES) == {CONTROL, REVOKED, *HOSTILE_CASES}
    assert CASES.index(REVOKED) == CASES.index("rsa-1024") + 1
    assert [c for c in CASES if not is_bad(c)] == [CONTROL, *VALID_SHAPES]


def test_each_site_presents_its_own_certificate_for_its_own_name(sites):
    for case in CASES:
        site = sites.sites[case]
        assert site.host == site_host(case) == f"{case}.sites.lab.test"
        ctx = insecure_context() if case != "rsa-512" else insecure_context(maximum=ssl.TLSVersion.TLSv1_2)
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", site.port), timeout=10),
                             server_hostname=site.host) as tls:
            assert tls.getpeercert(binary_form=True) == site.leaf, case
    for site in sites.screenmeet:
        assert site.host in SCREENMEET_HOSTS and site.port not in {s.port for s in sites.sites.values()}


def test_the_revoked_sites_crl_is_served_and_fetches_are_counted(sites):
    leaf = x509.load_der_x509_certificate(sites.sites[REVOKED].leaf)
    (point,) = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    url = point.full_name[0].value
    assert url.startswith(f"http://{CRL_HOST}:{sites.crl.port}/")
    before = len(sites.crl.fetches)
    with urllib.request.urlopen(url.replace(CRL_HOST, "127.0.0.1"), timeout=10) as resp:
        crl = x509.load_der_x509_crl(resp.read())
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    assert len(sites.crl.fetches) == before + 1


def test_the_hosts_lines_name_every_site(sites):
    lines = sites.hosts_lines()
    assert f"127.0.0.1 {site_host('expired')}" in lines and f"127.0.0.1 {CRL_HOST}" in lines
    assert all(f"127.0.0.1 {h}" in lines for h in SCREENMEET_HOSTS)


def test_trust_must_hold_cas(sites):
    pki = LabPKI.load(sites.state_dir)
    assert load_trust(str(pki.org_ca))[0].subject == x509.load_pem_x509_certificate(pki.org_ca.read_bytes()).subject
    with pytest.raises(BadFileError, match="no CA"):
        load_trust(str(pki.server_chain))
