"""Tests for harness.model.pins: computing, parsing and checking SPKI SHA-256 pins.

Every accepted form sits next to the malformed inputs that must be rejected.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import example, given
from hypothesis import strategies as st

from harness.errors import BadFileError
from harness.model.pins import PinResult, check_pins, format_pins, load_pins, parse_pin, parse_pins, spki_sha256
from harness.pki.ca import CA


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def der_spki_digest(public_key) -> bytes:
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA(common_name="TLS-lab pins test CA", key_type="ec")


@pytest.fixture(scope="module")
def leaf(ca):
    return ca.issue_cert("api.screenmeet.com")


@pytest.fixture(scope="module")
def other_leaf(ca):
    return ca.issue_cert("api.screenmeet.com")


def assert_one_sentence(message: str) -> None:
    assert "\n" not in message
    assert "Traceback" not in message
    assert message.endswith(".")


# A digest whose base64 starts with '/': b64(b"\xfc" ...) == "/...".
SLASH_DIGEST = bytes([0xFC]) + bytes(range(31))
assert b64(SLASH_DIGEST).startswith("/")
PLAIN_DIGEST = bytes(range(32))
assert not b64(PLAIN_DIGEST).startswith("/")


# -- spki_sha256 -----------------------------------------------------------------

def test_spki_sha256_of_cert_is_digest_of_its_public_key(leaf):
    pin = spki_sha256(leaf.cert)
    assert pin.startswith("sha256/")
    assert base64.b64decode(pin[len("sha256/"):]) == der_spki_digest(leaf.cert.public_key())


def test_spki_sha256_is_the_same_for_cert_public_and_private_key(leaf):
    pin = spki_sha256(leaf.cert)
    assert spki_sha256(leaf.cert.public_key()) == pin
    assert spki_sha256(leaf.private_key) == pin
    assert spki_sha256(leaf.cert.public_bytes(serialization.Encoding.DER)) == pin
    assert leaf.spki_pin == pin


def test_spki_sha256_differs_for_a_different_key(leaf, other_leaf, ca):
    assert spki_sha256(leaf.cert) != spki_sha256(other_leaf.cert)
    # The issuer's key is not the leaf's key.
    assert spki_sha256(ca.cert) != spki_sha256(leaf.cert)


def test_spki_sha256_of_rsa_key():
    rsa_ca = CA(common_name="TLS-lab pins RSA CA", key_type="rsa")
    assert spki_sha256(rsa_ca.private_key) == spki_sha256(rsa_ca.cert)
    assert base64.b64decode(spki_sha256(rsa_ca.cert)[7:]) == der_spki_digest(rsa_ca.cert.public_key())


def test_spki_sha256_rejects_garbage_der():
    with pytest.raises(ValueError):
        spki_sha256(b"not a certificate")


# -- parse_pin -------------------------------------------------------------------

@pytest.mark.parametrize("digest", [PLAIN_DIGEST, SLASH_DIGEST], ids=["plain", "slash-first"])
def test_parse_pin_okhttp_form(digest):
    assert parse_pin("sha256/" + b64(digest)) == digest


@pytest.mark.parametrize("digest", [PLAIN_DIGEST, SLASH_DIGEST], ids=["plain", "slash-first"])
def test_parse_pin_curl_form(digest):
    assert parse_pin("sha256//" + b64(digest)) == digest


@pytest.mark.parametrize("digest", [PLAIN_DIGEST, SLASH_DIGEST], ids=["plain", "slash-first"])
def test_okhttp_and_curl_forms_parse_to_the_same_digest(digest):
    okhttp, curl = parse_pin("sha256/" + b64(digest)), parse_pin("sha256//" + b64(digest))
    assert okhttp == curl == digest
    assert len(okhttp) == 32


def test_parse_pin_strips_surrounding_whitespace():
    assert parse_pin("  sha256/" + b64(PLAIN_DIGEST) + "\t") == PLAIN_DIGEST


@pytest.mark.parametrize("text", [
    "sha1/" + b64(PLAIN_DIGEST),
    "SHA256/" + b64(PLAIN_DIGEST),
    "pin-sha256=" + b64(PLAIN_DIGEST),
    b64(PLAIN_DIGEST),
    "",
])
def test_parse_pin_rejects_a_bad_prefix(text):
    with pytest.raises(ValueError, match="does not start with 'sha256/'"):
        parse_pin(text)


@pytest.mark.parametrize("body", ["!!!not-base64!!!", b64(PLAIN_DIGEST)[:-1], "é" * 44, "ab cd"])
def test_parse_pin_rejects_bad_base64(body):
    with pytest.raises(ValueError, match="is not valid base64"):
        parse_pin("sha256/" + body)


@pytest.mark.parametrize("form", ["sha256/", "sha256//"])
@pytest.mark.parametrize("size", [0, 20, 31, 33, 48, 64])
def test_parse_pin_rejects_the_wrong_length(form, size):
    with pytest.raises(ValueError, match=rf"decodes to {size} bytes, a SHA-256 pin has 32"):
        parse_pin(form + b64(bytes(size)))


# -- parse_pins --------------------------------------------------------------------

def test_parse_pins_skips_comments_and_blank_lines():
    text = (
        "# ScreenMeet pins\n"
        "\n"
        f"sha256/{b64(PLAIN_DIGEST)}   # current key\n"
        "   \n"
        f"  sha256//{b64(SLASH_DIGEST)}\n"
        "# backup key follows\n"
    )
    assert parse_pins(text) == (PLAIN_DIGEST, SLASH_DIGEST)


def test_parse_pins_names_the_line_of_the_first_bad_pin():
    text = f"# comment\nsha256/{b64(PLAIN_DIGEST)}\n\nsha256/AAAA\nnonsense\n"
    with pytest.raises(ValueError, match=r"^line 4: .*decodes to 3 bytes"):
        parse_pins(text)


def test_parse_pins_line_numbers_count_comment_lines():
    with pytest.raises(ValueError, match=r"^line 3: .*does not start with 'sha256/'"):
        parse_pins("# a\n# b\nmd5/xyz\n")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "   # sha256/" + b64(PLAIN_DIGEST)])
def test_parse_pins_without_any_pin_is_an_error(text):
    with pytest.raises(ValueError, match="^it holds no pin$"):
        parse_pins(text)


def test_format_pins_round_trips_through_parse_pins(leaf, other_leaf):
    text = format_pins([leaf.spki_pin, other_leaf.spki_pin], comment="lab pins\nsecond line")
    assert text.startswith("# lab pins\n# second line\n")
    assert parse_pins(text) == (parse_pin(leaf.spki_pin), parse_pin(other_leaf.spki_pin))


# -- load_pins -----------------------------------------------------------------------

def test_load_pins_reads_a_file(tmp_path, leaf):
    path = tmp_path / "pins.txt"
    path.write_text(format_pins([leaf.spki_pin]))
    assert load_pins(path) == (parse_pin(leaf.spki_pin),)
    assert load_pins(str(path)) == (parse_pin(leaf.spki_pin),)


def test_load_pins_missing_file(tmp_path):
    path = tmp_path / "absent.pins"
    with pytest.raises(BadFileError) as info:
        load_pins(path)
    message = str(info.value)
    assert_one_sentence(message)
    assert str(path) in message and "does not exist" in message
    assert "harness pki" in message  # says what to do
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_load_pins_unreadable_bytes(tmp_path):
    path = tmp_path / "binary.pins"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(BadFileError) as info:
        load_pins(path)
    message = str(info.value)
    assert_one_sentence(message)
    assert str(path) in message and "is not UTF-8 text (byte 0xff at offset 0)" in message
    assert "write one 'sha256/<base64 SPKI digest>' per line" in message
    assert info.value.__suppress_context__


def test_load_pins_directory(tmp_path):
    with pytest.raises(BadFileError, match="is a directory, not a regular file"):
        load_pins(tmp_path)


@pytest.mark.parametrize("content, reason", [
    ("sha256/AAAA\n", "line 1"),
    ("# nothing here\n", "holds no pin"),
    ("", "holds no pin"),
])
def test_load_pins_malformed_file(tmp_path, content, reason):
    path = tmp_path / "bad.pins"
    path.write_text(content)
    with pytest.raises(BadFileError) as info:
        load_pins(path)
    message = str(info.value)
    assert_one_sentence(message)
    assert str(path) in message and "malformed" in message and reason in message
    assert "write one 'sha256/<base64 SPKI digest>' per line" in message
    assert info.value.__suppress_context__


# -- check_pins ------------------------------------------------------------------------

def test_check_pins_matches_the_leaf(leaf, other_leaf):
    result = check_pins([leaf.spki_pin], [parse_pin(leaf.spki_pin)])
    assert result.matched and result.matched_pin == leaf.spki_pin
    assert result.describe() == f"pin {leaf.spki_pin} matched"


@pytest.mark.parametrize("position", [0, 1, 2])
def test_check_pins_matches_any_chain_element(ca, leaf, other_leaf, position):
    intermediate = ca.create_child_ca(common_name="TLS-lab pins intermediate", key_type="ec")
    chain = [other_leaf.spki_pin, spki_sha256(intermediate.cert), spki_sha256(ca.cert)]
    wanted = chain[position]
    result = check_pins(chain, [parse_pin(leaf.spki_pin), parse_pin(wanted)])
    assert result.matched
    assert result.matched_pin == wanted


def test_check_pins_matches_any_pin_of_the_set(leaf, other_leaf):
    backup = parse_pin(other_leaf.spki_pin)
    result = check_pins([other_leaf.spki_pin], [parse_pin(leaf.spki_pin), backup])
    assert result.matched and result.matched_pin == other_leaf.spki_pin


def test_check_pins_no_match_describes_expected_and_got(ca, leaf, other_leaf):
    # Under inspection: a forged leaf with another key, chain ending in the org CA.
    presented = [other_leaf.spki_pin, spki_sha256(ca.cert)]
    result = check_pins(presented, [parse_pin(leaf.spki_pin)])
    assert not result.matched and result.matched_pin is None
    assert result.expected == (leaf.spki_pin,)
    assert result.presented == tuple(presented)
    text = result.describe()
    assert text.startswith("no pin matched: expected one of ")
    assert f"expected one of {leaf.spki_pin}; got {other_leaf.spki_pin}, {spki_sha256(ca.cert)}" in text


def test_check_pins_empty_chain_says_no_certificate(leaf):
    result = check_pins([], [parse_pin(leaf.spki_pin)])
    assert not result.matched
    assert result.describe().endswith("got no certificate")


def test_check_pins_ignores_unparseable_presented_pins(leaf):
    result = check_pins(["garbage", "sha256/AAAA"], [parse_pin(leaf.spki_pin)])
    assert result == PinResult(False, None, (leaf.spki_pin,), ("garbage", "sha256/AAAA"))
    result = check_pins(["garbage", leaf.spki_pin], [parse_pin(leaf.spki_pin)])
    assert result.matched


def test_check_pins_accepts_curl_form_presented(leaf):
    digest = parse_pin(leaf.spki_pin)
    assert check_pins(["sha256//" + b64(digest)], [digest]).matched


# -- properties ----------------------------------------------------------------------------

@given(st.text())
@example("sha256/")
@example("sha256//")
@example("sha256///")
@example("sha256/\u00e9\u00e9")
@example("sha256/=\nsha256/==")
@example("\x00sha256/" + "A" * 43 + "=")
def test_parse_pins_raises_only_value_error(text):
    try:
        pins = parse_pins(text)
    except ValueError:
        return
    assert pins and all(isinstance(p, bytes) and len(p) == 32 for p in pins)


@given(st.binary(min_size=32, max_size=32))
def test_digest_text_parse_round_trip(digest):
    assert parse_pin("sha256/" + b64(digest)) == digest
    assert parse_pin("sha256//" + b64(digest)) == digest


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=5), st.text(max_size=40))
def test_format_then_parse_pins_round_trip(digests, comment):
    text = format_pins(["sha256/" + b64(d) for d in digests], comment=comment)
    assert parse_pins(text) == tuple(digests)


# -- what the mutation check (./lab mutate pins) found untested ------------------------------

def test_a_comment_may_itself_hold_a_hash():
    assert parse_pins(f"sha256/{b64(PLAIN_DIGEST)}  # current # rotated 2024\n") == (PLAIN_DIGEST,)


def test_a_match_keeps_what_was_expected_and_presented(leaf, other_leaf):
    pins = [parse_pin(other_leaf.spki_pin), parse_pin(leaf.spki_pin)]
    result = check_pins(["garbage", leaf.spki_pin], pins)
    assert result == PinResult(True, leaf.spki_pin, (other_leaf.spki_pin, leaf.spki_pin), ("garbage", leaf.spki_pin))
    assert result.describe() == f"pin {leaf.spki_pin} matched"
    missed = check_pins([], pins).describe()
    assert missed == f"no pin matched: expected one of {other_leaf.spki_pin}, {leaf.spki_pin}; got no certificate"


def test_format_pins_without_a_comment_is_the_pins_alone(leaf):
    assert format_pins([leaf.spki_pin]) == leaf.spki_pin + "\n"
    assert format_pins([leaf.spki_pin], comment="") == leaf.spki_pin + "\n"


@pytest.mark.parametrize("body, reason", [("!" * 100, "is not valid base64"), (b64(bytes(60)), "decodes to 60 bytes")])
def test_a_long_bad_pin_is_quoted_to_60_characters(body, reason):
    with pytest.raises(ValueError) as info:
        parse_pin("sha256/" + body)
    assert str(info.value).startswith(f"pin {('sha256/' + body)[:60]!r} {reason}")
    with pytest.raises(ValueError, match=f"^pin {('md5/' + body)[:60]!r} does not start"):
        parse_pin("md5/" + body)
