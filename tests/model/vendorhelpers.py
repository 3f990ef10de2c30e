"""A minimal vendor profile for the vendor tests, and a helper that writes one to a file."""

GOOD = '''
[vendor.acme]
product = "Acme Filter"
issuer_cn = "Acme Filter CA"
chain = "root"
key = "ec-256"
leaf_key = "ec-256"
leaf_validity = 7
untrusted_upstream = "block-page"

[vendor.acme.source]
issuer_cn = "lab: made up"
chain = "lab: made up"
key = "lab: made up"
leaf_key = "lab: made up"
leaf_validity = "sample: made up"
untrusted_upstream = "doc: made up"
'''


def write(tmp_path, text):
    """Write ``text`` as ``tmp_path/vendors.toml``; the path."""
    path = tmp_path / "vendors.toml"
    path.write_text(text)
    return path
