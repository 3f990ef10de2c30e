"""Tests for harness.pki.constraints: the exact set a lab CA may sign for, and that verifiers
(OpenSSL's ``openssl verify``, Python's ssl in memory) enforce it.  Offline only: no address
outside loopback is ever contacted (Python's handshakes run over ssl.MemoryBIO)."""

from __future__ import annotations

import ipaddress
import re
import shutil
import ssl
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.pki.ca import CA
from harness.pki.constraints import (
    COMPOSE_BLOCK,
    COMPOSE_GATEWAYS,
    COMPOSE_SUBNETS,
    LAB_DOMAINS,
    LAB_NETWORKS,
    lab_name_constraints,
)
from tests.tlshelpers import handshake

ROOT = Path(__file__).resolve().parents[2]
OPENSSL = shutil.which("openssl")

# Names the lab's certificates carry, and names no lab CA may sign for.
ALLOWED = ["screenmeet.com", "api.screenmeet.com", "beam.scrn.mt", "wrong.host.lab.test", "127.0.0.1", "::1",
           "198.19.1.2", "198.19.2.250", "198.19.3.10", "198.19.11.3", "198.19.15.254", "198.51.100.10"]
FORBIDDEN = ["example.com", "screenmeet.com.example.com", "notscreenmeet.com", "192.168.1.1", "10.20.30.40",
             "172.16.0.1", "127.0.0.2", "8.8.8.8", "198.18.1.10", "198.19.16.1", "198.19.255.1", "169.254.1.1", "2001:db8::1", "fe80::1", "::ffff:127.0.0.1",
             "someone@example.com", "someone@screenmeet.com", "https://example.com/", "spiffe://screenmeet.com/x"]


