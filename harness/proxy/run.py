"""Run the inspection proxy: mitmproxy's DumpMaster with :class:`InspectionAddon`.

``python -m harness.proxy --config proxy.json --confdir DIR --upstream-trust CA.pem``

``confdir`` holds ``mitmproxy-ca.pem`` (the organisation CA's key and
certificate), so mitmproxy forges with the org CA.  Upstream certificates are
verified against the lab's public root, as a real inspection proxy verifies
against the public web PKI.  Prints one JSON ``{"ready": ...}`` line once all
listeners and the admin endpoint are up.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import signal
import sys

from harness.errors import LabError
from harness.net.journal import announce_ready
from harness.model.values import listen_port, positive_int
from harness.net.addresses import parse_ports, reserve_ports
from harness.proxy.config import ProxyConfig, gateway_addresses


def fix_ports(config: ProxyConfig) -> None:
    """Replace every 0 (any free port) in the listener table by a real free port.

    mitmproxy refuses two listeners with the same ``host:0`` spec, so ports are
    chosen here, just before mitmproxy binds them.
    """
    wanted = sum(p == 0 for name in config.policies for p in config.listener_ports(name))
    # Never a port the lab reserved for the server or its sites: they may not be bound yet.
    upstream = set(config.upstream_ports) | {p for ports in config.sites.values() for p in ports}
    free = iter([p for p in reserve_ports(config.listen_host, wanted + len(upstream)) if p not in upstream][:wanted])
    config.ports = {
        name: [p or next(free) for p in config.listener_ports(name)] for name in config.policies
    }
    # Transparent listeners bind the gateway's own address (where iptables REDIRECT delivers).
    wanted = sum(p == 0 for name in config.gateways for p in config.transparent_listener_ports(name))
    free = iter(reserve_ports(config.transparent_host, wanted) if wanted else [])
    config.transparent_ports = {
        name: [p or next(free) for p in config.transparent_listener_ports(name)] for name in config.gateways
    }


def check_confdir(confdir: str) -> None:
    """One clear sentence, not mitmproxy's traceback, if the organisation CA in ``confdir`` is
    corrupt or lacks its key.  (Without the file mitmproxy would generate its own CA.)"""
    from pathlib import Path

    ca_file = Path(confdir) / "mitmproxy-ca.pem"
    if ca_file.exists():
        from harness.pki.ca import CA

        CA.load(ca_file, hint="regenerate the lab PKI with 'harness pki' (or restart the lab with 'harness up')")


def build_options(config: ProxyConfig, confdir: str, upstream_trust: str | None):
    from mitmproxy import options

    opts = options.Options()
    modes = [f"regular@{config.listen_host}:{l.port}" for l in config.listeners()]
    modes += [f"transparent@{config.transparent_host}:{l.port}" for l in config.transparent_listeners()]
    update = dict(
        mode=modes,
        confdir=confdir,
        ssl_insecure=False,
        # Upstream certificates are checked against the lab's public root only.
        ssl_verify_upstream_trusted_ca=upstream_trust,
        # Keep HTTP/1.1 on both sides: the clients speak h11/wsproto.
        http2=False,
        termlog_verbosity="warn",
    )
    return opts, update


async def run(config: ProxyConfig, confdir: str, upstream_trust: str | None, ready_fd: int | None = None,
              ready_file: str | None = None) -> None:
    from mitmproxy.tools.dump import DumpMaster

    from harness.proxy.addon import InspectionAddon

    opts, update = build_options(config, confdir, upstream_trust)
    master = DumpMaster(opts, with_termlog=True, with_dumper=False)
    addon = InspectionAddon(config, announce=lambda report: announce_ready(report, ready_fd, ready_file))
    master.addons.add(addon)
    opts.update(**update)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, master.shutdown)
    await master.run()


def config_from_args(args) -> ProxyConfig:
    """The configuration: a JSON file (local lab), or flags (compose, where the policies
    file ships in the image and ports are fixed: listener = base + policy index * lanes + lane)."""
    if args.config:
        config = ProxyConfig.load(args.config)
    else:
        from harness.model.policy import load_policies

        policies = load_policies(args.policies)
        ports = {name: [args.base_port + i * args.lanes + lane for lane in range(args.lanes)]
                 for i, name in enumerate(policies)}
        config = ProxyConfig(
            policies=policies, lanes=args.lanes, listen_host=args.listen_host, ports=ports,
            upstream_host=args.upstream_host, upstream_ports=parse_ports(args.upstream_ports) if args.upstream_ports else [],
            admin=args.admin,
        )
        if args.gateways:
            # Transparent (gateway) listeners for --transparent-policies (default all): gateway addresses
            # consecutive from --gateways per (policy, lane); listener = base + policy index * lanes + lane.
            names = transparent_policy_names(args.transparent_policies, policies)
            config.gateways = gateway_addresses(args.gateways, names, args.lanes)
            config.transparent_host = args.listen_host
            config.transparent_ports = {name: [args.transparent_base_port + i * args.lanes + lane
                                               for lane in range(args.lanes)] for i, name in enumerate(names)}
    if os.environ.get("LAB_SHOW_SECRETS") == "1":
        config.show_secrets = True
    return config


def transparent_policy_names(text: str | None, policies) -> list[str]:
    """``--transparent-policies a,b`` -> [a, b] (every policy when empty); unknown names are an error."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()] or list(policies)
    if unknown := [n for n in names if n not in policies]:
        raise ValueError(f"--transparent-policies names {unknown[0]!r}; known policies: {', '.join(policies)}")
    return names


