"""The command that reruns a cell's client: exact (run it again and the proxy sees the same), redacted."""

from __future__ import annotations

import re
import subprocess

import pytest

from harness.model.clientdefs import define_client
from harness.model.secrets import REDACTED
from harness.plugin import assert_outcome
from harness.reports.cells import cell_document, describe
from harness.reports.rerun import rerun_command
from harness.reports.table import table


def doc(**cell) -> dict:
    return {"command": ["curl", "-H", "Authorization: Bearer x y", "https://beam.screenmeet.com/"], **cell}


@pytest.mark.parametrize("cell,line", [
    (doc(), "curl -H 'Authorization: Bearer x y' https://beam.screenmeet.com/ < /dev/null"),
    (doc(env={"HTTPS_PROXY": "http://127.0.0.1:3128", "NOTE": "a b"}),
     "HTTPS_PROXY=http://127.0.0.1:3128 NOTE='a b' curl -H 'Authorization: Bearer x y' "
     "https://beam.screenmeet.com/ < /dev/null"),
    (doc(env={"not-a-shell-name": "1"}),
     "env not-a-shell-name=1 curl -H 'Authorization: Bearer x y' https://beam.screenmeet.com/ < /dev/null"),
    (doc(stdin="y\n"), "printf 'y\\n' | curl -H 'Authorization: Bearer x y' https://beam.screenmeet.com/"),
    (doc(stdin="50% \\ it's\n"),
     "printf '50%% \\\\ it'\"'\"'s\\n' | curl -H 'Authorization: Bearer x y' https://beam.screenmeet.com/"),
    (doc(exec_prefix=["docker", "exec", "tlslab-beam-1"], env={"HTTPS_PROXY": "http://proxy:8104"}),
     "docker exec tlslab-beam-1 env HTTPS_PROXY=http://proxy:8104 curl -H 'Authorization: Bearer x y' "
     "https://beam.screenmeet.com/ < /dev/null"),
    ({"command": []}, ""),
    ({}, ""),
])
def test_rerun_command(cell, line):
    assert rerun_command(cell) == line


def test_printf_gives_back_the_exact_input():
    text = "50% \\ it's\n\ty\n"
    line = rerun_command({"command": ["od", "-c"], "stdin": text})
    assert subprocess.run(["bash", "-c", line.replace("od -c", "cat")], capture_output=True, text=True).stdout == text


# A client under test that takes its proxy from the environment (as many do) and holds a credential there.
CURL_ENV = define_client(
    "curl-env", policy="pinned-strict", url="https://beam.screenmeet.com/",
    command=["curl", "-sS", "-o", "/dev/null", "--max-time", "10", "--cacert", "{trust}",
             "--pinnedpubkey", "{pins_curl}", "{network}", "{url}"],
    proxy=[], direct=["--connect-to", "{host}:{port}:{connect_to}"],
    env={"HTTPS_PROXY": "{proxy_url}", "AGENT_TOKEN": "{secret}"},
    exit_codes={0: "connected", 90: "refused", 60: "tls-error", 35: "tls-error", 7: "network-error"},
)


def test_a_failing_client_under_test_says_how_to_rerun_it_exactly(run_client, lab_journal, tls_lab):
    cell = run_client(CURL_ENV, "inspected-continue", expect="connected")  # refused: a failure on purpose
    assert not cell.passed and cell.verdict.observation.exit_code == 90
    proxy = tls_lab.proxies["inspect"][cell.lane]
    with pytest.raises(pytest.fail.Exception) as failure:
        assert_outcome(cell)
    shown = re.search(r"^  rerun: (.*)$", str(failure.value), re.M).group(1)
    assert shown.startswith(f"HTTPS_PROXY={proxy} AGENT_TOKEN='{REDACTED}' curl -sS -o /dev/null")
    assert shown.endswith(" https://beam.screenmeet.com/ < /dev/null") and cell.secret not in shown
    assert f"    rerun: {shown}" in table([cell]).splitlines()  # the terminal table says the same
    assert f"AGENT_TOKEN={cell.secret} " in table([cell], show_secrets=True)
    assert describe(cell_document(cell)).count("rerun: ") == 1

    # Run it as a person would: the same outcome, and the proxy sees the same connection.
    line = rerun_command(cell_document(cell, show_secrets=True))
    lab_journal.reset()
    proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 90, proc.stderr  # curl: the public key does not match the pin
    again = [r for r in lab_journal.proxy_records(lane=cell.lane) if r["kind"] == "connection"]
    before = [r for r in cell.proxy_records if r["kind"] == "connection"]
    assert [(r["policy"], r["sni"], r["action"], len(r["requests"])) for r in again] == \
        [(r["policy"], r["sni"], r["action"], len(r["requests"])) for r in before] == \
        [("inspect", "beam.screenmeet.com", "intercepted", 0)]


def test_reference_cells_rerun_with_the_console_script(cells):
    line = rerun_command(cell_document(cells[1]))  # beam in inspected-continue
    assert line.startswith("harness beam --url https://beam.screenmeet.com ") and "--once" in line
    assert f"--token '{REDACTED}'" in line and line.endswith(" < /dev/null")
