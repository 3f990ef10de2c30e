"""Learning the clients' own fingerprints at lab start."""

import shutil

import pytest

from harness.lab.fingerprints import REFERENCE_FAMILY, curl_hellos, learn, program_hello, reference_hellos, write_known
from harness.model.tlsfingerprint import Hello, ja4
from harness.server.detect import KnownClients


def test_reference_client_hellos_cover_every_version_bound():
    hellos = [Hello.from_client_hello(h) for h in reference_hellos()]
    assert {h.sni for h in hellos} == {"api.screenmeet.com"} and all(h.alpn == ("http/1.1",) for h in hellos)
    prints = {ja4(h) for h in hellos}
    assert any(p.startswith("t13") for p in prints) and any(p.startswith("t12") for p in prints)
    # --tls-max 1.2 changes the offer, so it is learned separately.
    assert len(prints) >= 2


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_is_learned_from_a_real_connection():
    hellos = [Hello.from_client_hello(h) for h in curl_hellos()]
    assert len(hellos) == 3 and {h.sni for h in hellos} == {"api.screenmeet.com"}
    assert {h.alpn[0] for h in hellos} == {"h2", "http/1.1"}  # default and --http2 offer h2 first; --http1.1 not


def test_a_program_that_sends_no_hello_gives_none():
    assert program_hello(["true"], timeout=1.0) is None


def test_written_file_is_what_the_server_reads(tmp_path):
    path = write_known(tmp_path / "known.json")
    known = KnownClients.from_json(path.read_text())
    assert known.ja4[REFERENCE_FAMILY] == frozenset(learn()[REFERENCE_FAMILY])


def test_the_module_writes_the_file_or_says_why_not(tmp_path, capsys):
    from harness.lab.fingerprints import main

    assert main([str(tmp_path / "k.json")]) == 0 and (tmp_path / "k.json").is_file()
    assert main([]) == 2 and "usage:" in capsys.readouterr().err
    assert main([str(tmp_path / "missing" / "k.json")]) == 2
    assert "give a writable path" in capsys.readouterr().err
