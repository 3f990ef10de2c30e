"""harness.proxy.chains: per host, the forged chain a client was shown and the real one (pure parts + files)."""

from types import SimpleNamespace

from cryptography import x509
from OpenSSL import crypto

from harness.pki.ca import CA
from harness.proxy.chains import ChainRecorder, complete_chain, host_file, load_pool


def test_host_file_names_are_safe():
    assert host_file("API.screenmeet.com", "forged") == "api.screenmeet.com.forged.pem"
    assert host_file("../../etc/passwd", "real") == ".._.._etc_passwd.real.pem"
    assert "/" not in host_file("a/b", "real")


def test_complete_chain_climbs_to_the_root_and_stops_where_the_pool_ends():
    root = CA(common_name="Root (test)")
    sub = root.create_child_ca(common_name="Sub (test)")
    leaf = sub.issue_cert("api.screenmeet.com").cert
    assert complete_chain(leaf, [root.cert, sub.cert]) == [leaf, sub.cert, root.cert]
    assert complete_chain(leaf, [root.cert]) == [leaf]  # the missing intermediate is not invented
    assert complete_chain(leaf, []) == [leaf]


def test_load_pool_skips_keys_and_garbage(tmp_path):
    ca = CA(common_name="Pool (test)")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes() + ca.private_key_pem.bytes())
    (tmp_path / "key.pem").write_bytes(ca.private_key_pem.bytes())
    (tmp_path / "bad.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n")
    assert load_pool([tmp_path / "ca.pem", tmp_path / "key.pem", tmp_path / "bad.pem", tmp_path / "gone"]) == [ca.cert]


def test_recorder_writes_each_hosts_forged_and_real_chain_once(tmp_path):
    org = CA(common_name="Org (test)")
    (tmp_path / "org.pem").write_bytes(org.cert_pem.bytes())
    forged = org.issue_cert("api.screenmeet.com").cert
    real_ca = CA(common_name="Public (test)")
    real = real_ca.issue_cert("api.screenmeet.com")
    rec = ChainRecorder(tmp_path / "chains", [tmp_path / "org.pem"])

    ssl_conn = SimpleNamespace(get_certificate=lambda: crypto.X509.from_cryptography(forged))
    rec.tls_established_client(SimpleNamespace(ssl_conn=ssl_conn, conn=SimpleNamespace(sni="api.screenmeet.com")))
    certs = [SimpleNamespace(to_pem=lambda c=c: c.bytes()) for c in real.cert_chain_pems]
    rec.tls_established_server(SimpleNamespace(conn=SimpleNamespace(sni="api.screenmeet.com", certificate_list=certs)))

    shown = x509.load_pem_x509_certificates((tmp_path / "chains" / "api.screenmeet.com.forged.pem").read_bytes())
    assert shown == [forged, org.cert]
    met = x509.load_pem_x509_certificates((tmp_path / "chains" / "api.screenmeet.com.real.pem").read_bytes())
    assert met[0] == real.cert
    # Once per host: a second connection does not rewrite the file.
    (tmp_path / "chains" / "api.screenmeet.com.real.pem").write_text("kept")
    rec.tls_established_server(SimpleNamespace(conn=SimpleNamespace(sni="api.screenmeet.com", certificate_list=certs)))
    assert (tmp_path / "chains" / "api.screenmeet.com.real.pem").read_text() == "kept"
