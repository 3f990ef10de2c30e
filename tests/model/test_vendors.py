"""Vendor profiles: the shipped data, its citations, the loader's one-sentence errors.
(The CA shapes a profile asks for are tested in tests/pki/test_lab.py.)"""

import json

import pytest

from harness.errors import BadFileError, UnknownNameError
from harness.model.vendors import ACTIONS, SOURCE_KINDS, VendorProfile, get_vendor, load_vendors, parse_key
from tests.model.vendorhelpers import GOOD, write

REQUIRED = ["zscaler", "palo-alto", "fortinet", "netskope", "cisco-umbrella", "cisco-wsa",
            "symantec-bluecoat", "forcepoint", "generic"]
VENDORS = load_vendors()


def test_every_required_vendor_is_shipped():
    assert set(REQUIRED) <= set(VENDORS)


@pytest.mark.parametrize("name", REQUIRED)
def test_every_value_cites_a_source_of_a_known_kind(name):
    v = VENDORS[name]
    values = {k: val for k, val in v.to_dict().items() if k not in ("name", "product", "sources") and val is not None}
    # The engine's profile forges nothing itself: the leaf-shape defaults it carries are not facts.
    defaults = {k: f.default for k, f in VendorProfile.__dataclass_fields__.items()}
    values = {k: val for k, val in values.items() if k in v.sources or val != defaults[k] or name != "generic"}
    assert set(values) == set(v.sources), f"{name}: values and sources differ"
    for key in values:
        assert v.source_kind(key) in SOURCE_KINDS
        assert len(v.sources[key].split(":", 1)[1].strip()) > 5, f"{name}.{key}: an empty citation"


def test_the_sources_tell_samples_and_lab_choices_from_documentation():
    kinds = {v.source_kind(k) for v in VENDORS.values() for k in v.sources}
    assert kinds == set(SOURCE_KINDS)
    # Facts from VENDORS.md keep their kind: Zscaler's intermediate CN is a captured sample,
    # PAN-OS's copied validity is documented, the generic profile's name is the lab's own.
    assert VENDORS["zscaler"].source_kind("issuer_cn") == "sample"
    assert VENDORS["palo-alto"].source_kind("leaf_validity") == "doc"
    assert VENDORS["generic"].source_kind("issuer_cn") == "lab"


def test_profiles_carry_the_public_facts():
    z, p, f, w = VENDORS["zscaler"], VENDORS["palo-alto"], VENDORS["fortinet"], VENDORS["cisco-wsa"]
    assert (z.root_cn, z.root_o, z.chain, z.key, z.leaf_validity) == ("Zscaler Root CA", "Zscaler Inc.", "intermediate",
                                                                     "rsa-2048", 14)
    assert z.issuing_cn == "Zscaler Intermediate Root CA (zscalerthree.net) (t) "
    assert (p.leaf_validity, p.untrusted_upstream) == ("copy", "re-sign-untrusted")
    assert f.untrusted_cn == "Fortinet_CA_Untrusted"
    assert w.untrusted_cn == "Untrusted Certificate Warning"
    assert VENDORS["forcepoint"].untrusted_upstream == "self-signed"
    assert VENDORS["cisco-umbrella"].block_page == "515 Upstream Certificate Untrusted"
    assert VENDORS["netskope"].root_cn == "caadmin.netskope.com"
    # The generic profile is the lab's default: mitmproxy's own forging, the default org CA.
    g = VENDORS["generic"]
    assert (g.issuing_cn, g.leaf_key, g.leaf_validity, g.block_page) == (
        "Acme Corp TLS Inspection Root CA", "ca-key", "engine", None)


def test_the_shipped_set_covers_every_action_but_the_lab_only_ones():
    used = {v.untrusted_upstream for v in VENDORS.values()}
    assert used == {"block-page", "re-sign-untrusted", "self-signed"}
    assert used <= set(ACTIONS)


def test_get_vendor_and_unknown_name():
    assert get_vendor("zscaler") == VENDORS["zscaler"]
    with pytest.raises(UnknownNameError) as info:
        get_vendor("bluecoat")
    assert str(info.value).startswith("unknown vendor 'bluecoat' (did you mean 'symantec-bluecoat'?); choose one of: ")
    assert "symantec-bluecoat" in str(info.value) and info.value.exit_code == 2


