"""harness.errors: the hierarchy the CLI and the clients rely on, the exit codes, UnknownNameError's sentence."""

import pytest

from harness.errors import (
    BadFileError,
    EnvironmentProblem,
    LabError,
    LabStartError,
    NetworkError,
    ProtocolError,
    StepTimeout,
    TlsHandshakeAborted,
    TlsVerificationError,
    UnknownNameError,
    UsageError,
)


@pytest.mark.parametrize("cls,parent,code", [
    (UsageError, LabError, 2),
    (UnknownNameError, UsageError, 2),
    (BadFileError, UsageError, 2),
    (EnvironmentProblem, LabError, 1),
    (LabStartError, LabError, 1),
])
def test_lab_errors_and_their_exit_codes(cls, parent, code):
    assert issubclass(cls, parent) and cls.exit_code == code


def test_the_base_exit_code_is_1():
    assert LabError("x").exit_code == 1


def test_client_failures_are_not_lab_errors():
    """A client's network or TLS failure is the remote side's, never printed as the caller's mistake."""
    for cls in (NetworkError, StepTimeout, ProtocolError, TlsVerificationError, TlsHandshakeAborted):
        assert not issubclass(cls, LabError)
    assert issubclass(StepTimeout, NetworkError) and issubclass(ProtocolError, NetworkError)
    assert issubclass(TlsHandshakeAborted, TlsVerificationError)
    assert not issubclass(TlsVerificationError, NetworkError)


def test_unknown_name_is_one_sentence_listing_the_known_names_sorted():
    e = UnknownNameError("vendor", "acme", ("zscaler", "fortinet"))
    assert str(e) == "unknown vendor 'acme'; choose one of: fortinet, zscaler."
    assert (e.kind, e.name, e.known) == ("vendor", "acme", ["zscaler", "fortinet"])


def test_tls_verification_error_carries_reason_and_issuer():
    e = TlsVerificationError("certificate has expired", issuer_cn="Acme CA")
    assert str(e) == e.reason == "certificate has expired" and e.issuer_cn == "Acme CA" and e.host is None
