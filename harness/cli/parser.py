"""The ``harness`` command line's arguments, and the one place they become a :class:`LabOptions`."""

from __future__ import annotations

import argparse
import os

from harness import __version__
from harness.errors import ArgumentParser
from harness.lab.options import BACKENDS, DEFAULT_ORG_CN, DEFAULT_ORG_O, LOOPBACK, LabOptions
from harness.lab.statedir import default_state_dir
from harness.model.values import (
    certificate_name,
    file_descriptor,
    lane_count,
    listen_address,
    path_argument,
    port_number,
    positive_seconds,
)
from harness.model.vendors import get_vendor
from harness.proxy.config import UPSTREAM_MODES


class _Parser(ArgumentParser):
    """argparse whose errors are one sentence (a UsageError) pointing at the command's --help."""

    named_in_errors = False  # main() prints "harness: " in front


def _lab_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lab", choices=BACKENDS, default=os.environ.get("HARNESS_LAB", "local"),
                   help="where the lab runs: local processes (default) or Docker Compose")
    p.add_argument("--state-dir", type=path_argument, default=None, help="where PKI, logs and lab.json go (default .lab)")
    p.add_argument("--lanes", type=lane_count, default=4,
                   help="parallel lanes: listeners per policy (default 4, at most 64)")
    p.add_argument("--show-secrets", action="store_true", help="journal credentials in clear (never in shared reports)")
    p.add_argument("--org-cn", type=certificate_name, default=DEFAULT_ORG_CN, help="common name of the organisation's inspection CA")
    p.add_argument("--org-o", type=certificate_name, default=DEFAULT_ORG_O, help="organisation of the inspection CA")
    p.add_argument("--no-name-constraints", action="store_true",
                   help="do not name-constrain the lab CAs to the lab's domains (only to inspect other apps)")
    p.add_argument("--vendor", metavar="NAME", default=os.environ.get("HARNESS_VENDOR") or None,
                   help="emulate an inspection product from fixtures/vendors.toml (zscaler, palo-alto, ...): "
                        "its CA names and chain, its forging, its action on untrusted upstreams")
    p.add_argument("--transparent", action="store_true",
                   help="local lab: also build the transparent gateway (a network namespace behind iptables "
                        "REDIRECT; needs root) for every policy; 'harness run' builds it for transparent rows anyway")
    p.add_argument("--base-port", type=port_number, default=None,
                   help="local lab: fixed ports from here (proxy listeners, then server, then journals) "
                        "instead of ephemeral ones")
    # Real devices: the proxy listeners (and the PAC/WPAD server) on a LAN address.
    p.add_argument("--listen", type=listen_address, default=LOOPBACK, metavar="ADDRESS",
                   help="local lab: put the proxy listeners and the PAC/WPAD server on this address of this "
                        "machine (default 127.0.0.1), so a real device on that network can use them; the "
                        "journals stay on loopback")


def _evidence_options(p: argparse.ArgumentParser) -> None:
    """``up``'s live upstream and evidence flags (local lab)."""
    g = p.add_argument_group("live upstream and evidence (local lab)")
    g.add_argument("--upstream", choices=UPSTREAM_MODES, default="mock",
                   help="where ScreenMeet names go: the lab's mock server (default) or, with live, their real "
                        "addresses (system DNS), verified against the system trust store")
    g.add_argument("--upstream-trust", type=path_argument, metavar="FILE",
                   help="with --upstream live: the CA bundle real servers are verified against (default: the system's)")
    g.add_argument("--web", action="store_true",
                   help="run the proxy under mitmweb: watch decrypted flows live (UI on 127.0.0.1; URL in the banner)")
    g.add_argument("--save-flows", type=path_argument, metavar="FILE", help="write every flow to a mitmproxy flow file")
    g.add_argument("--har", type=path_argument, metavar="FILE",
                   help="write mitmproxy's HAR export of the flows (when the lab stops)")
    g.add_argument("--keylog", type=path_argument, metavar="FILE",
                   help="TLS key log of both legs (SSLKEYLOGFILE format, 0600: it decrypts everything)")
    g.add_argument("--pcap", type=path_argument, metavar="FILE",
                   help="capture the lab's traffic with tcpdump (0600; with --keylog, Wireshark decrypts it)")


