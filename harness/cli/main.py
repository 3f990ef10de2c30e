"""The ``harness`` command line.

::

    harness up [--detach]        start the lab (local processes by default) and say where everything is
    harness down                 stop it, leaving no process behind
    harness run                  start a lab, run the scenario matrix, print the table, exit 1 on a mismatch
    harness probe HOST           connect as the clients do and say whether (and how) TLS is inspected
    harness pki                  generate a lab PKI into the state directory
    harness images build         build the lab image (offline Debian base + wheelhouse if no registry answers)
    harness attended | beam ...  the reference clients

Every :class:`harness.errors.LabError` is printed as its one sentence with its
exit code; there is no traceback for bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from harness.errors import LabError, UsageError
from harness.lab import BACKENDS, LabInfo, default_state_dir
from harness.model.values import port_number, positive_int, positive_seconds


DEFAULT_ORG_CN, DEFAULT_ORG_O = "Acme Corp TLS Inspection Root CA", "Acme Corp"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}; see '{self.prog} --help'.")


def _lab_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lab", choices=BACKENDS, default=os.environ.get("HARNESS_LAB", "local"),
                   help="where the lab runs: local processes (default) or Docker Compose")
    p.add_argument("--state-dir", type=Path, default=None, help="where PKI, logs and lab.json go (default .lab)")
    p.add_argument("--lanes", type=positive_int, default=4, help="parallel lanes: listeners per policy (default 4)")
    p.add_argument("--show-secrets", action="store_true", help="journal credentials in clear (never in shared reports)")
    p.add_argument("--org-cn", default=DEFAULT_ORG_CN, help="common name of the organisation's inspection CA")
    p.add_argument("--org-o", default=DEFAULT_ORG_O, help="organisation of the inspection CA")
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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="harness", description="A lab that reproduces enterprise TLS inspection against pinned ScreenMeet clients.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    up = sub.add_parser("up", help="start the lab and print where everything is")
    _lab_options(up)
    up.add_argument("--detach", action="store_true", help="return once the lab is up; stop it with 'harness down'")
    up.add_argument("--policies", default="default", metavar="all|default|NAME,...",
                    help="which policies get listeners: those of the everyday matrix (default), all, or a list")
    up.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)

    down = sub.add_parser("down", help="stop the lab started by 'harness up'")
    down.add_argument("--lab", choices=BACKENDS, default=os.environ.get("HARNESS_LAB", "local"))
    down.add_argument("--state-dir", type=Path, default=None)

    run = sub.add_parser("run", help="run the scenario matrix on a fresh lab and judge it from the journals")
    _lab_options(run)
    run.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    run.add_argument("--tag", action="append", help="run only scenarios with this tag (e.g. core)")
    run.add_argument("--client", action="append", metavar="NAME",
                     help="run this client (repeatable): attended, beam, or a definition from fixtures/clients.toml "
                          "or --client-file")
    run.add_argument("--client-file", action="append", type=Path, metavar="TOML",
                     help="client definitions ([client.NAME] tables); without --client, runs all of them (repeatable)")
    run.add_argument("--report", type=Path, metavar="DIR",
                     help="write report.html, junit.xml and report.json to DIR (credentials redacted unless --show-secrets)")
    run.add_argument("--scenarios-file", type=Path, help="scenario TOML (default fixtures/scenarios.toml)")
    run.add_argument("--all-vendors", action="store_true",
                     help="run the matrix once per vendor profile (default rows: --tag vendors)")
    run.add_argument("--subprocess", action="store_true", help="run the reference clients as subprocesses")
    run.add_argument("--json", action="store_true", help="print the results as one JSON document")

    pki = sub.add_parser("pki", help="generate the lab PKI (CAs, server certificate, pins, trust bundles)")
    pki.add_argument("--state-dir", type=Path, default=None)
    pki.add_argument("--org-cn", default=DEFAULT_ORG_CN)
    pki.add_argument("--org-o", default=DEFAULT_ORG_O)
    pki.add_argument("--no-name-constraints", action="store_true")
    pki.add_argument("--vendor", metavar="NAME", help="the CA names and chain of a vendor profile")
    pki.add_argument("--check", action="store_true",
                     help="check the existing lab PKI (every file parses, every key matches) instead of generating one")

    probe = sub.add_parser("probe", help="connect to HOST as the clients do and diagnose TLS inspection (no application bytes)")
    probe.add_argument("host", metavar="HOST", help="host name, HOST:PORT or https:// URL, e.g. beam.screenmeet.com")
    probe.add_argument("--proxy", help="explicit HTTP proxy, http://HOST:PORT (default: $HTTPS_PROXY)")
    probe.add_argument("--no-proxy", action="store_true", help="ignore $HTTPS_PROXY and connect directly")
    probe.add_argument("--pins", metavar="FILE", help="pins file (sha256/<base64> per line): tells inspection from the real server")
    probe.add_argument("--trust", metavar="PEM", help="CA bundle to validate against (default: the system store)")
    probe.add_argument("--connect-to", metavar="HOST:PORT", help="connect here instead (SNI and checks keep HOST)")
    probe.add_argument("--timeout", type=positive_seconds, default=10.0, help="seconds for each network step (default 10)")
    probe.add_argument("--json", action="store_true", help="print one JSON object")

    sub.add_parser("images", help="build the compose lab's image (see 'harness images --help')", add_help=False)
    for name in ("attended", "beam"):
        c = sub.add_parser(name, help=f"the reference {name} client (see 'harness {name} --help')", add_help=False)
        c.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _state_dir(args) -> Path:
    return args.state_dir or default_state_dir()


def _make_lab(args, state_dir: Path, vendor=None, policies=None, proxy_child=None):
    """The lab the options ask for; ``vendor`` (a VendorProfile) overrides ``--vendor``;
    ``policies`` (default: every policy) are the listeners it serves; ``proxy_child``
    a proxy from :func:`harness.lab.local.prespawn_proxy` for the local lab to adopt."""
    from harness.model.policy import load_policies

    if args.lab == "compose":
        from harness.lab.compose import ComposeLab as Lab
    else:
        from harness.lab.local import LocalLab as Lab
    extra = {"proxy_child": proxy_child} if proxy_child is not None else {}
    if getattr(args, "base_port", None) is not None:
        if args.lab != "local":
            raise UsageError("--base-port applies to the local lab only; compose.yaml fixes the compose ports.")
        extra["base_port"] = args.base_port
    if vendor is None and getattr(args, "vendor", None):
        from harness.model.vendors import get_vendor

        vendor = get_vendor(args.vendor)
    if vendor is not None:
        if args.lab != "local":
            raise UsageError("vendor profiles run on the local lab; drop --lab compose or --vendor.")
        if args.org_cn != DEFAULT_ORG_CN or args.org_o != DEFAULT_ORG_O:
            raise UsageError(f"--vendor {vendor.name} names the inspection CA itself; drop --org-cn/--org-o.")
        extra["vendor"] = vendor
    # Transparent gateway: required with --transparent; where possible for the rows that use it.
    if getattr(args, "transparent", False) or getattr(args, "transparent_policies", None):
        extra["transparent"] = True if args.transparent else None
        extra["transparent_policies"] = None if args.transparent else args.transparent_policies
    if policies is None or args.lab == "compose":  # compose.yaml serves every policy in the image
        policies = load_policies()
    return Lab(
        state_dir, policies=policies, lanes=args.lanes, show_secrets=args.show_secrets,
        org_common_name=args.org_cn, org_organization=args.org_o, name_constraints=not args.no_name_constraints,
        **extra,
    )


def describe_lab(info: LabInfo) -> str:
    """The human summary printed by ``harness up``."""
    pki = info.pki
    lane0 = {policy: urls[0] for policy, urls in info.proxies.items()}
    width = max(len(p) for p in lane0)
    lines = [
        f"TLS-inspection lab is up ({info.backend}, {info.lanes} lane(s)). Stop it with Ctrl-C or 'harness down'.",
        f"  inspection CA     CN={info.org_issuer_cn}  ({pki['org_ca']})",
        *([f"  vendor profile    {info.extra['vendor']} (fixtures/vendors.toml)"] if info.extra.get("vendor") else []),
        f"  trust bundles     public only: {pki['trust_public']}",
        f"                    public + org CA: {pki['trust_public_org']}",
        f"  pins              {pki['pins_file']}",
        "  proxies (lane 0)",
        *[f"    {policy.ljust(width)}  {url}" for policy, url in lane0.items()],
        f"  server (direct)   {info.server_connect[0]}  (SNI/Host must be a ScreenMeet name)",
        f"  journals          proxy {info.proxy_admin}/journal   server {info.server_admin}/journal",
        *([f"  corp shell        docker exec -it {info.extra['client_exec']['beam'][-1][:12]} sh   (a machine on the corp network)"]
          if info.backend == "compose" else []),
        "  try" + (" (inside a corp container)" if info.backend == "compose" else ""),
        f"    curl --proxy {lane0.get('inspect', '')} --cacert {pki['trust_public_org']} -v https://api.screenmeet.com/",
        f"    harness beam --proxy {lane0.get('inspect', '')} --trust {pki['trust_public_org']} --pins {pki['pins_file']} --once",
        f"    harness attended --proxy {lane0.get('exception-wildcard', '')} --trust {pki['trust_public_org']} --pins {pki['pins_file']}",
        *_transparent_lines(info),
        f"  written to        {Path(info.state_dir) / 'lab.json'}",
    ]
    return "\n".join(lines)


def _transparent_lines(info: LabInfo) -> list[str]:
    """How to run a client behind the transparent gateway, if the lab has one."""
    t = info.extra.get("transparent")
    if not t or not t.get("gateways"):
        return []
    policy = "inspect" if "inspect" in t["gateways"] else next(iter(t["gateways"]))
    where = (f"sudo ip netns exec {t['namespace']}" if info.backend == "local"
             else f"docker exec -u lab {info.extra['client_exec']['beam@transparent'][-1][:12]}")
    return [f"  transparent       no proxy; gateway address for {policy}: {t['gateways'][policy][0]} (all in lab.json)",
            f"    {where} harness beam --no-proxy --connect-to {t['gateways'][policy][0]} "
            f"--trust {info.pki['trust_public_org']} --pins {info.pki['pins_file']} --once"]


@contextlib.contextmanager
def _prespawned_proxy(args, state_dir: Path):
    """For the local lab, start the proxy process first (mitmproxy imports while the
    CLI loads scenarios and builds the lab); stop it if the lab is never built."""
    if args.lab != "local":
        yield None
        return
    from harness.lab.local import prespawn_proxy
    from harness.lab.process import stop

    child = prespawn_proxy(state_dir)
    try:
        yield child
    except BaseException:
        stop([child])
        raise


def _up_policies(spec: str):
    """``--policies``: every policy, those the default matrix uses, or the named ones."""
    from harness.errors import UnknownNameError
    from harness.model.policy import load_policies
    from harness.model.scenarios import load_scenarios, policies_used, select

    policies = load_policies()
    if spec == "all":
        return policies
    if spec == "default":
        return policies_used(select(load_scenarios(policies=policies)), policies)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    for n in names:
        if n not in policies:
            raise UnknownNameError("policy", n, list(policies))
    return {n: policies[n] for n in names}


def cmd_up(args) -> int:
    state_dir = _state_dir(args)
    if args.detach:
        return _up_detached(args, state_dir)
    with _prespawned_proxy(args, state_dir) as proxy_child:
        lab = _make_lab(args, state_dir, policies=_up_policies(args.policies), proxy_child=proxy_child)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    info = lab.start()
    try:
        info.pids["up"] = os.getpid()
        info.write()
        print(describe_lab(info), flush=True)
        if args.ready_fd is not None:
            from harness.net.journal import announce_ready

            announce_ready({"ready": {"state_dir": str(state_dir)}}, args.ready_fd)
        while not stop.wait(0.5):
            if lab.backend == "local" and any(c.proc.poll() is not None for c in lab.children):
                print("harness: a lab process exited unexpectedly; stopping the lab (see the logs).", file=sys.stderr)
                return 1
    finally:
        lab.stop()
        (state_dir / "lab.json").unlink(missing_ok=True)
        print("Lab stopped.", file=sys.stderr)
    return 0


def _up_detached(args, state_dir: Path) -> int:
    from harness.lab import prepare_state_dir
    from harness.lab.process import spawn, wait_ready

    prepare_state_dir(state_dir)
    argv = [a for a in sys.argv[1:] if a != "--detach"] if sys.argv[1:2] == ["up"] else ["up"]
    if "--state-dir" not in argv:
        argv += ["--state-dir", str(state_dir)]
    child = spawn("lab", [sys.executable, "-m", "harness", *argv], state_dir / "up.log", die_with_parent=False)
    wait_ready([child], 120)
    print(describe_lab(LabInfo.read(state_dir)))
    return 0


def cmd_down(args) -> int:
    from harness.lab.process import is_lab_process, terminate_pids

    state_dir = _state_dir(args)
    try:
        info = LabInfo.read(state_dir)
    except LabError:
        info = None
    if info is not None:
        # The 'up' process stops its own lab on SIGTERM; its children too, should it be gone.
        pids = [info.pids[k] for k in ("up", "proxy", "server") if k in info.pids]
        # A pid from a stale lab.json may since belong to an unrelated process: never signal that.
        survivors = terminate_pids([p for p in pids if is_lab_process(p)])
        (state_dir / "lab.json").unlink(missing_ok=True)
        if survivors:
            print(f"harness: killed {survivors} that did not stop on SIGTERM.", file=sys.stderr)
    if args.lab == "compose" or (info is not None and info.backend == "compose"):
        from harness.lab.compose import compose_down

        compose_down(state_dir)
    elif info is None:
        print(f"No lab is running in {state_dir}.")
    else:
        print(f"Lab in {state_dir} stopped.")
    return 0


def resolve_clients(names: list[str] | None, files: list[Path] | None) -> list | None:
    """``--client``/``--client-file`` -> reference names and ClientDefs (None: the scenarios' own clients)."""
    from harness.model.clientdefs import builtin_clients, load_clients
    from harness.errors import UnknownNameError
    from harness.matrix.runner import REFERENCE_CLIENTS

    if not names and not files:
        return None
    definitions = builtin_clients()
    from_files: dict = {}
    for path in files or []:
        from_files.update(load_clients(path))
    definitions.update(from_files)
    chosen = []
    for name in names or list(from_files):
        if name in REFERENCE_CLIENTS:
            chosen.append(name)
        elif name in definitions:
            chosen.append(definitions[name])
        else:
            raise UnknownNameError("client", name, [*REFERENCE_CLIENTS, *definitions])
    return chosen


def cmd_run(args) -> int:
    if args.vendor or args.all_vendors:  # one lab per vendor profile (harness/vendor_matrix.py)
        from harness.matrix.vendors import cmd_run_vendors

        return cmd_run_vendors(args)
    from harness.reports.report import publish
    from harness.matrix.runner import MatrixRunner
    from harness.model.policy import load_policies
    from harness.model.scenarios import load_scenarios, policies_used, select

    start = time.perf_counter()
    state_dir = (args.state_dir or default_state_dir()) / "run"
    with _prespawned_proxy(args, state_dir) as proxy_child:
        # A scenario file brings its own policies.toml from beside it.
        policies = load_policies(args.scenarios_file.parent / "policies.toml") if args.scenarios_file else load_policies()
        scenarios = select(load_scenarios(args.scenarios_file, policies=policies), args.scenario, args.tag)
        if not scenarios:
            raise UsageError("no scenario matches the --scenario/--tag selection; see fixtures/scenarios.toml.")
        clients = resolve_clients(args.client, args.client_file)
        if args.report is not None:
            from harness.reports.report import prepare_report_dir

            prepare_report_dir(args.report)  # an unwritable report directory fails before the lab starts
        progress_on = not args.json
        if progress_on:
            print(f"Starting the {args.lab} lab...", file=sys.stderr, flush=True)
        from harness.lab.gateway import policies_for

        args.transparent_policies = policies_for(scenarios)  # the gateway those rows need, where it can be built
        # Listeners only for the policies these scenarios use: a smaller lab starts faster.
        lab = _make_lab(args, state_dir, policies=policies_used(scenarios, policies), proxy_child=proxy_child)
    with lab as info:
        runner = MatrixRunner(info, in_process=not args.subprocess, policies=policies)

        def progress(r, done, total):
            if progress_on:
                print(f"[{done:>2}/{total}] {r.scenario.name}/{r.client}: {r.verdict.label}", file=sys.stderr, flush=True)

        results = runner.run(scenarios, clients, progress=progress)
        lab_doc = json.loads(info.to_json())
    seconds = time.perf_counter() - start
    publish(results, lab=lab_doc, seconds=seconds, as_json=args.json, report_dir=args.report,
            show_secrets=args.show_secrets)
    for why in sorted(set(runner.skipped.values())):
        names = [n for n, w in runner.skipped.items() if w == why]
        print(f"Skipped {', '.join(names)}: {why}", file=sys.stderr)
    if runner.undetermined:
        print("Not run, no outcome can be derived (set expect = { SCENARIO = OUTCOME } in the definition): "
              + ", ".join(f"{c} in {s}" for s, c in runner.undetermined) + ".", file=sys.stderr)
    return 0 if all(r.passed for r in results) else 1


def cmd_pki(args) -> int:
    from harness.lab import prepare_state_dir
    from harness.pki.lab import LabPKI

    if args.check:
        pki = LabPKI.load(_state_dir(args))  # one BadFileError sentence for a missing, corrupt or key-less file
        print(f"The lab PKI in {pki.state_dir} is complete: every file parses and every key matches its certificate.")
        return 0
    state_dir = prepare_state_dir(_state_dir(args))
    vendor = None
    if args.vendor:
        from harness.model.vendors import get_vendor

        vendor = get_vendor(args.vendor)
    pki = LabPKI.generate(state_dir, org_common_name=args.org_cn, org_organization=args.org_o,
                          name_constraints=not args.no_name_constraints, vendor=vendor)
    for name, path in pki.describe().items():
        print(f"{name:20} {path}")
    return 0


def cmd_probe(args) -> int:
    from harness.clients.probe import probe, render_text

    result = probe(args.host, proxy=args.proxy, no_proxy=args.no_proxy, pins_file=args.pins, trust=args.trust,
                   connect_to=args.connect_to, timeout=args.timeout)
    print(json.dumps(result.to_dict(), indent=2) if args.json else render_text(result))
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "images":
        from harness.lab import images

        return images.main(argv[1:])
    if argv and argv[0] in ("attended", "beam"):
        from harness.clients import attended, beam

        return (attended if argv[0] == "attended" else beam).main(argv[1:])
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            build_parser().print_help()
            return 2
        handler = {"up": cmd_up, "down": cmd_down, "run": cmd_run, "pki": cmd_pki, "probe": cmd_probe}[args.command]
        return handler(args)
    except LabError as e:
        print(f"harness: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
