"""harness.cli.banner: what 'harness up' prints about the running lab."""

from harness.cli.banner import describe_lab
from harness.lab.info import LabInfo, Machines, Transparent

PKI = {"org_ca": "/s/pki/org-ca.pem", "trust_public": "/s/pki/trust-public.pem",
       "trust_public_org": "/s/pki/trust-public-org.pem", "pins_file": "/s/pki/pins.txt"}


def info(**changes) -> LabInfo:
    fields = dict(backend="local", state_dir="/s", lanes=2,
                  proxies={"inspect": ["http://127.0.0.1:9001", "http://127.0.0.1:9002"],
                           "exception-wildcard": ["http://127.0.0.1:9011", "http://127.0.0.1:9012"]},
                  server_connect=["127.0.0.1:9100", "127.0.0.1:9101"], proxy_admin="http://127.0.0.1:9200",
                  server_admin="http://127.0.0.1:9201", pki=PKI, org_issuer_cn="Acme Corp TLS Inspection CA")
    return LabInfo(**{**fields, **changes})


def test_names_the_ca_trust_pins_lane_zero_and_lab_json():
    text = describe_lab(info())
    assert "(local, 2 lane(s))" in text and "CN=Acme Corp TLS Inspection CA  (/s/pki/org-ca.pem)" in text
    assert "public + org CA: /s/pki/trust-public-org.pem" in text and "pins              /s/pki/pins.txt" in text
    assert "http://127.0.0.1:9001" in text and "http://127.0.0.1:9002" not in text  # lane 0 only
    assert "curl --proxy http://127.0.0.1:9001 --cacert /s/pki/trust-public-org.pem" in text
    assert "harness attended --proxy http://127.0.0.1:9011" in text
    assert text.splitlines()[-1].endswith("/s/lab.json")
    assert "vendor profile" not in text and "transparent" not in text and "corp shell" not in text


def test_vendor_and_transparent_gateway_lines():
    text = describe_lab(info(vendor="zscaler", transparent=Transparent(gateways={"inspect": ["10.77.0.1:443"]},
                                                                      namespace="labns")))
    assert "vendor profile    zscaler" in text
    assert "gateway address for inspect: 10.77.0.1:443" in text
    assert "sudo ip netns exec labns harness beam --no-proxy --connect-to 10.77.0.1:443" in text


def test_compose_lab_offers_a_corp_shell():
    text = describe_lab(info(backend="compose", machines=Machines(corp={"beam": ["docker", "exec", "0123456789abcdef"]})))
    assert "docker exec -it 0123456789ab sh" in text and "(inside a corp container)" in text
