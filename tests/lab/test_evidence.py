"""harness.lab.evidence: the files the evidence options name, checked before anything starts."""

import os
import stat

import pytest

from harness.errors import BadFileError, EnvironmentProblem, UsageError
from harness.lab import evidence
from harness.lab.options import LabOptions
from harness.pki.ca import CA


def test_outputs_are_created_empty_and_private(tmp_path):
    old = tmp_path / "keys.txt"
    old.write_text("an old key log")
    old.chmod(0o644)
    out = evidence.prepare_outputs(LabOptions(state_dir=tmp_path / "s", keylog=old, har=tmp_path / "f.har",
                                              save_flows=tmp_path / "f.mitm"))
    assert set(out) == {"keylog", "har", "save_flows"}
    for path in out.values():
        assert os.path.isabs(path) and os.path.getsize(path) == 0
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("make,says", [
    (lambda p: p.mkdir(), "is a directory; give a file name"),
    (lambda p: None, "does not exist; create it"),
    (lambda p: os.mkfifo(p), "is not a regular file"),
])
def test_a_bad_output_path_is_one_sentence_and_changes_nothing(tmp_path, make, says):
    bad = tmp_path / "out"
    make(bad)
    target = bad / "f.har" if says.startswith("does not") else bad
    good = tmp_path / "keys.txt"
    good.write_text("keep me")
    with pytest.raises(UsageError, match=says):
        evidence.prepare_outputs(LabOptions(state_dir=tmp_path / "s", har=target, keylog=good))
    assert good.read_text() == "keep me"  # checked before any file was touched


def test_pcap_without_tcpdump_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence.shutil, "which", lambda name: None)
    with pytest.raises(UsageError, match="--pcap needs tcpdump, which is not installed here"):
        evidence.prepare_outputs(LabOptions(state_dir=tmp_path / "s", pcap=tmp_path / "c.pcap"))
    assert not (tmp_path / "c.pcap").exists()


def test_upstream_trust_is_the_given_bundle_or_the_systems(tmp_path, monkeypatch):
    assert evidence.upstream_trust(LabOptions(state_dir=tmp_path)) is None  # mock: the lab's own root
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(CA(common_name="Stand-in (test)").cert_pem.bytes())
    assert evidence.upstream_trust(LabOptions(state_dir=tmp_path, upstream="live", upstream_trust=bundle)) == str(bundle)
    monkeypatch.setattr(evidence, "system_trust_bundle", lambda: "/etc/ssl/certs/ca-certificates.crt")
    assert evidence.upstream_trust(LabOptions(state_dir=tmp_path, upstream="live")) == "/etc/ssl/certs/ca-certificates.crt"
    monkeypatch.setattr(evidence, "system_trust_bundle", lambda: None)
    with pytest.raises(EnvironmentProblem, match="this machine has none"):
        evidence.upstream_trust(LabOptions(state_dir=tmp_path, upstream="live"))


@pytest.mark.parametrize("content,says", [
    (b"", "holds no PEM certificate"),
    (b"not a certificate\n", "holds no PEM certificate"),
    (None, "does not exist"),
])
def test_a_bad_upstream_trust_file_is_one_sentence(tmp_path, content, says):
    path = tmp_path / "trust.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadFileError, match=says):
        evidence.upstream_trust(LabOptions(state_dir=tmp_path, upstream="live", upstream_trust=path))
