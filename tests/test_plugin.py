"""The plugin as a client repository meets it: a fresh directory with no conftest.py, pytest in a subprocess."""

import json
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.lab.process import pid_alive

EXAMPLE = Path(__file__).with_name("test_plugin_example.py")


def run_pytest(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lab-lanes", "1", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_client_repo_with_its_own_definitions_file(tmp_path):
    (tmp_path / "clients.toml").write_text(textwrap.dedent('''
        [client.my-agent]
        policy = "pinned-strict"
        url = "https://beam.screenmeet.com/beam/v1/agents/register"
        command = ["curl", "-sS", "--fail", "-X", "POST", "-o", "/dev/null", "--max-time", "10", "--cacert", "{trust}",
                   "--pinnedpubkey", "{pins_curl}", "-H", "Authorization: Bearer {secret}", "{network}", "{url}"]
        proxy = ["--proxy", "{proxy_url}"]
        direct = ["--connect-to", "{host}:{port}:{connect_to}"]
        exit_codes = { 0 = "connected", 90 = "refused", 60 = "tls-error" }

        [client.claims-too-much]   # plain curl that says it pins: the lab must catch it
        policy = "pinned-strict"
        url = "https://beam.screenmeet.com/beam/v1/agents/register"
        command = ["curl", "-sS", "--fail", "-X", "POST", "-o", "/dev/null", "--max-time", "10", "--cacert", "{trust}",
                   "-H", "Authorization: Bearer {secret}", "{network}", "{url}"]
        proxy = ["--proxy", "{proxy_url}"]
        direct = ["--connect-to", "{host}:{port}:{connect_to}"]
        exit_codes = { 0 = "connected", 60 = "tls-error" }
    '''))
    (tmp_path / "test_agent.py").write_text(textwrap.dedent('''
        import pytest
        from harness.plugin import assert_outcome

        @pytest.mark.parametrize("client", ["my-agent", "claims-too-much"])
        @pytest.mark.parametrize("scenario", ["direct", "inspected-continue", "exception-wildcard"])
        def test_agent(run_client, lab_clients, client, scenario):
            assert set(lab_clients) >= {"my-agent", "curl-pinned"}
            assert_outcome(run_client(client, scenario))
    '''))
    proc = run_pytest(tmp_path, "--lab-clients", "clients.toml", "--lab-report", "reports")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed, 5 passed" in out
    # --lab-report: the reports 'harness run --report' writes, of the same six cells, redacted.
    assert "tls-lab reports (6 cells): reports/report.html, reports/junit.xml, reports/report.json" in out
    doc = json.loads((tmp_path / "reports/report.json").read_text())
    assert (doc["passed"], doc["failed"], doc["secrets_shown"]) == (5, 1, False)
    assert [c["verdict"] for c in doc["cells"] if c["client"] == "claims-too-much"].count("FAIL") == 1
    assert len(ET.parse(tmp_path / "reports/junit.xml").getroot().findall(".//testcase")) == 6
    assert "lab-secret-" not in "".join(p.read_text() for p in (tmp_path / "reports").iterdir())
    # The one failure reads as a report: expected vs observed, what the proxy read, the redacted token.
    assert "inspected-continue/claims-too-much: expected refused, observed accepted-inspection (exit 0)" in out
    assert "credentials reached the proxy: authorization" in out
    assert "The proxy decrypted and could read 1 request(s), including credentials (authorization)" in out
    assert "Authorization: Bearer [redacted]" in out and "lab-secret-" not in out
    assert "Traceback" not in out


def test_bad_definitions_file_is_one_sentence(tmp_path):
    (tmp_path / "clients.toml").write_text('[client.x]\npolicy = "pinned"\ncommand = ["x"]\n')
    (tmp_path / "test_x.py").write_text("def test_x(lab_clients):\n    pass\n")
    out = run_pytest(tmp_path, "--lab-clients", "clients.toml")
    assert out.returncode == 1
    assert "clients.toml: client 'x': policy 'pinned' is not one of pinned-strict, pinned-warn, unpinned." in out.stdout


# -- pytest-xdist: one lab for all workers, each on lanes of its own ---------------------------

WHERE = textwrap.dedent('''
    import json, os
    import pytest

    @pytest.fixture(autouse=True)
    def where(request):
        """Each worker notes which lab served it: the proxy's pid, its journal, its own lanes."""
        yield
        if "tls_lab" in request.fixturenames:
            lab, lanes = request.getfixturevalue("tls_lab"), request.getfixturevalue("lab_lanes")
            with open(f"where-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl", "a") as f:
                f.write(json.dumps({"pid": os.getpid(), "proxy": lab.pids["proxy"],
                                    "journal": lab.proxy_admin, "lanes": lanes}) + "\\n")
''')


def served(tmp_path) -> dict[str, list[dict]]:
    """worker id -> what it noted about its lab, one line per test."""
    return {p.stem.removeprefix("where-"): [json.loads(line) for line in p.read_text().splitlines()]
            for p in tmp_path.glob("where-*.jsonl")}


def test_xdist_workers_share_one_lab_and_write_one_report(tmp_path):
    (tmp_path / "test_plugin_example.py").write_text(EXAMPLE.read_text())
    (tmp_path / "conftest.py").write_text(WHERE)
    proc = run_pytest(tmp_path, "-n", "2", "--lab-report", "reports")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "7 passed" in out

    workers = served(tmp_path)
    assert set(workers) == {"gw0", "gw1"}, workers  # both workers ran lab tests ...
    notes = [n for lines in workers.values() for n in lines]
    assert len({n["pid"] for n in notes}) == 2
    assert len({(n["proxy"], n["journal"]) for n in notes}) == 1  # ... and one proxy served them both
    lanes = {w: {tuple(n["lanes"]) for n in lines} for w, lines in workers.items()}
    assert sorted(sorted(v) for v in lanes.values()) == [[(0,)], [(1,)]]  # --lab-lanes 1 each, not the same one

    # One report from the controller: every worker's cells, one lab, one journal.
    doc = json.loads((tmp_path / "reports/report.json").read_text())
    assert (doc["passed"], doc["failed"]) == (7, 0)
    assert doc["lab"]["pids"]["proxy"] == notes[0]["proxy"] and doc["lab"]["lanes"] == 2
    assert {c["lane"] for c in doc["cells"]} == {0, 1}
    seqs = [r["seq"] for c in doc["cells"] for r in c["proxy_records"]]
    assert seqs and len(seqs) == len(set(seqs))  # one journal's sequence numbers, none counted twice
    assert len(ET.parse(tmp_path / "reports/junit.xml").getroot().findall(".//testcase")) == 7
    assert "7 passed, 0 failed" in (tmp_path / "reports/report.html").read_text()
    assert not pid_alive(notes[0]["proxy"])  # the last worker out stopped it


def test_lab_per_worker_gives_each_worker_a_lab(tmp_path):
    (tmp_path / "test_plugin_example.py").write_text(EXAMPLE.read_text())
    (tmp_path / "conftest.py").write_text(WHERE)
    proc = run_pytest(tmp_path, "-n", "2", "--lab-per-worker", "--lab-report", "reports", "-k", "direct or tunnel")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workers = served(tmp_path)
    proxies = {w: {n["proxy"] for n in lines} for w, lines in workers.items()}
    assert len(workers) == 2 and len(set().union(*proxies.values())) == 2, proxies
    doc = json.loads((tmp_path / "reports/report.json").read_text())
    assert set(doc["lab"]["workers"]) == set(workers)


def test_lab_per_worker_with_compose_and_a_bad_report_dir_are_usage_errors(tmp_path):
    proc = run_pytest(tmp_path, "-n", "2", "--lab", "compose", "--lab-per-worker")
    assert proc.returncode == 4
    assert "ERROR: --lab-per-worker starts a lab per worker, but one machine runs one compose lab; " \
           "drop --lab-per-worker and the workers share it." in proc.stderr
    (tmp_path / "file").write_text("")
    proc = run_pytest(tmp_path, "--lab-report", "file/reports")
    assert proc.returncode == 4 and "Traceback" not in proc.stderr
    assert re.search(r"ERROR: the report directory file/reports is not writable \(.*\); "
                     r"pass --lab-report with a writable directory.", proc.stderr), proc.stderr


# -- pytest --fixtures: every fixture of the plugin, each with one line that says what it is ------

PLUGIN_FIXTURES = {"lab_backend", "lab_state_dir", "lab_options", "lab_settings", "lab_policies", "lab_scenarios",
                   "tls_lab", "lab_lanes", "lab_clients", "lab_runner", "lab_journal", "run_scenario", "run_client"}


def test_pytest_fixtures_lists_every_fixture_with_a_one_line_description(tmp_path):
    proc = run_pytest(tmp_path, "--fixtures")
    assert proc.returncode == 0, proc.stderr
    section = proc.stdout.split("fixtures defined from harness.plugin")[1].split("\n---")[0]
    entries = re.findall(r"^(\w+)( \[\w+ scope\])? -- .*\n((?:    .*\n)*)", section + "\n", re.M)
    described = {name: body.strip().splitlines() for name, _, body in entries}
    assert set(described) == PLUGIN_FIXTURES, section
    for name, lines in described.items():
        assert len(lines) == 1, f"{name}: {lines}"  # the first paragraph is one line
        line = lines[0]
        assert 20 <= len(line) <= 110 and line.endswith((".", ")")) and "no docstring" not in line, f"{name}: {line}"
        assert ":class:" not in line and "``" not in line, f"{name}: {line}"  # plain text, not markup


def test_the_session_lab_holds_its_state_directory(tls_lab):
    """The plugin's lab is this pytest process's: another lab in its directory is refused, naming us."""
    proc = subprocess.run([sys.executable, "-m", "harness", "up", "--lanes", "1", "--state-dir", tls_lab.state_dir],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"pid {os.getpid()}" in proc.stderr and "it stops when that command ends" in proc.stderr


def test_compose_marked_tests_run_only_with_the_compose_lab(tmp_path):
    """A compose test builds images and starts containers: never in a default run, Docker engine or not."""
    (tmp_path / "test_c.py").write_text(textwrap.dedent('''
        import pytest

        @pytest.mark.compose
        def test_needs_compose(lab_backend):
            assert lab_backend == "compose"

        def test_everywhere():
            pass
    '''))
    default = run_pytest(tmp_path)
    assert default.returncode == 0 and "1 passed, 1 deselected" in default.stdout, default.stdout + default.stderr
    # Negative: asked for, the compose test is collected and runs (here it only checks the backend).
    chosen = run_pytest(tmp_path, "--lab=compose", "-k", "needs_compose")
    assert chosen.returncode == 0 and "1 passed, 1 deselected" in chosen.stdout, chosen.stdout + chosen.stderr


def test_lab_listen_puts_the_session_labs_proxies_and_pac_on_that_address(tmp_path):
    (tmp_path / "test_x.py").write_text(textwrap.dedent("""
        import urllib.request

        def test_x(tls_lab):
            assert tls_lab.listen == "127.0.0.2" and tls_lab.proxy_url("inspect").startswith("http://127.0.0.2:")
            assert tls_lab.proxy_admin.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(tls_lab.pac["inspect"], timeout=30) as r:
                assert "PROXY " + tls_lab.device_proxies["inspect"] in r.read().decode()
    """))
    proc = run_pytest(tmp_path, "--lab-listen", "127.0.0.2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = run_pytest(tmp_path, "--lab-listen", "0.0.0.0")
    assert bad.returncode == 4 and "would listen on every interface" in bad.stderr
