"""harness.proxy.run: the proxy process's command line and the mitmproxy options it sets
(no listeners are opened here)."""

import asyncio
import json
import re
from pathlib import Path

import pytest

from harness.model.policy import Policy
from harness.model.vendors import get_vendor
from harness.proxy import run
from harness.proxy.config import ProxyConfig


def test_confdir_and_upstream_trust_reach_mitmproxy_from_the_configuration():
    config = ProxyConfig(policies={"inspect": Policy("inspect", "inspect")}, ports={"inspect": [9011]},
                         confdir="/lab/pki/mitmproxy", upstream_trust="/lab/pki/trust-public.pem")
    _, update = run.build_options(config)
    assert update["confdir"] == "/lab/pki/mitmproxy"
    assert update["ssl_verify_upstream_trusted_ca"] == "/lab/pki/trust-public.pem"
    # Negative: no upstream trust leaves mitmproxy's default bundle.
    _, update = run.build_options(ProxyConfig(policies=config.policies, ports=config.ports, confdir="/c"))
    assert update["ssl_verify_upstream_trusted_ca"] is None


def test_compose_flags_put_confdir_and_upstream_trust_in_the_configuration(tmp_path):
    policies = tmp_path / "policies.toml"
    policies.write_text('[policy.inspect]\nmode = "inspect"\n')
    args = run._parser().parse_args(["--policies", str(policies), "--lanes", "2", "--base-port", "8100",
                                     "--confdir", "/lab/pki/mitmproxy", "--upstream-trust", "/lab/pki/t.pem"])
    config = run.config_from_args(args)
    assert (config.confdir, config.upstream_trust) == ("/lab/pki/mitmproxy", "/lab/pki/t.pem")
    assert config.ports == {"inspect": [8100, 8101]}


def test_config_file_is_the_whole_configuration(tmp_path):
    path = tmp_path / "proxy.json"
    config = ProxyConfig(policies={"inspect": Policy("inspect", "inspect")}, confdir="/c", upstream_trust="/t.pem")
    path.write_text(json.dumps(config.to_dict()))
    assert run.config_from_args(run._parser().parse_args(["--config", str(path)])) == config


@pytest.mark.parametrize("argv, says", [
    (["--policies", "p.toml"], "--policies needs --confdir"),
    (["--config", "proxy.json", "--confdir", "/c"], "with --config they are in the file"),
    (["--config", "proxy.json", "--upstream-trust", "/t.pem"], "with --config they are in the file"),
])
def test_confdir_flags_go_with_policies_only(argv, says, capsys):
    with pytest.raises(SystemExit) as e:
        run.main(argv)
    assert e.value.code == 2 and says in capsys.readouterr().err


