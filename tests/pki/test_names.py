"""harness.pki.names: a certificate's name as the lab shows it to people."""

from cryptography import x509
from cryptography.x509.oid import NameOID

from harness.pki.names import common_name, display_name


def test_first_common_name():
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Acme Root"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "second")])
    assert common_name(name) == "Acme Root"
    assert display_name(name) == "Acme Root"


def test_without_common_name_the_whole_dn():
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "No CN Inc.")])
    assert common_name(name) is None
    assert display_name(name) == "O=No CN Inc.,C=US"