def evidence_options(args: argparse.Namespace) -> dict:
    """The :class:`LabOptions` fields of ``up``'s live upstream and evidence flags."""
    return dict(upstream=args.upstream, upstream_trust=args.upstream_trust, web=args.web,
                save_flows=args.save_flows, har=args.har, keylog=args.keylog, pcap=args.pcap)


def build_parser() -> argparse.ArgumentParser:
    # Run by ./lab, the usage lines and "see '... --help'" name the command the person typed.
    prog = os.environ.get("HARNESS_PROG") or "harness"
    p = _Parser(prog=prog, description="A lab that reproduces enterprise TLS inspection against pinned ScreenMeet "
                "clients: a real mitmproxy, a mock ScreenMeet server, and two pinned reference clients.",
                epilog=f"Run '{prog} COMMAND --help' for a command's options.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, summary: str, description: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=description, **kw)

    up = command("up", "start the lab and print where everything is",
                 "Start the lab (local processes by default, or --lab compose), print its proxies, trust "
                 "bundles, pins, journals and commands to try, and write them to STATE_DIR/lab.json. "
                 "Runs until Ctrl-C, or returns with --detach.")
    _lab_options(up)
    up.add_argument("--detach", action="store_true", help="return once the lab is up; stop it with 'harness down'")
    up.add_argument("--policies", default="default", metavar="all|default|NAME,...",
                    help="which policies get listeners: those of the everyday matrix (default), all, or a list")
    up.add_argument("--replace", action="store_true",
                    help="if a lab already runs in the state directory, stop it first (else 'up' says which and exits 2)")
    up.add_argument("--ready-fd", type=file_descriptor, help=argparse.SUPPRESS)
    up.add_argument("--lock-fd", type=int, help=argparse.SUPPRESS)  # 'up --detach' hands its locked state dir down
    _evidence_options(up)

    down = command("down", "stop the lab started by 'harness up'",
                   "Stop the lab that 'harness up' started in the state directory; only processes that "
                   "are that lab's are signalled, and stopping a stopped lab is not an error.")
    down.add_argument("--lab", choices=BACKENDS, default=os.environ.get("HARNESS_LAB", "local"),
                      help="which lab to stop: local (default, or $HARNESS_LAB) or compose")
    down.add_argument("--state-dir", type=path_argument, default=None, help="the lab's state directory (default .lab)")

    run = command("run", "run the scenario matrix on a fresh lab and judge it from the journals",
                  "Start a fresh lab, run every (scenario, client) cell through it, judge each cell from "
                  "the proxy's and the server's journals, print the table and exit 1 on any mismatch.")
    _lab_options(run)
    run.add_argument("--scenario", action="append", metavar="NAME",
                     help="run only this scenario (repeatable; names in fixtures/scenarios.toml)")
    run.add_argument("--tag", action="append", metavar="TAG",
                     help="run only scenarios with this tag (repeatable: core, vendors, mistakes, transparent, "
                          "extended, ...)")
    run.add_argument("--client", action="append", metavar="NAME",
                     help="run this client (repeatable): attended, beam, or a definition from fixtures/clients.toml "
                          "or --client-file")
    run.add_argument("--client-file", action="append", type=path_argument, metavar="TOML",
                     help="client definitions ([client.NAME] tables); without --client, runs all of them (repeatable)")
    run.add_argument("--report", type=path_argument, metavar="DIR",
                     help="write report.html, junit.xml and report.json to DIR (credentials redacted unless --show-secrets)")
    run.add_argument("--scenarios-file", type=path_argument, metavar="TOML",
                     help="scenario TOML (default fixtures/scenarios.toml); a policies.toml beside it is used too")
    run.add_argument("--all-vendors", action="store_true",
                     help="run the matrix once per vendor profile (default rows: --tag vendors)")
    run.add_argument("--subprocess", action="store_true", help="run the reference clients as subprocesses")
    run.add_argument("--json", action="store_true", help="print the results as one JSON document")

    pki = command("pki", "generate the lab PKI (CAs, server certificate, pins, trust bundles)",
                  "Generate a fresh lab PKI into STATE_DIR/pki (keys 0600): the public root and intermediate, "
                  "the mock server's certificate, the organisation's inspection CA, the pins file and the "
                  "trust bundles; or check an existing one with --check.")
    pki.add_argument("--state-dir", type=path_argument, default=None, help="where the pki/ directory goes (default .lab)")
    pki.add_argument("--org-cn", type=certificate_name, default=DEFAULT_ORG_CN,
                     help=f"common name of the organisation's inspection CA (default {DEFAULT_ORG_CN!r})")
    pki.add_argument("--org-o", type=certificate_name, default=DEFAULT_ORG_O,
                     help=f"organisation of the inspection CA (default {DEFAULT_ORG_O!r})")
    pki.add_argument("--no-name-constraints", action="store_true",
                     help="do not name-constrain the lab CAs to the lab's domains (only to inspect other apps)")
    pki.add_argument("--name-constraints", choices=("on", "off"), default="on",
                     help="'off' is --no-name-constraints (compose.yaml passes the one value it is given)")
    pki.add_argument("--vendor", metavar="NAME", help="the CA names and chain of a vendor profile")
    pki.add_argument("--sites", metavar="A,B", default="",
                     help="also issue these hostile sites' certificates (pki/sites/<case>.pem; see harness.pki.hostile)")
    pki.add_argument("--check", action="store_true",
                     help="check the existing lab PKI (every file parses, every key matches) instead of generating one")
    # 'harness pki export DIR' (issue 14): the org CA in every install format.
    pki_actions = pki.add_subparsers(dest="pki_action", metavar="ACTION", parser_class=_Parser)
    export = pki_actions.add_parser(
        "export", help="write the organisation CA in every install format to DIR",
        description="Write the root CA that clients must trust (the organisation's inspection CA; a vendor lab's "
                    "root) to DIR as PEM, DER (.cer, .crt), PKCS#12 (.p12, certificate only), an Apple "
                    "configuration profile (.mobileconfig) and INSTALL.md with the install commands per OS. "
                    "No private key is ever written.")
    export.add_argument("directory", metavar="DIR", type=path_argument, help="where the files go (created if missing)")
    export.add_argument("--state-dir", type=path_argument, default=argparse.SUPPRESS,
                        help="the lab whose CA to export (default .lab, or $HARNESS_STATE_DIR)")
    export.add_argument("--p12-password", metavar="TEXT", default=None,
                        help="password of the .p12 (default $HARNESS_P12_PASSWORD, else none)")

    probe = command("probe", "connect to HOST as the clients do and diagnose TLS inspection (no application bytes unless it is decrypted)",
                    "Connect to HOST as the reference clients do (same proxy handling, trust store and pin check; "
                    "no application byte, except one credential-free HEAD / where the connection is found decrypted, "
                    "to spot a proxy's block page) and say whether, and by whom, TLS is inspected, and the fix.")
    probe.add_argument("host", metavar="HOST", help="host name, HOST:PORT or https:// URL, e.g. beam.screenmeet.com")
    probe.add_argument("--proxy", help="explicit HTTP proxy, http://HOST:PORT (default: $HTTPS_PROXY)")
    probe.add_argument("--no-proxy", action="store_true", help="ignore $HTTPS_PROXY and connect directly")
    probe.add_argument("--pins", metavar="FILE", help="pins file (sha256/<base64> per line): tells inspection from the real server")
    probe.add_argument("--trust", metavar="PEM", help="CA bundle to validate against (default: the system store)")
    probe.add_argument("--connect-to", metavar="HOST:PORT", help="connect here instead (SNI and checks keep HOST)")
    probe.add_argument("--public-trust", metavar="PEM", help="the public CA bundle: without --pins, an issuer outside it "
                       "means inspection is likely (default: the system store)")
    probe.add_argument("--handshake-only", action="store_true", help="never write an application byte (no HEAD / to "
                       "spot a proxy's block page on a decrypted connection)")
    probe.add_argument("--timeout", type=positive_seconds, default=10.0, help="seconds for each network step (default 10)")
    probe.add_argument("--json", action="store_true", help="print one JSON object")

    evidence = command("evidence", "bundle what the running or just-stopped lab saw: journals, chains, flows, "
                       "HAR, key log, pcap, SUMMARY.md, and a .tar.gz",
                       "Write the evidence of the lab in the state directory to the new directory DIR and DIR.tar.gz: "
                       "both journals, each host's forged and real chain (PEM), the flow file, HAR, key log and pcap "
                       "when 'harness up' captured them, and SUMMARY.md (what was inspected, what was excepted, "
                       "which clients refused or were read). Flows, HAR, key log and pcap hold secrets: the bundle "
                       "is then 0700/0600.")
    evidence.add_argument("dir", metavar="DIR", type=path_argument, help="a new (or empty) directory for the bundle")
    evidence.add_argument("--state-dir", type=path_argument, default=None, help="the lab's state directory (default .lab)")

    audit = command("audit", "grade someone else's inspection proxy against the lab's hostile sites",
                    "Drive the inspection proxy at --proxy (an appliance, a mitmproxy or squid: not the lab's) "
                    "to the lab's hostile sites (<case>.sites.lab.test, served for the audit on --listen) and "
                    "report per site whether it blocked the bad certificate, passed it through, or re-signed "
                    "it as trusted (dangerous); whether its forged leaves share a key, which TLS versions it "
                    "accepts from clients, whether *.screenmeet.com is excepted, and a grade A-F. Exit 1 on "
                    "grade F, 2 on bad input.")
    audit.add_argument("--proxy", required=True, metavar="URL", help="the proxy to audit: http://[USER:PASSWORD@]HOST:PORT")
    audit.add_argument("--trust", metavar="PEM", help="the organisation's CA certificate the proxy forges with (what "
                       "company machines trust); default: the CA that signs the control site's forged certificate")
    audit.add_argument("--listen", type=listen_address, default=LOOPBACK, metavar="ADDRESS",
                       help="serve the sites on this address of this machine (default 127.0.0.1); the proxy must "
                            "resolve *.sites.lab.test (and api./beam.screenmeet.com) to it")
    audit.add_argument("--state-dir", type=path_argument, default=None,
                       help="the lab whose PKI the sites use (default .lab; generated if missing): the proxy "
                            "must trust its public root upstream")
    audit.add_argument("--report", type=path_argument, metavar="DIR", help="also write audit.html and audit.json to DIR")
    audit.add_argument("--timeout", type=positive_seconds, default=10.0, help="seconds for each network step (default 10)")
    audit.add_argument("--json", action="store_true", help="print the report as one JSON object")

    # These have parsers of their own (main() hands them argv untouched); listed here for --help.
    command("images", "build the compose lab's image (see 'harness images --help')",
            "Build the compose lab's image.", add_help=False)
    for name in ("attended", "beam"):
        c = command(name, f"the reference {name} client (see 'harness {name} --help')",
                    f"The reference {name} client.", add_help=False)
        c.add_argument("args", nargs=argparse.REMAINDER)
    return p


def lab_options(args: argparse.Namespace, **changes) -> LabOptions:
    """The :class:`LabOptions` that ``up``/``run`` arguments ask for (``changes`` override fields)."""
    fields = dict(
        backend=args.lab, state_dir=args.state_dir or default_state_dir(), lanes=args.lanes,
        show_secrets=args.show_secrets, org_common_name=args.org_cn, org_organization=args.org_o,
        name_constraints=not args.no_name_constraints, vendor=get_vendor(args.vendor) if args.vendor else None,
        transparent=True if args.transparent else False, base_port=args.base_port,
    )
    fields.update(listen=args.listen)
    return LabOptions(**{**fields, **changes})