def test_a_missing_configuration_file_is_one_sentence(tmp_path, capsys):
    assert run.main(["--config", str(tmp_path / "proxy.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"proxy: proxy configuration {tmp_path / 'proxy.json'} does not exist; "
                   "start the proxy through 'harness up'.")


# -- evidence: mitmproxy's own flow file, HAR export, mitmweb and key log -----------------

def _config(**kw) -> ProxyConfig:
    return ProxyConfig(policies={"inspect": Policy("inspect", "inspect")}, ports={"inspect": [9011]},
                       confdir="/c", **kw)


def test_evidence_outputs_are_mitmproxys_own_options():
    _, update = run.build_options(_config(save_flows="+/e/flows.mitm", har="/e/flows.har", web_port=9100))
    assert update["save_stream_file"] == "+/e/flows.mitm" and update["hardump"] == "/e/flows.har"
    assert (update["web_host"], update["web_port"], update["web_open_browser"]) == ("127.0.0.1", 9100, False)
    # Negative: nothing asked, nothing set (mitmproxy's defaults: no file, no UI).
    _, update = run.build_options(_config())
    assert not {"save_stream_file", "hardump", "web_port", "web_host"} & set(update)


def test_every_evidence_option_exists_in_this_mitmproxy():
    """save_stream_file (save addon), hardump (savehar addon) and mitmweb's options are mitmproxy's."""
    from mitmproxy.tools.web.master import WebMaster

    async def build():  # a master wants a running event loop
        opts, update = run.build_options(_config(save_flows="/e/f", har="/e/h", web_port=9100))
        master = WebMaster(opts, with_termlog=False)
        master.options.update(**{k: v for k, v in update.items() if k in (
            "save_stream_file", "hardump", "web_port", "web_host", "web_open_browser")})
        return master.options

    options = asyncio.run(build())
    assert options.hardump == "/e/h" and options.save_stream_file == "/e/f" and options.web_port == 9100


def test_web_url_carries_the_token_only_where_mitmproxy_has_a_login():
    from mitmproxy import options

    config = _config(web_port=9100, web_token="t0k")

    async def build():
        return run.make_master(config, options.Options())

    master = asyncio.run(build())
    if "web_password" in master.options:  # mitmproxy >= 11.1
        assert master.options.web_password == "t0k" and run.web_url(config) == "http://127.0.0.1:9100/?token=t0k"
    else:  # mitmproxy 11.0: no login, so no token in the banner
        assert config.web_token is None and run.web_url(config) == "http://127.0.0.1:9100/"
    assert run.web_url(_config()) is None


def test_keylog_uses_mitmproxys_logger_and_is_private(tmp_path, monkeypatch):
    from mitmproxy.net import tls

    monkeypatch.setattr(tls, "log_master_secret", None)
    path = tmp_path / "keys.txt"
    path.write_text("")
    path.chmod(0o644)
    run.install_keylog(str(path))
    assert isinstance(tls.log_master_secret, tls.MasterSecretLogger)
    assert (path.stat().st_mode & 0o777) == 0o600


def test_compose_flags_lay_out_hostile_sites_and_name_the_vendor(tmp_path):
    """compose.yaml gives the proxy the mock server's site layout and the vendor by flags (issue 16)."""
    policies = tmp_path / "policies.toml"
    policies.write_text('[policy.inspect]\nmode = "inspect"\n')
    base = ["--policies", str(policies), "--lanes", "2", "--confdir", "/lab/pki/mitmproxy"]
    config = run.config_from_args(run._parser().parse_args(
        [*base, "--site-cases", "expired,sha1", "--site-base-port", "9443", "--vendor", "zscaler"]))
    assert config.sites == {"expired": [9443, 9444], "sha1": [9445, 9446]}
    assert config.vendor == get_vendor("zscaler").to_dict()
    # compose.yaml passes "" when the lab has neither: no site, plain mitmproxy forging.
    config = run.config_from_args(run._parser().parse_args([*base, "--site-cases", "", "--vendor", ""]))
    assert (config.sites, config.vendor) == ({}, None)


@pytest.mark.parametrize("flag,value,says", [
    ("--site-cases", "expird", "unknown hostile certificate case 'expird'"),
    ("--vendor", "bluecoat", "unknown vendor 'bluecoat'"),
])
def test_bad_compose_flags_are_one_sentence(tmp_path, flag, value, says, capsys):
    policies = tmp_path / "policies.toml"
    policies.write_text('[policy.inspect]\nmode = "inspect"\n')
    code = run.main(["--policies", str(policies), "--confdir", str(tmp_path), flag, value])
    assert code == 2 and says in capsys.readouterr().err


def test_listener_layouts_that_share_a_port_are_one_sentence():
    """63 policies x 4 lanes from 8100 reach 8300: compose's transparent listeners once started there."""
    from harness.errors import UsageError

    run.check_layout({"a": [8100, 8101]}, {"b": [8102, 8103]})  # apart: fine
    with pytest.raises(UsageError, match=r"port 8101 would serve both a \(lane 1\) and b \(lane 0\)"):
        run.check_layout({"a": [8100, 8101]}, {"b": [8101, 8102]})


def test_compose_layout_leaves_room_for_every_shipped_policy():
    """compose.yaml's proxy: --base-port 8100 for every policy, transparent listeners from its
    --transparent-base-port, sites from 9443; none may overlap at compose's default 4 lanes."""
    from harness.model.policy import load_policies

    text = (Path(__file__).resolve().parents[2] / "compose.yaml").read_text()
    transparent = int(re.search(r'"--transparent-base-port", "(\d+)"', text).group(1))
    policies = load_policies()
    run.check_layout(run.lane_layout(8100, policies, 4), run.lane_layout(transparent, list(policies), 4))
    assert 8100 + 4 * len(policies) < transparent
