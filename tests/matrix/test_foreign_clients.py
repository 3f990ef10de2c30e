"""Clients the lab did not write, through the real lab (real mitmproxy, real curl), judged from the journals.

curl-pinned must behave like Beam (refuse inspection with exit 90, never send
its token), curl-unpinned shows why pinning matters (it accepts inspection and
hands its token to the proxy), attended-cli and a curl-based shell script are
pinned-warn clients answering the warning by flag and by standard input.
Every positive has its negatives: the journals show what the outcome means,
the same ground truth with one journal fact changed (the exit code kept) fails
for that fact, and a client claiming the wrong policy fails.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness.model.clientdefs import builtin_clients, define_client
from harness.model.scenarios import load_scenarios, select
from harness.model.verdict import Evidence, judge
from harness.plugin import assert_outcome, describe_cell
from tests.matrix.journal_facts import assert_counterfactuals_fail, assert_journal_facts, evidence_of

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = [s.name for s in select(load_scenarios())]  # the everyday rows; extended ones run by tag below
BUILTIN = builtin_clients()
CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed (.ci/run installs it)")


@pytest.mark.parametrize("client", ["curl-pinned", "curl-unpinned", "attended-cli"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_builtin_definition_in_every_scenario(tls_lab, lab_runner, lab_scenarios, lab_clients, client, scenario):
    cells = lab_runner.run([lab_scenarios[scenario]], [lab_clients[client]])
    if not cells:  # the runner says why it left the cell out
        why = getattr(lab_runner, "skipped", {}).get(scenario) or "no outcome can be derived"
        assert why != "no outcome can be derived" or lab_runner.undetermined == [(scenario, client)]
        pytest.skip(f"{scenario}/{client}: {why}")
    cell, definition = cells[0], lab_clients[client]
    assert_outcome(cell)
    assert_journal_facts(cell, tls_lab.org_issuer_cn, sends_secret="{secret}" in " ".join(definition.command),
                         verifies_in_handshake=False)
    # Negative: the same run with one journal fact changed (same exit code) fails for that fact.
    evidence = evidence_of(cell, [], warned=definition.warned(cell.output))
    assert_counterfactuals_fail(cell.verdict.expected, evidence, definition.exit_codes, where=f"{scenario}/{client}")


def test_curl_pinned_refuses_inspection_like_beam(run_client, tls_lab):
    cell = run_client("curl-pinned", "inspected-continue")
    assert cell.verdict.observation.exit_code == 90 and "pinned public key" in cell.output
    intercepted = [r for r in cell.proxy_records if r["action"] == "intercepted"]
    assert intercepted and intercepted[0]["forged_issuer"] == tls_lab.org_issuer_cn
    assert all(r["requests"] == [] for r in intercepted)
    # The test lab journals in clear: the token is really absent, not just redacted.
    assert cell.secret not in json.dumps(cell.proxy_records) + json.dumps(cell.server_records)


def test_curl_unpinned_hands_its_token_to_the_proxy(run_client):
    """Why pinning matters: with the org CA trusted, plain curl is read by the proxy and never knows."""
    cell = run_client("curl-unpinned", "inspected-continue")
    assert_outcome(cell)
    assert cell.verdict.observation.outcome == "accepted-inspection"
    assert cell.verdict.observation.exit_code == 0
    assert "authorization" in cell.verdict.observation.credentials_at_proxy
    assert cell.secret in json.dumps(cell.proxy_records)
    # ... but the human account of the cell redacts it.
    assert cell.secret not in describe_cell(cell)


def test_exception_wildcard_lets_curl_pinned_connect_unseen(run_client):
    cell = run_client("curl-pinned", "exception-wildcard")
    assert_outcome(cell)
    assert cell.secret in json.dumps(cell.server_records) and cell.secret not in json.dumps(cell.proxy_records)
    assert cell.verdict.observation.issuer_seen == "Lab Public Intermediate CA"


def test_a_client_claiming_the_wrong_policy_fails(run_client):
    """Negative: curl with a pin, claimed as unpinned, cannot pass where inspection happens."""
    mislabelled = replace(BUILTIN["curl-pinned"], name="mislabelled", policy="unpinned")
    cell = run_client(mislabelled, "inspected-continue")
    assert not cell.passed
    assert "the client ended with refused (exit 90), expected accepted-inspection" in cell.verdict.reasons
    with pytest.raises(pytest.fail.Exception) as failure:
        assert_outcome(cell)
    text = str(failure.value)
    # A readable failure: expected vs observed, what the proxy saw and could not read, the client's own words.
    assert "inspected-continue/mislabelled: expected accepted-inspection, observed refused (exit 90)" in text
    assert "forged certificate issued by CN=" in text and "but read nothing" in text
    assert "curl: (90)" in text and "Bearer [redacted]" in text and cell.secret not in text


def test_an_unpinned_client_claiming_to_pin_fails(run_client):
    """Negative the other way: plain curl claimed as pinned-strict is caught accepting inspection."""
    claims = replace(BUILTIN["curl-unpinned"], name="claims-pinning", policy="pinned-strict")
    cell = run_client(claims, "inspected-decline")
    assert not cell.passed
    assert "credentials reached the proxy: authorization" in cell.verdict.reasons


def _warn_script(tmp_path: Path) -> Path:
    """A pinned-warn client made of curl: on a pin mismatch it warns, reads y/N from stdin, then goes on unpinned."""
    script = tmp_path / "warn-client.sh"
    script.write_text(
        '#!/bin/sh\n'
        '# usage: warn-client.sh TRUST PINS URL [curl network args...]\n'
        'trust=$1 pins=$2 url=$3; shift 3\n'
        'curl -sS -o /dev/null --max-time 10 --cacert "$trust" --pinnedpubkey "$pins" "$@" "$url"; rc=$?\n'
        '[ $rc -eq 90 ] || exit $rc\n'
        'echo "WARNING: certificate mismatch for $url. Continue? [y/N]"\n'
        'read answer\n'
        '[ "$answer" = y ] || exit 3\n'
        'exec curl -sS -o /dev/null --max-time 10 --cacert "$trust" "$@" "$url"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.parametrize("scenario,expected", [("inspected-continue", "warned-continued"),
                                               ("inspected-decline", "declined"),
                                               ("exception-wildcard", "connected"),
                                               ("direct", "connected")])
def test_pinned_warn_client_answers_on_stdin(run_client, tmp_path, scenario, expected):
    warn = define_client(
        "warn-sh", policy="pinned-warn", url="https://api.screenmeet.com/",
        command=[str(_warn_script(tmp_path)), "{trust}", "{pins_curl}", "{url}", "{network}"],
        proxy=["--proxy", "{proxy_url}"], direct=["--connect-to", "{host}:{port}:{connect_to}"],
        warning=r"WARNING: certificate mismatch", answer={"continue": {"stdin": "y\n"}, "abort": {"stdin": "n\n"}},
        exit_codes={0: "connected", 3: "declined", 60: "tls-error", 7: "network-error"})
    cell = run_client(warn, scenario)
    assert cell.verdict.expected == expected
    assert_outcome(cell)
    # Negative: the same run judged without its warning evidence cannot be warned-continued or declined.
    if expected in ("warned-continued", "declined"):
        ev = Evidence(cell.verdict.observation.exit_code, cell.proxy_records, cell.server_records, True, [],
                      cell.output, warned=False)
        assert "the client never showed the warning" in judge(expected, ev, warn.exit_codes).reasons


def test_silent_warn_client_fails(run_client):
    """Negative: a pinned-warn claim whose warning never appears fails where a warning is due."""
    silent = replace(BUILTIN["attended-cli"], name="silent", warning="this text never appears")
    cell = run_client(silent, "inspected-continue")
    assert "the client never showed the warning" in cell.verdict.reasons


def test_missing_program_and_timeout_are_reported(run_client):
    missing = define_client("missing", policy="unpinned", command=["/nonexistent/client", "{network}"],
                            proxy=["{proxy_url}"])
    cell = run_client(missing, "tunnel-only")
    assert not cell.passed and cell.verdict.observation.exit_code == 127
    assert "no such program" in cell.output
    slow = define_client("slow", policy="unpinned", command=[sys.executable, "-c", "import time; time.sleep(30)",
                                                             "{network}"], proxy=["{proxy_url}"], timeout=0.5)
    cell = run_client(slow, "tunnel-only")
    assert cell.verdict.observation.exit_code == 124 and "did not finish within 0.5s" in cell.output


def test_expect_override(run_client):
    cell = run_client("curl-pinned", "inspected-continue", expect="refused")
    assert cell.passed
    assert not run_client("curl-pinned", "inspected-continue", expect="connected").passed


def test_unknown_client_or_scenario(run_client):
    from harness.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown client 'wget'"):
        run_client("wget", "direct")
    with pytest.raises(UnknownNameError, match="unknown scenario 'nowhere'"):
        run_client("curl-pinned", "nowhere")


# -- the command line ----------------------------------------------------------------


def harness(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL)


def test_cli_runs_curl_definitions_with_reports(tmp_path):
    proc = harness("run", "--client", "curl-pinned", "--client", "curl-unpinned", "--client", "beam",
                   "--report", str(tmp_path / "r"), "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^\d+ passed, 0 failed", proc.stdout, re.M)
    assert "accepted-inspection" in proc.stdout
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    cells = {(c["scenario"], c["client"]): c for c in doc["cells"]}
    pinned = cells[("inspected-continue", "curl-pinned")]
    assert pinned["observed"] == "refused" and pinned["observation"]["exit_code"] == 90
    assert pinned["client_policy"] == "pinned-strict" and pinned["command"][0] == "curl"
    assert cells[("inspected-continue", "beam")]["client_policy"] == "reference"
    for name in ("junit.xml", "report.html"):
        assert (tmp_path / "r" / name).stat().st_size > 1000


def test_cli_curl_against_hostile_and_untrusted_upstreams(tmp_path):
    """The extended rows: curl fails on every bad certificate like Beam, pinned or not, and an unpinned
    curl gets the proxy's block page where the upstream is untrusted."""
    proc = harness("run", "--client", "curl-pinned", "--client", "curl-unpinned", "--tag", "hostile",
                   "--tag", "untrusted-upstream", "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"untrusted-upstream-block-page\s+curl-unpinned\s+blocked\s+blocked", proc.stdout)
    assert "Not run, no outcome can be derived" in proc.stderr and "curl-unpinned in untrusted-upstream" in proc.stderr


def test_cli_client_file_runs_all_its_definitions(tmp_path):
    defs = tmp_path / "clients.toml"
    defs.write_text((ROOT / "fixtures" / "clients.toml").read_text().replace("[client.curl-pinned]",
                                                                             "[client.my-curl]"))
    proc = harness("run", "--client-file", str(defs), "--scenario", "inspected-continue",
                   "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"my-curl", "curl-unpinned", "attended-cli"} <= set(proc.stdout.split())
    assert "curl-pinned " not in proc.stdout  # the built-in is not run unless named


def test_cli_mismatch_exits_1_with_failure_in_junit(tmp_path):
    import xml.etree.ElementTree as ET

    defs = tmp_path / "clients.toml"
    defs.write_text((ROOT / "fixtures" / "clients.toml").read_text().replace(
        'policy = "pinned-strict"', 'policy = "unpinned"', 1))
    proc = harness("run", "--client-file", str(defs), "--client", "curl-pinned", "--scenario",
                   "inspected-continue", "--scenario", "direct", "--report", str(tmp_path / "r"),
                   "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 1 and "FAIL" in proc.stdout
    suite = ET.parse(tmp_path / "r" / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [("tls-lab.inspected-continue", "inspected-continue/curl-pinned")]
    assert "expected accepted-inspection, observed refused" in failed[0].find("failure").get("message")


@pytest.mark.parametrize("args,needle", [
    (["--client", "wget"], "unknown client 'wget'; choose one of: attended, attended-cli, beam, curl-http2, curl-pinned"),
    (["--client-file", "/nonexistent/clients.toml"], "does not exist"),
    (["--client-file", "README.md"], "is not valid TOML"),
])
def test_cli_bad_client_input_is_one_sentence(tmp_path, args, needle):
    proc = harness("run", *args, "--state-dir", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_hostile_client_cannot_hurt_the_run(run_client, tls_lab):
    """Through the real lab: a catastrophic warning pattern fails its cell with a sentence (the run goes
    on); 3 MB of output are cut to 1 MiB with a note; a background grandchild dies with its client."""
    noisy = [sys.executable, "-c", "import sys; sys.stdout.write('a' * 100_000 + '!\\n' + 'b' * 3_000_000)", "{network}"]
    catastrophic = replace(BUILTIN["attended-cli"], name="catastrophic", command=tuple(noisy),
                           proxy=("{proxy_url}",), direct=(), warning=r"(a+)+$", answer={})
    start = time.monotonic()
    cell = run_client(catastrophic, "direct", expect="connected")
    assert time.monotonic() - start < 60
    assert not cell.passed
    assert any("its warning pattern '(a+)+$' took more than 2s" in r for r in cell.verdict.reasons), cell.verdict.reasons
    assert len(cell.output) < 1024 * 1024 + 200
    assert cell.output.endswith(f"[harness] output cut: {3_100_002 - 1024 * 1024} bytes not kept "
                                f"(the first {1024 * 1024} are above).\n")
    lingering = define_client("lingering", policy="unpinned", proxy=["{proxy_url}"],
                              command=["sh", "-c", "sleep 77 & echo $!", "{network}"], expect={"direct": "connected"})
    cell = run_client(lingering, "direct")
    sleeper = int(cell.output.split()[0])
    try:
        state = Path(f"/proc/{sleeper}/stat").read_text().rsplit(") ", 1)[1][0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z"), "the client's background 'sleep 77' outlived its cell"