def _gate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--start-gate", action="store_true")
    p.add_argument("--args-from")
    return p


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.proxy", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="proxy configuration JSON (written by 'harness up')")
    src.add_argument("--policies", help="policies TOML; with --lanes, --base-port, --upstream-ports")
    p.add_argument("--lanes", type=positive_int, default=1)
    p.add_argument("--listen-host", default="127.0.0.1")
    p.add_argument("--base-port", type=listen_port, default=8100)
    p.add_argument("--upstream-host", default=None, help="send lab hosts here (default: resolve their names)")
    p.add_argument("--upstream-ports", help="server port per lane: 8443,8444 or 8443+2")
    p.add_argument("--gateways", metavar="IP", help="with --policies: first gateway address; adds a transparent "
                   "listener per (policy, lane) serving IP+index:443 (redirected by iptables)")
    p.add_argument("--transparent-base-port", type=listen_port, default=8300, help="first transparent listener port")
    p.add_argument("--transparent-policies", metavar="A,B", help="with --gateways: only these policies (default all)")
    p.add_argument("--admin", default="127.0.0.1:0", help="journal endpoint: HOST:PORT or via:NAME:PORT")
    p.add_argument("--confdir", required=True, help="mitmproxy confdir holding mitmproxy-ca.pem (the org CA)")
    p.add_argument("--upstream-trust", help="CA bundle the proxy trusts for upstream servers")
    p.add_argument("--ready-fd", type=int, help="write the ready report to this file descriptor instead of stdout")
    p.add_argument("--ready-file", help="also write the ready report to this file (for container healthchecks)")
    p.add_argument("--start-gate", action="store_true", help="import mitmproxy, then wait for a line on stdin")
    p.add_argument("--args-from", metavar="FILE", help="after the start gate, read the remaining arguments "
                   "(a JSON list) from FILE: the launcher starts the proxy before it knows them")
    argv = list(sys.argv[1:] if argv is None else argv)
    early, _ = _gate_parser().parse_known_args(argv)
    if early.start_gate:
        import mitmproxy.tools.dump  # noqa: F401  (the slow part, done while the launcher writes the PKI)

        import harness.proxy.addon  # noqa: F401

        sys.stdin.readline()
    if early.args_from:
        try:
            with open(early.args_from) as f:
                argv += [str(a) for a in json.load(f)]
        except (OSError, ValueError) as e:
            print(f"proxy: cannot read the arguments file {early.args_from} ({e}); start the proxy through 'harness up'.",
                  file=sys.stderr)
            return 2
    args = p.parse_args(argv)
    try:
        config = config_from_args(args)
        check_confdir(args.confdir)
        fix_ports(config)
        asyncio.run(run(config, args.confdir, args.upstream_trust, args.ready_fd, args.ready_file))
    except LabError as e:
        print(f"proxy: {e}", file=sys.stderr)
        return e.exit_code
    except ValueError as e:
        print(f"proxy: {e}.", file=sys.stderr)
        return 2
    except OSError as e:
        hint = "choose free ports or stop what uses them" if e.errno == errno.EADDRINUSE else "check the addresses"
        print(f"proxy: cannot listen ({e}); {hint}.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