def test_a_minimal_profile_loads(tmp_path):
    v = load_vendors(write(tmp_path, GOOD))["acme"]
    assert (v.issuing_cn, v.chain, v.leaf_validity, v.untrusted_cn) == (
        "Acme Filter CA", "root", 7, "Acme Corp Untrusted Issuer CA")
    assert v.source_kind("leaf_validity") == "sample"


@pytest.mark.parametrize("change,must_contain", [
    (('leaf_validity = "sample: made up"\n', ''), "leaf_validity needs a source"),
    (('key = "lab: made up"', 'key = "a web page"'), "key needs a source"),
    (('key = "lab: made up"', 'key = "rumour: made up"'), "key needs a source"),
    (('chain = "root"', 'chain = "tree"'), "chain = 'tree' is not root or intermediate"),
    (('key = "ec-256"', 'key = "dsa-1024"'), "key = 'dsa-1024' is not rsa-2048"),
    (('leaf_validity = 7', 'leaf_validity = 0'), "leaf_validity = 0 is not a number of days"),
    (('leaf_validity = 7', 'leaf_validity = "forever"'), "leaf_validity = 'forever'"),
    (('untrusted_upstream = "block-page"', 'untrusted_upstream = "shrug"'), "untrusted_upstream = 'shrug' is not"),
    (('issuer_cn = "Acme Filter CA"\n', ''), "lacks 'issuer_cn'"),
    (('product = "Acme Filter"', 'product = "Acme"\ncolour = "red"'), "unknown keys ['colour']"),
    (('chain = "root"', 'chain = "intermediate"'), "needs root_cn"),
    (('untrusted_upstream = "block-page"', 'untrusted_upstream = "re-sign-untrusted"'), "needs untrusted_issuer_cn"),
    (('leaf_key = "lab: made up"', 'leaf_key = "lab: made up"\nblock_page = "lab: x"'),
     "sources given for keys it does not set: block_page"),
])
def test_bad_profiles_are_one_sentence(tmp_path, change, must_contain):
    old, new = change
    assert old in GOOD
    with pytest.raises(BadFileError) as info:
        load_vendors(write(tmp_path, GOOD.replace(old, new)))
    text = str(info.value)
    assert must_contain in text and str(tmp_path) in text and "'acme'" in text
    assert text.endswith(".") and "\n" not in text


@pytest.mark.parametrize("change,sentence", [
    (('leaf_validity = 7', 'leaf_validity = nan'),
     "vendor 'acme': leaf_validity = nan is not a number of days (1-3650), copy or engine."),
    (('leaf_validity = 7', 'leaf_validity = inf'), "leaf_validity = inf is not a number of days"),
    (('leaf_validity = 7', 'leaf_validity = true'), "leaf_validity = True is not a number of days"),
    (('leaf_validity = 7', 'leaf_validity = 7.0'), "leaf_validity = 7.0 is not a number of days"),
    (('issuer_cn = "Acme Filter CA"', 'issuer_cn = { cn = "Acme Filter CA" }'),
     "vendor 'acme': issuer_cn = {'cn': 'Acme Filter CA'} is not a certificate name (1-64 printable characters)."),
    # X.509 names hold at most 64 characters: a longer one would fail deep in the PKI.
    (('issuer_cn = "Acme Filter CA"', f'issuer_cn = "{"A" * 65}"'),
     f"vendor 'acme': issuer_cn = '{'A' * 56}... is not a certificate name (1-64 printable characters)."),
    (('issuer_cn = "Acme Filter CA"', 'issuer_cn = "Acme\\u0000CA"'), "is not a certificate name"),
    (('issuer_cn = "Acme Filter CA"', 'issuer_cn = "Acme\\nCA"'), "is not a certificate name"),
    (('leaf_key = "ec-256"', 'leaf_key = "dsa"'), "leaf_key = 'dsa' is not one of ca-key, match, rsa-2048"),
])
def test_bad_values_name_the_value_and_what_is_valid(tmp_path, change, sentence):
    old, new = change
    assert old in GOOD
    with pytest.raises(BadFileError) as info:
        load_vendors(write(tmp_path, GOOD.replace(old, new)))
    assert sentence in str(info.value) and str(info.value).endswith(".")


