"""The NDSS 2017 grading rules, one test per rule."""

import ssl

from harness.model.ciphersuites import CIPHER_SUITES
from harness.model.tlsgrade import grade

ECDHE_GCM, TLS13, RSA_CBC, DES3, RSA_GCM = 0xC02F, 0x1301, 0x002F, 0x000A, 0x009C


def test_null_export_anonymous_and_des_offered_anywhere_are_f():
    for bad in (0x0002, 0x0001, 0x0003, 0x0062, 0x0034, 0xC018, 0x0009, 0x0015):  # NULL, EXPORT, anon, DES
        g = grade([TLS13, ECDHE_GCM, bad])
        assert g.letter == "F", (hex(bad), g)
        assert CIPHER_SUITES[bad] in g.reason


def test_rc4_offered_is_c():
    assert grade([ECDHE_GCM, 0x0005]).letter == "C"
    assert grade([0xC011, RSA_CBC]).letter == "C"
    # ... unless something worse is offered too.
    assert grade([0x0005, 0x0003]).letter == "F"


def test_first_suite_aead_with_forward_secrecy_is_a():
    assert grade([TLS13, RSA_CBC, DES3]).letter == "A"
    assert grade([ECDHE_GCM, RSA_CBC]).letter == "A"
    assert grade([0xCCA8]).letter == "A" and grade([0x009E]).letter == "A"  # ChaCha20, DHE-GCM


def test_first_suite_cbc_3des_or_without_forward_secrecy_is_b():
    assert grade([RSA_CBC, ECDHE_GCM]).letter == "B"
    assert grade([DES3, ECDHE_GCM]).letter == "B"
    assert grade([0xC013, ECDHE_GCM]).letter == "B"  # ECDHE but CBC
    g = grade([RSA_GCM, ECDHE_GCM])
    assert g.letter == "B" and "without forward secrecy" in g.reason


def test_grease_and_signalling_values_are_not_suites():
    assert grade([0x0A0A, 0x00FF, 0x5600, ECDHE_GCM]).letter == "A"
    assert grade([0x0A0A]).letter == "F" and grade([0xFEFE]).letter == "B"  # nothing / unknown first


def test_this_machines_defaults_grade_a():
    ctx = ssl.create_default_context()
    assert grade(c["id"] & 0xFFFF for c in ctx.get_ciphers()).letter == "A"
