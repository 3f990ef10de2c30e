"""The pure core of the audit: what the client saw -> outcome, verdict, key reuse, exception, grade."""

from __future__ import annotations

import ssl

import pytest

from harness.audit.drive import _VERSIONS, insecure_context
from harness.audit.verdict import (
    BLOCKED,
    DANGEROUS,
    IN_PLACE,
    MISSING,
    NOT_JUDGED,
    OK,
    OVER_BLOCKED,
    PARTIAL,
    PASSED,
    RESIGNED_TRUSTED,
    RESIGNED_UNTRUSTED,
    SAFE,
    Seen,
    classify,
    exception_state,
    grade,
    judge,
    key_reuse,
)
from harness.pki.ca import CA
from tests.tlshelpers import handshake


@pytest.mark.parametrize("seen, outcome", [
    (Seen(refused="the proxy refused CONNECT x: 403 Forbidden"), BLOCKED),
    (Seen(refused="TLS handshake failed: tlsv1 alert unknown ca", site_leaf=True), BLOCKED),
    (Seen(site_leaf=True, reached=True), PASSED),
    (Seen(site_leaf=True, reached=False), PASSED),  # shown the real certificate: the client can judge it
    (Seen(trusted=True, reached=False, status=502), BLOCKED),  # a block page over a forged certificate
    (Seen(trusted=False, reached=False), RESIGNED_UNTRUSTED),  # e.g. a self-signed stand-in, then a 502
    (Seen(trusted=True, reached=True, status=200), RESIGNED_TRUSTED),
    (Seen(trusted=False, reached=True, status=200), RESIGNED_UNTRUSTED),
])
def test_classify(seen, outcome):
    assert classify(seen) == outcome


@pytest.mark.parametrize("outcome, bad, verdict", [
    (RESIGNED_TRUSTED, True, DANGEROUS), (BLOCKED, True, SAFE), (PASSED, True, SAFE),
    (RESIGNED_UNTRUSTED, True, SAFE),
    (RESIGNED_TRUSTED, False, OK), (PASSED, False, OK), (BLOCKED, False, OVER_BLOCKED),
    (RESIGNED_UNTRUSTED, False, OVER_BLOCKED),
])
def test_judge(outcome, bad, verdict):
    assert judge(outcome, bad=bad) == verdict


def test_key_reuse():
    assert key_reuse(["sha256/a", "sha256/a"])
    assert not key_reuse(["sha256/a", "sha256/b"])
    assert not key_reuse(["sha256/a"]) and not key_reuse([])
    assert not key_reuse([None, None, "sha256/a"])  # no key seen is no reuse


def test_exception_state():
    assert exception_state({"api": PASSED, "beam": PASSED}) == IN_PLACE
    assert exception_state({"api": PASSED, "beam": "inspected"}) == PARTIAL
    assert exception_state({"api": "inspected", "beam": "inspected"}) == MISSING
    assert exception_state({"api": PASSED, "beam": None}) == NOT_JUDGED
    assert exception_state({}) == NOT_JUDGED


GOOD = {"good": OK, "expired": SAFE, "revoked": SAFE, "no-subject": OK}
SAFE_VERSIONS = {"TLS 1.0": False, "TLS 1.1": False, "TLS 1.2": True, "TLS 1.3": True}


def test_grade_a_when_nothing_is_wrong():
    g = grade(GOOD, revocation="revoked", versions=SAFE_VERSIONS)
    assert (g.letter, g.reasons) == ("A", [])


def test_grade_f_for_a_bad_certificate_re_signed_as_trusted():
    g = grade(GOOD | {"expired": DANGEROUS}, revocation="revoked", reused_key=True, versions=SAFE_VERSIONS)
    assert g.letter == "F"
    assert g.reasons[0] == "re-signs bad certificates as trusted: expired"
    assert "its forged leaves share one key" in g.reasons


def test_grade_c_for_revocation_or_old_tls():
    g = grade(GOOD | {"revoked": DANGEROUS}, revocation="revoked", versions=SAFE_VERSIONS)
    assert g.letter == "C" and "checks no CRL" in g.reasons[0]
    g = grade(GOOD, revocation="revoked", versions=SAFE_VERSIONS | {"TLS 1.0": True})
    assert (g.letter, g.reasons) == ("C", ["accepts TLS 1.0 from clients"])


def test_grade_b_for_a_shared_key_or_an_over_blocked_valid_site():
    assert grade(GOOD, revocation="revoked", reused_key=True).letter == "B"
    g = grade(GOOD | {"no-subject": OVER_BLOCKED}, revocation="revoked")
    assert (g.letter, g.reasons) == ("B", ["blocks valid sites: no-subject"])


# -- the client's side of the version check: it really offers each version (in memory) ----------

@pytest.mark.parametrize("version", ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"])
def test_the_audit_client_can_offer_each_version(version, tmp_path):
    """A server that accepts every version completes a handshake with the client offering only
    ``version``: so "not accepted" in a report is the proxy's refusal, not this client's."""
    leaf = CA(key_type="ec").issue_cert("v.sites.lab.test")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.set_ciphers("ALL:@SECLEVEL=0")
    server.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    leaf.configure_cert(server)
    shown = {"TLS 1.0": "TLSv1", "TLS 1.1": "TLSv1.1", "TLS 1.2": "TLSv1.2", "TLS 1.3": "TLSv1.3"}
    assert handshake(server, insecure_context(_VERSIONS[version]), "v.sites.lab.test").version() == shown[version]
