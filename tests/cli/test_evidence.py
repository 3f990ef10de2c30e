"""'harness evidence' and 'harness up's live-upstream and evidence flags: bad input is one sentence,
exit 2, nothing left running (real subprocesses)."""

from __future__ import annotations

import json
import os

import pytest

from tests.clihelpers import assert_one_sentence_error, harness, lab_pids_under


def test_evidence_without_any_lab_is_one_sentence(tmp_path):
    proc = harness("evidence", str(tmp_path / "out"), "--state-dir", str(tmp_path / "never"))
    assert_one_sentence_error(proc, 2)
    assert "no lab has run in" in proc.stderr and not (tmp_path / "out").exists()


def test_evidence_refuses_a_non_empty_directory(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    proc = harness("evidence", str(out), "--state-dir", str(tmp_path / "lab"))
    assert_one_sentence_error(proc, 2)
    assert "is not an empty directory" in proc.stderr and (out / "mine.txt").read_text() == "keep"


def test_evidence_from_a_snapshot_only(tmp_path):
    """A stopped lab: no lab.json, only what 'up' kept; the bundle is made from that."""
    from harness.lab.info import LabInfo

    state = tmp_path / "lab"
    snap = state / "evidence"
    snap.mkdir(parents=True)
    info = LabInfo(backend="local", state_dir=str(state), lanes=1, proxies={"inspect": ["http://127.0.0.1:1"]},
                   server_connect=["127.0.0.1:2"], proxy_admin="http://127.0.0.1:3", server_admin="http://127.0.0.1:4",
                   pki={}, org_issuer_cn="Acme")
    (snap / "lab.json").write_text(info.to_json())
    (snap / "proxy-journal.json").write_text(json.dumps([{"action": "passed-through", "sni": "api.screenmeet.com",
                                                           "policy": "exception-wildcard", "requests": []}]))
    (snap / "server-journal.json").write_text("[]")
    proc = harness("evidence", str(tmp_path / "out"), "--state-dir", str(state))
    assert proc.returncode == 0, proc.stderr
    summary = (tmp_path / "out" / "SUMMARY.md").read_text()
    assert "stopped lab" in summary and "| api.screenmeet.com | exception-wildcard | 1 |" in summary
    assert (tmp_path / "out.tar.gz").is_file()


@pytest.mark.parametrize("argv,says", [
    (["--upstream", "internet"], "invalid choice: 'internet'"),
    (["--upstream-trust", "ca.pem"], "--upstream-trust is the CA bundle for real servers"),
    (["--upstream", "live", "--upstream-trust", "{tmp}/missing.pem"], "does not exist"),
    (["--upstream", "live", "--upstream-trust", "{tmp}/text.pem"], "holds no PEM certificate"),
    (["--har", "{tmp}"], "is a directory; give a file name"),
    (["--keylog", "{tmp}/no/such/keys.txt"], "does not exist; create it"),
    (["--har", "{tmp}/x", "--save-flows", "{tmp}/x"], "need one file each"),
    (["--lab", "compose", "--web"], "--web runs on the local lab"),
])
def test_bad_evidence_flags_are_one_sentence_and_leave_nothing_running(tmp_path, argv, says):
    (tmp_path / "text.pem").write_text("not a certificate\n")
    state = tmp_path / "lab"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    proc = harness("up", "--state-dir", str(state), "--lanes", "1", "--policies", "inspect", *argv)
    assert_one_sentence_error(proc, 2)
    assert says in proc.stderr
    assert lab_pids_under(state) == [] and not (state / "lab.json").exists()


def test_pcap_without_tcpdump_is_one_sentence(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    state = tmp_path / "lab"
    proc = harness("up", "--state-dir", str(state), "--lanes", "1", "--policies", "inspect",
                   "--pcap", str(tmp_path / "c.pcap"), env={**os.environ, "PATH": str(empty)})
    assert_one_sentence_error(proc, 2)
    assert "--pcap needs tcpdump, which is not installed here" in proc.stderr
    assert lab_pids_under(state) == [] and not (tmp_path / "c.pcap").exists()
