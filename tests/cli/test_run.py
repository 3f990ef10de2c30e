"""'harness run' (harness.cli.run) as a user runs it: the matrix, its JSON, its exit codes."""

import json

from tests.clihelpers import ROOT, assert_one_sentence_error, harness


def test_run_core_matrix_passes_and_reports_json(tmp_path):
    proc = harness("run", "--tag", "core", "--json", "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["failed"] == 0 and doc["passed"] == 14
    assert {c["scenario"] for c in doc["cells"]} >= {"direct", "inspected-continue", "exception-partial"}


def test_run_exits_nonzero_on_a_mismatch(tmp_path):
    """Negative: a scenario file that expects the wrong outcome makes 'harness run' fail."""
    fixtures = ROOT / "fixtures"
    bad = tmp_path / "scenarios.toml"
    (tmp_path / "policies.toml").write_text((fixtures / "policies.toml").read_text())
    bad.write_text('[[scenario]]\nname = "wrong"\nnetwork = "proxy"\npolicy = "inspect"\n'
                   'trust = "public+org"\nexpect = { beam = "connected" }\n')
    proc = harness("run", "--scenarios-file", str(bad), "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout and "expected connected" in proc.stdout


def test_run_subprocess_clients(tmp_path):
    proc = harness("run", "--scenario", "inspected-continue", "--subprocess", "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warned-continued" in proc.stdout


def test_unwritable_state_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = harness("run", "--state-dir", str(blocker / "sub"))
    assert_one_sentence_error(proc, 1)
    assert "not writable" in proc.stderr