def test_sources_must_be_a_table(tmp_path):
    text = GOOD.split("\n[vendor.acme.source]")[0] + '\nsource = "doc: everything"\n'
    with pytest.raises(BadFileError, match="vendor 'acme': 'source' must map each value's key to where it comes from, "
                                           "e.g. source = .*, not 'doc: everything'\\.$"):
        load_vendors(write(tmp_path, text))


def test_block_status_is_a_whole_http_error_status(tmp_path):
    text = GOOD.replace('leaf_validity = 7', 'leaf_validity = 7\nblock_status = 403.0\nblock_page = "No"').replace(
        'untrusted_upstream = "doc: made up"', 'untrusted_upstream = "doc: x"\nblock_status = "lab: x"\nblock_page = "lab: x"')
    with pytest.raises(BadFileError, match=r"block_status = 403.0 is not an HTTP error status \(400-599\)\.$"):
        load_vendors(write(tmp_path, text))
    assert load_vendors(write(tmp_path, text.replace("403.0", "403")))["acme"].block_status == 403


def test_block_page_fields_belong_to_block_page(tmp_path):
    text = GOOD.replace('untrusted_upstream = "block-page"', 'untrusted_upstream = "self-signed"\nblock_status = 403\n'
                        'block_page = "No"').replace('untrusted_upstream = "doc: made up"',
                                                    'untrusted_upstream = "doc: x"\nblock_status = "lab: x"\nblock_page = "lab: x"')
    with pytest.raises(BadFileError, match="apply to untrusted_upstream = \"block-page\" only"):
        load_vendors(write(tmp_path, text))


def test_missing_empty_and_broken_files(tmp_path):
    with pytest.raises(BadFileError, match="does not exist"):
        load_vendors(tmp_path / "nope.toml")
    with pytest.raises(BadFileError, match="defines no vendor"):
        load_vendors(write(tmp_path, "# nothing\n"))
    with pytest.raises(BadFileError, match="is not valid TOML"):
        load_vendors(write(tmp_path, "[vendor.x\n"))
    with pytest.raises(BadFileError, match="must be a \\[vendor.x\\] table"):
        load_vendors(write(tmp_path, "vendor.x = 3\n"))


def test_parse_key():
    assert parse_key("rsa-2048") == ("rsa", 2048)
    assert parse_key("ec-384") == ("ec", 384)


# -- certificate shape keys ----------------------------------------------------------------

def _shaped(extra_values: str, extra_sources: str, base: str = GOOD) -> str:
    keys = [line.split(" = ")[0] for line in extra_values.strip().splitlines() if " = " in line]
    sources = extra_sources or "".join(f'{k} = "lab: made up"\n' for k in keys)
    return base.replace('untrusted_upstream = "block-page"\n', f'untrusted_upstream = "block-page"\n{extra_values}') + sources


def test_shape_keys_load_with_their_sources(tmp_path):
    text = _shaped('ca_dns = [["C=US", "O=Acme", "CN=Acme Filter CA", "emailAddress=ca@acme.test"]]\n'
                   'ca_days = [7300]\n'
                   'leaf_subject = "copy"\nleaf_hash = "sha384"\nleaf_extensions = []\n', "")
    v = load_vendors(write(tmp_path, text))["acme"]
    assert v.ca_names() == (("C=US", "O=Acme", "CN=Acme Filter CA", "emailAddress=ca@acme.test"),)
    assert (v.ca_days, v.leaf_subject, v.leaf_hash, v.leaf_extensions) == ((7300,), "copy", "sha384", ())
    # The proxy gets the profile as JSON: lists come back as the same tuples.
    assert VendorProfile.from_dict(json.loads(json.dumps(v.to_dict()))) == v


def test_without_ca_dns_the_names_are_cn_and_o():
    p = VENDORS["palo-alto"]
    assert p.ca_names() == (("CN=Acme Corp Enterprise Root CA", "O=Acme Corp"),
                            ("CN=Acme Corp Forward Trust CA", "O=Acme Corp"))


