"""harness.cli.probe: 'harness probe' prints the probe's result as text or JSON and exits with its code.
(The probe's diagnosis against the lab is tested in tests/clients/test_probe.py.)"""

import json
import socket

from harness.cli.main import main


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def test_json_output_and_exit_code_of_a_network_error(capsys):
    code = main(["probe", "beam.screenmeet.com", "--no-proxy", "--connect-to", f"127.0.0.1:{closed_port()}",
                 "--timeout", "2", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 6 and doc["verdict"] == "network-error" and doc["host"] == "beam.screenmeet.com"


def test_text_output_is_not_json(capsys):
    code = main(["probe", "beam.screenmeet.com", "--no-proxy", "--connect-to", f"127.0.0.1:{closed_port()}",
                 "--timeout", "2"])
    out = capsys.readouterr().out
    assert code == 6 and not out.lstrip().startswith("{") and "beam.screenmeet.com" in out


def test_the_new_options_reach_the_probe(monkeypatch, capsys, tmp_path):
    import harness.cli.probe as cli
    from harness.clients.probe import Facts, assess

    seen = {}

    def fake_probe(host, **kw):
        seen.update(kw)
        return assess(Facts(host=host, port=443, proxy="http://127.0.0.1:3128", network_error="x", proxy_status=407))

    monkeypatch.setattr(cli, "probe", fake_probe)
    code = main(["probe", "beam.screenmeet.com", "--handshake-only", "--public-trust", str(tmp_path / "roots.pem")])
    assert code == 6 and seen["handshake_only"] is True and seen["public_trust"] == str(tmp_path / "roots.pem")
    assert "verdict   PROXY LOGIN: The proxy http://127.0.0.1:3128 wants a login" in capsys.readouterr().out
