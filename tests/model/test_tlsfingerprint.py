"""JA3 and JA4 against the examples their specifications publish, and on a real ClientHello."""

import ssl

import pytest
from mitmproxy.proxy.layers.tls import parse_client_hello

from harness.model.tlsfingerprint import Hello, is_grease, ja3, ja3_string, ja4, ja4_parts

# FoxIO JA4 spec (technical_details/JA4.md), its worked Chrome example: 15 ciphers, 16 extensions, h2.
CHROME_CIPHERS = (0x0A0A, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013,
                  0xC014, 0x009C, 0x009D, 0x002F, 0x0035)
CHROME_EXTENSIONS = (0x1A1A, 0x0000, 0x0017, 0xFF01, 0x000A, 0x000B, 0x0023, 0x0010, 0x0005, 0x000D, 0x0012,
                     0x0033, 0x002D, 0x002B, 0x001B, 0x0015, 0x4469)
CHROME_SIGALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)


def chrome() -> Hello:
    return Hello(legacy_version=0x0303, ciphers=CHROME_CIPHERS, extensions=CHROME_EXTENSIONS,
                 groups=(0x2A2A, 0x001D, 0x0017, 0x0018), point_formats=(0,), sig_algs=CHROME_SIGALGS,
                 alpn=("h2", "http/1.1"), sni="www.example.com", supported_versions=(0x3A3A, 0x0304, 0x0303))


def test_ja4_matches_the_published_example():
    a, b_raw, c_raw = ja4_parts(chrome())
    assert a == "t13d1516h2"
    assert b_raw == "002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"
    assert c_raw == "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601"
    assert ja4(chrome()) == "t13d1516h2_8daaf6152771_e5627efa2ab1"


def test_ja4_without_sni_alpn_or_tls13():
    h = Hello(legacy_version=0x0303, ciphers=(0x002F,), extensions=(0x000D,), sig_algs=(0x0401,))
    assert ja4(h).startswith("t12i010100_")
    assert ja4(Hello(legacy_version=0x0301, ciphers=(), extensions=())) == "t10i000000_000000000000_000000000000"
    # A first ALPN value that does not start and end alphanumeric: its hex's first and last character.
    assert ja4_parts(Hello(legacy_version=0x0303, ciphers=(1,), extensions=(0x10,), alpn=("\x01x\xff",)))[0].endswith("0f")


def test_ja3_matches_the_published_example():
    # Salesforce's README: "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0".
    h = Hello(legacy_version=769, ciphers=(47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4),
              extensions=(0, 10, 11), groups=(23, 24, 25), point_formats=(0,))
    assert ja3_string(h) == "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
    assert ja3(h) == "ada70206e40642a3e4461f35503241d5"


def test_grease_is_left_out_of_both():
    plain = Hello(legacy_version=0x0303, ciphers=(0x1301,), extensions=(0x000A,), groups=(0x001D,))
    greased = Hello(legacy_version=0x0303, ciphers=(0xDADA, 0x1301), extensions=(0x8A8A, 0x000A),
                    groups=(0x4A4A, 0x001D))
    assert ja3(plain) == ja3(greased) and ja4(plain) == ja4(greased)
    assert is_grease(0x0A0A) and is_grease(0xFAFA) and not is_grease(0x0A0B) and not is_grease(0x1301)


def real_client_hello(**settings):
    """The ClientHello Python's ssl really sends, parsed by mitmproxy (no socket: a MemoryBIO)."""
    ctx = ssl.create_default_context()
    if "alpn" in settings:
        ctx.set_alpn_protocols(settings["alpn"])
    if "maximum" in settings:
        ctx.maximum_version = settings["maximum"]
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="api.screenmeet.com")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return parse_client_hello(out.read())


def test_from_a_real_client_hello():
    h = Hello.from_client_hello(real_client_hello(alpn=["http/1.1"]))
    assert h.sni == "api.screenmeet.com" and h.alpn == ("http/1.1",)
    assert 0x0304 in h.versions and h.legacy_version == 0x0303
    assert h.groups and h.sig_algs and 0x1301 in h.ciphers
    summary = h.summary()
    assert summary["versions"][0] == "TLSv1.3" and summary["ja4"].startswith("t13d") and summary["ja4"][8:10] == "h1"
    # The fingerprint follows what is offered: capping the version changes it.
    capped = Hello.from_client_hello(real_client_hello(alpn=["http/1.1"], maximum=ssl.TLSVersion.TLSv1_2))
    assert capped.versions == (0x0303,) or 0x0304 not in capped.versions
    assert ja4(capped) != ja4(h) and ja3(capped) != ja3(h)
