"""harness.matrix.execute: reference clients' arguments, running foreign clients, reading --json events."""

import sys

from harness.lab.info import Endpoint, LabInfo
from harness.matrix.execute import REFERENCE_CLIENTS, parse_events, run_foreign
from harness.model.scenarios import Scenario

LAB = LabInfo(backend="local", state_dir="/s", lanes=1, proxies={"inspect": ["http://127.0.0.1:9001"]},
              server_connect=["127.0.0.1:9100"], proxy_admin="", server_admin="", org_issuer_cn="Acme CA",
              pki={"pins_file": "/s/pins.txt", "trust_public": "/s/public.pem", "trust_public_org": "/s/org.pem"})


def test_parse_events_keeps_json_lines_only():
    output = 'starting\n{"event": "tls", "issuer": "X"}\n  {"event": "done"}  \n{not json\nERROR: x\n'
    assert parse_events(output) == [{"event": "tls", "issuer": "X"}, {"event": "done"}]
    assert parse_events("") == []


def test_beam_through_a_proxy():
    s = Scenario(name="s", network="proxy", expect={"beam": "refused"}, policy="inspect", trust="public")
    argv = REFERENCE_CLIENTS["beam"].argv(s, LAB, Endpoint(proxy_url="http://127.0.0.1:9001"), "tok-1")
    assert argv[argv.index("--proxy") + 1] == "http://127.0.0.1:9001" and "--no-proxy" not in argv
    assert argv[argv.index("--trust") + 1] == "/s/public.pem" and argv[argv.index("--pins") + 1] == "/s/pins.txt"
    assert argv[-3:] == ["--once", "--token", "tok-1"]
    assert argv[argv.index("--url") + 1] == "https://beam.screenmeet.com"


def test_attended_direct_connects_to_the_endpoint():
    s = Scenario(name="s", network="direct", expect={"attended": "connected"}, trust="public+org",
                 attended_on_warning="continue")
    argv = REFERENCE_CLIENTS["attended"].argv(s, LAB, Endpoint(connect_to="127.0.0.1:9100"), "code-1")
    assert "--proxy" not in argv and argv[argv.index("--connect-to") + 1] == "127.0.0.1:9100"
    assert argv[argv.index("--trust") + 1] == "/s/org.pem"
    assert argv[-4:] == ["--on-warning", "continue", "--code", "code-1"]


def test_run_foreign_exit_output_env_and_stdin():
    code, out = run_foreign([sys.executable, "-c", "import os,sys; print(os.environ['X'], sys.stdin.read()); "
                             "sys.exit(3)"], {"X": "42"}, "hello", 30)
    assert code == 3 and out.strip() == "42 hello"


def test_run_foreign_missing_program_is_127_with_a_sentence():
    code, out = run_foreign(["/nonexistent/client"], {}, None, 5)
    assert code == 127
    assert out == "[harness] cannot run '/nonexistent/client': no such program; install it or fix 'command'.\n"


def test_run_foreign_timeout_is_124_with_a_sentence():
    code, out = run_foreign([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(30)"],
                            {}, None, 1)
    assert code == 124 and "the client did not finish within 1s and was stopped." in out