def test_the_exact_constraint_set():
    nc = lab_name_constraints()
    assert nc.excluded_subtrees is None  # an excluded 0.0.0.0/0 would win over 127.0.0.1 too (RFC 5280)
    assert nc.permitted_subtrees == [
        x509.DNSName("screenmeet.com"), x509.DNSName("scrn.mt"), x509.DNSName("lab.test"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")), x509.IPAddress(ipaddress.ip_network("::1/128")),
        *(x509.IPAddress(ipaddress.ip_network(n)) for n in ("198.19.0.0/20", "198.51.100.0/24")),
        x509.RFC822Name(".invalid"), x509.UniformResourceIdentifier(".invalid"),
    ]
    # Every permitted network is reserved, never a private range someone's real network uses.
    assert all(not any(n.subnet_of(p) for p in map(ipaddress.ip_network, ("10.0.0.0/8", "172.16.0.0/12",
                                                                          "192.168.0.0/16")))
               for n in LAB_NETWORKS if n.version == 4)
    assert LAB_DOMAINS == ("screenmeet.com", "scrn.mt", "lab.test")


def test_compose_networks_have_the_subnets_the_cas_permit():
    text = (ROOT / "compose.yaml").read_text()
    networks = text[text.index("\nnetworks:\n"):]
    found = dict(re.findall(r"^  ([\w-]+):\n(?:    .*\n)*?        - subnet: \$\{LAB_SUBNET_[A-Z_]+:-([\d./]+)\}$",
                            networks, re.M))
    assert found == COMPOSE_SUBNETS
    for subnet in found.values():
        net = ipaddress.ip_network(subnet)
        assert net.prefixlen == 24 and net.subnet_of(ipaddress.ip_network(COMPOSE_BLOCK)), subnet
    assert ipaddress.ip_network(COMPOSE_BLOCK) in LAB_NETWORKS
    # The transparent gateway's addresses (LAB_GW_FIRST on) are permitted too.
    first = re.search(r"LAB_GW_FIRST:-([\d.]+)", text).group(1)
    assert text.count("LAB_GW_FIRST:-") == 2 and ipaddress.ip_address(first) in ipaddress.ip_network(COMPOSE_GATEWAYS)
    assert ipaddress.ip_network(COMPOSE_GATEWAYS) in LAB_NETWORKS


@pytest.fixture(scope="module")
def org():
    return CA(common_name="TLS-lab constraints test CA", key_type="ec")


def python_verifies(ca: CA, leaf, hostname: str) -> tuple[bool, str]:
    """A real TLS handshake in memory, the client trusting ``ca`` and checking ``hostname``."""
    client = ssl.create_default_context()
    ca.configure_trust(client)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(server)
    try:
        handshake(server, client, hostname)
        return True, ""
    except ssl.SSLCertVerificationError as e:
        return False, e.verify_message


def openssl_verifies(tmp_path: Path, ca: CA, leaf) -> tuple[bool, str]:
    """``openssl verify`` with the issuing chain: the org CA trusted, intermediates untrusted."""
    (tmp_path / "ca.pem").write_bytes(ca.chain[-1].cert_pem.bytes())
    (tmp_path / "leaf.pem").write_bytes(leaf.cert_chain_pems[0].bytes())
    chain = b"".join(p.bytes() for p in leaf.cert_chain_pems[1:])
    untrusted = []
    if chain:
        (tmp_path / "chain.pem").write_bytes(chain)
        untrusted = ["-untrusted", str(tmp_path / "chain.pem")]
    proc = subprocess.run([OPENSSL, "verify", "-CAfile", str(tmp_path / "ca.pem"), *untrusted,
                           str(tmp_path / "leaf.pem")], capture_output=True, text=True, timeout=30)
    return proc.returncode == 0, proc.stdout + proc.stderr


def _hostname(name: str) -> str:
    """What a client would check: the name itself, else a lab name carried next to it (e-mail, URI)."""
    return "api.lab.test" if "@" in name or "://" in name else name


@pytest.mark.parametrize("name", ALLOWED)
def test_python_ssl_accepts_the_labs_own_names(org, name):
    ok, why = python_verifies(org, org.issue_cert(name), name)
    assert ok, why


@pytest.mark.parametrize("name", FORBIDDEN)
def test_python_ssl_rejects_names_outside_the_lab(org, name):
    # The leaf also carries a lab name (the one checked): only the outside name can make it fail.
    leaf = org.issue_cert("api.lab.test", name)
    ok, why = python_verifies(org, leaf, "api.lab.test")
    assert not ok and "permitted subtree violation" in why, why
    # The positive next to it: the same leaf without the outside name is fine.
    assert python_verifies(org, org.issue_cert("api.lab.test"), "api.lab.test")[0]


@pytest.mark.skipif(OPENSSL is None, reason="no openssl command")
@pytest.mark.parametrize("name", FORBIDDEN)
def test_openssl_verify_rejects_names_outside_the_lab(tmp_path, org, name):
    ok, out = openssl_verifies(tmp_path, org, org.issue_cert(name))
    assert not ok and "permitted subtree violation" in out, out


@pytest.mark.skipif(OPENSSL is None, reason="no openssl command")
@pytest.mark.parametrize("name", ALLOWED)
def test_openssl_verify_accepts_the_labs_own_names(tmp_path, org, name):
    ok, out = openssl_verifies(tmp_path, org, org.issue_cert(name))
    assert ok, out


@pytest.mark.skipif(OPENSSL is None, reason="no openssl command")
def test_an_unconstrained_intermediate_is_held_by_its_root(tmp_path):
    root = CA(common_name="constrained root", key_type="ec")
    inter = root.create_child_ca(common_name="unconstrained intermediate", key_type="ec", name_constraints=False)
    assert openssl_verifies(tmp_path, root, inter.issue_cert("api.screenmeet.com"))[0]
    ok, out = openssl_verifies(tmp_path, root, inter.issue_cert("10.20.30.40"))
    assert not ok and "permitted subtree violation" in out, out


@pytest.mark.skipif(OPENSSL is None, reason="no openssl command")
def test_without_constraints_the_same_certificates_pass(tmp_path):
    """The negative that shows the checks above can fail: an unconstrained CA signs for anything."""
    free = CA(common_name="unconstrained", key_type="ec", name_constraints=False)
    for name in ("example.com", "192.168.1.1", "10.20.30.40", "someone@example.com"):
        ok, out = openssl_verifies(tmp_path, free, free.issue_cert(name))
        assert ok, out
    assert python_verifies(free, free.issue_cert("api.lab.test", "192.168.1.1"), "api.lab.test")[0]


@pytest.mark.skipif(OPENSSL is None, reason="no openssl command")
def test_lab_cas_serve_tls_only(tmp_path, org):
    """Extended key usage in the CA itself: an S/MIME leaf under an imported lab CA is refused (at depth 1,
    the CA), while a TLS leaf passes."""
    now = datetime.now(timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    smime = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.lab.test")]))
             .issuer_name(org.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
             .sign(org.private_key, hashes.SHA256()))
    (tmp_path / "ca.pem").write_bytes(org.cert_pem.bytes())
    (tmp_path / "tls.pem").write_bytes(org.issue_cert("api.lab.test").cert_chain_pems[0].bytes())
    (tmp_path / "smime.pem").write_bytes(smime.public_bytes(serialization.Encoding.PEM))

    def verify(purpose: str, leaf: str) -> subprocess.CompletedProcess:
        return subprocess.run([OPENSSL, "verify", "-purpose", purpose, "-CAfile", str(tmp_path / "ca.pem"),
                               str(tmp_path / leaf)], capture_output=True, text=True, timeout=30)

    assert verify("sslserver", "tls.pem").returncode == 0
    refused = verify("smimesign", "smime.pem")
    assert refused.returncode != 0 and "error 26 at 1 depth lookup" in refused.stdout + refused.stderr
