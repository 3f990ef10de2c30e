"""What a lab CA may sign for: the NameConstraints every lab CA carries (DESIGN.md section 7).

A reviewer may import a lab CA into a real machine's trust store, so each one
is limited to the names and addresses the lab itself puts in certificates:

* DNS: :data:`LAB_DOMAINS` (and their subdomains);
* IP: :data:`LAB_NETWORKS`: loopback (the local lab's forged leaves name the
  mock server's address, 127.0.0.1), and in compose the block the lab's
  networks are taken from (:data:`COMPOSE_BLOCK`) and the gateway addresses: for a client that sends no SNI, mitmproxy names the
  address the client reached (the proxy's corp address, or a transparent
  connection's gateway address) next to the upstream's host name.  All of
  them lie in ranges reserved for testing, never routed on the internet.
  (The local gateway's pool, 198.18.0.0/15, is not permitted: there such a
  leaf names only addresses, so OpenSSL checks its IP-shaped common name
  against the DNS subtrees and refuses it whatever the IP subtrees say.)
* e-mail (rfc822Name) and URI names: none (see below).

Why the extension has this shape (RFC 5280 section 4.2.1.10, and what OpenSSL
enforces in ``crypto/x509/v3_ncons.c``):

* Permitted subtrees bind per name type: once one iPAddress subtree is
  permitted, every IP address outside all of them is rejected, IPv4 and IPv6
  alike (both are iPAddress names; an IPv6 subtree is listed too, for
  verifiers that judge the two families apart).  So no excluded 0.0.0.0/0 or
  ::/0: an excluded subtree wins over a permitted one, and would reject
  127.0.0.1 as well (OpenSSL: "excluded subtree violation").
* A type with no permitted subtree is unconstrained, and excluded subtrees
  cannot name *every* mailbox or URI (unlike dNSName, an empty rfc822Name or
  URI base matches nothing in OpenSSL, and ``cryptography`` refuses an empty
  rfc822Name).  So e-mail and URI names are permitted only under the reserved
  ``.invalid`` top-level domain (RFC 6761: it never resolves), which excludes
  every real one: a certificate naming ``someone@example.com`` or
  ``spiffe://example.com/...`` fails as a permitted subtree violation.
"""

from __future__ import annotations

import ipaddress

from cryptography import x509

# The ScreenMeet names the mock server answers as, and the lab's own test names
# (RFC 6761's .test: hostile certificates' wrong.host.lab.test).
LAB_DOMAINS = ("screenmeet.com", "scrn.mt", "lab.test")

# compose.yaml's networks, by default (tests/pki/test_constraints.py checks the file): RFC 2544's
# benchmarking range, which no real network routes.  LAB_SUBNET_* may move them (a second compose
# project beside the first), but only to other /24s of COMPOSE_BLOCK (harness.lab.composeenv checks).
COMPOSE_SUBNETS = {"corp": "198.19.1.0/24", "internet": "198.19.2.0/24", "corp-gw": "198.19.3.0/24"}
COMPOSE_BLOCK = "198.19.0.0/20"
# The compose gateway addresses (compose.yaml's LAB_GW_FIRST, 198.51.100.10 on): RFC 5737 TEST-NET-2.
COMPOSE_GATEWAYS = "198.51.100.0/24"

# Every address the lab's certificates may name.
LAB_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.1/32", "::1/128",  # the local lab (IPv4 and IPv6 loopback)
    COMPOSE_BLOCK, COMPOSE_GATEWAYS,
))

# Where e-mail and URI names may point: nowhere real (see the module docstring).
NOWHERE = ".invalid"


def lab_name_constraints(domains=LAB_DOMAINS, networks=LAB_NETWORKS, mailboxes=()) -> x509.NameConstraints:
    """The NameConstraints of a lab CA: ``domains`` and ``networks`` permitted, no e-mail or URI names
    but exactly ``mailboxes``: the emailAddress a vendor's own CA subjects carry (OpenSSL checks a
    subject's emailAddress against the rfc822Name subtrees, so a subordinate CA named like
    Zscaler's, ``emailAddress=support@zscaler.com``, needs that one mailbox permitted)."""
    permitted: list[x509.GeneralName] = [x509.DNSName(d) for d in domains]
    permitted += [x509.IPAddress(ipaddress.ip_network(n)) for n in networks]
    permitted += [x509.RFC822Name(m) for m in mailboxes]
    permitted += [x509.RFC822Name(NOWHERE), x509.UniformResourceIdentifier(NOWHERE)]
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None)