@pytest.mark.parametrize("values,must_contain", [
    ('ca_dns = [["CN=Other CA"]]\n', "must start with CN='Acme Filter CA'"),
    ('ca_dns = [["CN=Acme Filter CA"], ["CN=Acme Filter CA"]]\n', "lists 2 CA(s) but chain = 'root'"),
    ('ca_dns = [["XX=1", "CN=Acme Filter CA"]]\n', "ca_dns must list each CA's DN"),
    ('ca_dns = "CN=Acme Filter CA"\n', "ca_dns must list each CA's DN"),
    ('ca_days = [10, 10]\n', "ca_days must list 1 whole number(s) from 1 to 36500"),
    ('ca_days = [0]\n', "ca_days must list 1 whole number(s)"),
    ('ca_path_lens = [0]\n', "ca_path_lens must list 0 whole number(s)"),
    ('leaf_subject = "mirror"\n', "leaf_subject = 'mirror' is not one of copy, cn, template"),
    ('leaf_subject = "template"\n', 'leaf_subject = "template" and leaf_subject_dn go together'),
    ('leaf_subject = "template"\nleaf_subject_dn = ["O=Acme"]\n', "CN=* once"),
    ('leaf_hash = "md5"\n', "leaf_hash = 'md5' is not one of sha256"),
    ('leaf_extensions = ["aki", "ct-poison"]\n', "leaf_extensions names ct-poison; known: aki"),
])
def test_bad_shape_keys_are_one_sentence(tmp_path, values, must_contain):
    _assert_one_sentence(tmp_path, values, must_contain)


def _assert_one_sentence(tmp_path, values: str, must_contain: str) -> None:
    with pytest.raises(BadFileError) as info:
        load_vendors(write(tmp_path, _shaped(values, "")))
    assert must_contain in str(info.value) and str(info.value).endswith(".") and "\n" not in str(info.value)


def test_a_path_len_below_the_cas_under_it_is_refused(tmp_path):
    text = GOOD.replace('chain = "root"', 'chain = "intermediate"\nroot_cn = "Acme Root"').replace(
        'chain = "lab: made up"', 'chain = "lab: made up"\nroot_cn = "lab: x"')
    dns = 'ca_dns = [["CN=Acme Root"], ["CN=Acme Middle"], ["CN=Acme Filter CA"]]\n'
    with pytest.raises(BadFileError, match=r"ca_path_lens\[0\] = 0 is below the 1 CA\(s\) under that intermediate"):
        load_vendors(write(tmp_path, _shaped(dns + "ca_path_lens = [0, 0]\n", "", text)))
    v = load_vendors(write(tmp_path, _shaped(dns + "ca_path_lens = [1, 0]\n", "", text)))["acme"]
    assert v.ca_path_lens == (1, 0) and len(v.ca_names()) == 3


def test_upstream_tls_keys_load_with_their_sources(tmp_path):
    text = _shaped('upstream_tls_min = "1.2"\nupstream_tls_max = "1.3"\n'
                   'upstream_ciphers = ["ECDHE-RSA-AES128-GCM-SHA256", "NULL-SHA256", "@SECLEVEL=0"]\n', "")
    v = load_vendors(write(tmp_path, text))["acme"]
    assert (v.upstream_tls_min, v.upstream_tls_max) == ("1.2", "1.3")
    assert v.upstream_ciphers == ("ECDHE-RSA-AES128-GCM-SHA256", "NULL-SHA256", "@SECLEVEL=0")
    assert type(v).from_dict(v.to_dict()) == v  # the proxy's JSON configuration reads it back
    assert load_vendors(write(tmp_path, GOOD))["acme"].upstream_ciphers is None


@pytest.mark.parametrize("values,must_contain", [
    ('upstream_tls_min = "1.0"\n', "upstream_tls_min = '1.0' is not one of 1.2, 1.3"),
    ('upstream_tls_min = "1.3"\nupstream_tls_max = "1.2"\n', "upstream_tls_min 1.3 is above upstream_tls_max 1.2"),
    ('upstream_ciphers = ["ECDHE-RSA-AES128-GCM-SHA256", "RC4-FANTASY"]\n', "upstream_ciphers names 'RC4-FANTASY'"),
    ('upstream_ciphers = ["TLS_AES_128_GCM_SHA256"]\n', "upstream_ciphers names 'TLS_AES_128_GCM_SHA256'"),
    ('upstream_ciphers = []\n', "upstream_ciphers' must be a non-empty list of strings"),
])
def test_bad_upstream_tls_keys_are_one_sentence(tmp_path, values, must_contain):
    _assert_one_sentence(tmp_path, values, must_contain)
