"""'harness pki' (harness.cli.pki): generating the lab PKI and checking the one in the state directory."""

from __future__ import annotations

import pytest

from tests.clihelpers import assert_one_sentence_error, harness


@pytest.mark.parametrize("damage,says", [
    ("key-is-a-cert", "holds no private key (a certificate without its key?)"),
    ("ca-without-key", "holds no private key (a certificate without its key?)"),
    ("corrupt-cert", "holds no valid PEM certificate"),
    ("missing-pins", "pins file"),
    ("other-key", "does not belong to certificate"),
])
def test_pki_check_names_the_broken_file(tmp_path, damage, says):
    assert harness("pki", "--state-dir", str(tmp_path)).returncode == 0
    ok = harness("pki", "--check", "--state-dir", str(tmp_path))
    assert ok.returncode == 0 and "is complete" in ok.stdout
    pki = tmp_path / "pki"
    if damage == "key-is-a-cert":
        (pki / "org-ca.key").write_bytes((pki / "org-ca.pem").read_bytes())
    elif damage == "ca-without-key":
        (pki / "mitmproxy" / "mitmproxy-ca.pem").write_bytes((pki / "org-ca.pem").read_bytes())
    elif damage == "corrupt-cert":
        (pki / "public-root.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    elif damage == "missing-pins":
        (pki / "pins.txt").unlink()
    else:
        (pki / "server.key").write_bytes((pki / "server-backup.key").read_bytes())
    proc = harness("pki", "--check", "--state-dir", str(tmp_path))
    assert_one_sentence_error(proc, 2)
    assert says in proc.stderr and "harness pki" in proc.stderr


def test_pki_check_without_a_pki(tmp_path):
    proc = harness("pki", "--check", "--state-dir", str(tmp_path))
    assert_one_sentence_error(proc, 2)
    assert "there is no lab PKI" in proc.stderr
