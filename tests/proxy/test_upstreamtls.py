"""A vendor profile's upstream TLS as mitmproxy options."""

from dataclasses import replace

from mitmproxy import options
from mitmproxy.addons.tlsconfig import TlsConfig
from mitmproxy.test import taddons

from harness.model.vendors import get_vendor, load_vendors
from harness.proxy.upstreamtls import upstream_options


def test_no_vendor_or_no_keys_leave_mitmproxys_defaults():
    assert upstream_options(None) == {}
    assert upstream_options(get_vendor("generic")) == {}


def test_the_profile_becomes_mitmproxy_options():
    fp = get_vendor("forcepoint")
    assert upstream_options(fp) == {"tls_version_server_min": "TLS1_2", "tls_version_server_max": "TLS1_2",
                                    "ciphers_server": ":".join(fp.upstream_ciphers)}
    only_max = replace(get_vendor("generic"), upstream_tls_max="1.3")
    assert upstream_options(only_max) == {"tls_version_server_max": "TLS1_3"}


def test_every_shipped_profile_is_accepted_by_mitmproxy():
    """mitmproxy's own option checks (TlsConfig.configure) take every profile's values."""
    for vendor in load_vendors().values():
        with taddons.context(TlsConfig(), options=options.Options()) as tctx:
            tctx.configure(tctx.master.addons.get("tlsconfig"), **upstream_options(vendor))
