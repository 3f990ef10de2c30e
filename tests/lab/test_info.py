"""harness.lab.info: where a client runs and connects, and lab.json's round trip."""

import json

import pytest

from harness.errors import BadFileError, EnvironmentProblem, UnknownNameError
from harness.lab.identity import ProcessRecord
from harness.lab.info import Endpoint, LabInfo, Machines, Transparent


def info(**kw) -> LabInfo:
    kw.setdefault("state_dir", "/tmp/x")
    return LabInfo(backend="compose", lanes=2, proxies={"inspect": ["http://proxy:1", "http://proxy:2"]},
                   server_connect=["screenmeet:8443", "screenmeet:8444"], proxy_admin="http://a:1",
                   server_admin="http://a:2", pki={"trust_public": "p.pem", "trust_public_org": "o.pem",
                                                   "pins_file": "pins.txt"}, org_issuer_cn="Org", **kw)


def test_endpoint_per_network():
    lab = info(machines=Machines(home=["docker", "exec", "h"], corp={"beam": ["docker", "exec", "b"]},
                                 gateway={"beam": ["docker", "exec", "-u", "lab", "g"]}),
               transparent=Transparent(gateways={"inspect": ["198.51.100.10:443", "198.51.100.11:443"]}))
    assert lab.endpoint("proxy", "inspect", 1, "beam") == Endpoint(("docker", "exec", "b"), proxy_url="http://proxy:2")
    assert lab.endpoint("transparent", "inspect", 0, "beam") == Endpoint(
        ("docker", "exec", "-u", "lab", "g"), connect_to="198.51.100.10:443")
    assert lab.endpoint("direct", None, 1, "beam") == Endpoint(("docker", "exec", "h"), connect_to="screenmeet:8444")
    # A client with no machine of its own runs here.
    assert lab.endpoint("proxy", "inspect", 0, "attended").exec_prefix == ()
    with pytest.raises(UnknownNameError, match="unknown policy 'tunnel'"):
        lab.endpoint("proxy", "tunnel", 0, "beam")


def test_no_gateway_says_why():
    lab = info(transparent_unavailable="transparent mode needs root.")
    with pytest.raises(EnvironmentProblem, match="needs root"):
        lab.endpoint("transparent", "inspect", 0, "beam")
    with pytest.raises(EnvironmentProblem, match="no transparent gateway"):
        info().gateway_address("inspect")


def test_lab_json_round_trip(tmp_path):
    lab = info(state_dir=str(tmp_path), vendor="zscaler", sites={"expired": ["127.0.0.1:9"]},
               transparent=Transparent(gateways={"inspect": ["198.18.0.10:443"]}, namespace="ns"),
               machines=Machines(corp={"beam": ["x"]}), processes={"proxy": ProcessRecord(1, 5)}, token="t" * 32,
               listen="10.9.8.7", device_proxies={"inspect": "10.9.8.7:9001"},
               pac={"inspect": "http://10.9.8.7:9300/pac/inspect/proxy.pac"},
               pac_default="http://10.9.8.7:9300/proxy.pac", wpad="http://10.9.8.7:9300/wpad.dat")
    lab.write()
    again = LabInfo.read(tmp_path)
    assert again == lab and isinstance(again.transparent, Transparent) and isinstance(again.machines, Machines)
    assert again.processes["proxy"] == ProcessRecord(1, 5) and again.pids == {"proxy": 1}
    # For scripts, lab.json also lists the bare pids; read back, only "processes" counts.
    assert json.loads((tmp_path / "lab.json").read_text())["pids"] == {"proxy": 1}


@pytest.mark.parametrize("text", ["[]", "{\"backend\": \"local\"}", json.dumps({"nonsense": 1}), "not json", "",
                                  '{"backend": "lo', json.dumps({"pids": {"proxy": 1}}),
                                  json.dumps({"processes": {"proxy": {"pid": "1", "start": 2}}}),
                                  json.dumps({"processes": ["proxy"]}), json.dumps({"token": 7})])
def test_corrupt_lab_json_is_one_sentence(tmp_path, text):
    (tmp_path / "lab.json").write_text(text)
    with pytest.raises(BadFileError, match="is corrupt .*run 'harness down' and 'harness up' again"):
        LabInfo.read(tmp_path)


def test_missing_lab_json(tmp_path):
    with pytest.raises(EnvironmentProblem, match="no lab is running"):
        LabInfo.read(tmp_path)


def test_lab_json_of_the_wrong_shape_is_corrupt_even_with_every_other_field_right(tmp_path):
    good = json.loads(info(state_dir=str(tmp_path)).to_json())
    for bad in ({"processes": {"proxy": {"pid": 1}}}, {"processes": "x"}, {"token": ["t"]}):
        (tmp_path / "lab.json").write_text(json.dumps({**good, **bad}))
        with pytest.raises(BadFileError, match="is corrupt"):
            LabInfo.read(tmp_path)


def test_lab_json_that_is_a_directory_or_under_a_file_is_one_sentence(tmp_path):
    (tmp_path / "lab.json").mkdir()
    with pytest.raises(BadFileError, match="cannot read .*lab.json"):
        LabInfo.read(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(BadFileError, match="cannot read .*lab.json"):
        LabInfo.read(tmp_path / "file")


def test_reachable_from_network_is_anything_but_loopback():
    assert not info().reachable_from_network and not info(listen="127.0.0.2").reachable_from_network
    assert not info(listen="::1").reachable_from_network
    assert info(listen="198.18.3.1").reachable_from_network and info(listen="fd00::1").reachable_from_network


def test_evidence_survives_lab_json_and_defaults_to_mock(tmp_path):
    from harness.lab.info import Evidence

    i = info()
    i.state_dir = str(tmp_path)
    assert i.evidence == Evidence() and i.evidence.upstream == "mock"
    i.evidence = Evidence(upstream="live", upstream_trust="/t.pem", web="http://127.0.0.1:1/", har="/h.har")
    i.write()
    assert LabInfo.read(tmp_path).evidence == i.evidence
    # A lab.json written before these fields existed still reads.
    data = json.loads((tmp_path / "lab.json").read_text())
    del data["evidence"]
    assert LabInfo.from_dict(data).evidence == Evidence()


def test_proxy_url_carries_the_login_of_policies_that_require_one(tmp_path):
    lab = info(proxy_logins={"inspect": "lab:s3cret"}, state_dir=str(tmp_path))
    assert lab.proxy_url("inspect", 1) == "http://lab:s3cret@proxy:2"
    assert lab.proxy_url("inspect", 1, login=False) == "http://proxy:2"
    assert info().proxy_url("inspect") == "http://proxy:1"
    assert lab.endpoint("proxy", "inspect", 1, "beam", login=False).proxy_url == "http://proxy:2"
    assert lab.endpoint("proxy", "inspect", 1, "beam").proxy_url == "http://lab:s3cret@proxy:2"
    path = lab.write()
    assert path.stat().st_mode & 0o777 == 0o600  # it holds the login
    assert LabInfo.read(tmp_path).proxy_logins == {"inspect": "lab:s3cret"}
