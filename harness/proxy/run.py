"""Run the inspection proxy: mitmproxy's DumpMaster with :class:`InspectionAddon`.

``python -m harness.proxy --config proxy.json`` runs the proxy a
:class:`~harness.proxy.config.ProxyConfig` file describes (the local lab writes
it).  In compose, where the policies file ships in the image and the ports are
fixed, flags describe it instead: ``--policies FILE --confdir DIR
--upstream-trust CA.pem`` and the layout (``--lanes``, ``--base-port``, ...).

The configuration's ``confdir`` holds ``mitmproxy-ca.pem`` (the organisation
CA's key and certificate), so mitmproxy forges with the org CA.  Upstream
certificates are verified against ``upstream_trust``, the lab's public root, as
a real inspection proxy verifies against the public web PKI.

The flags that are not configuration say how the launcher runs the process:
``--start-gate`` imports mitmproxy at once, then waits for a line on stdin
before reading the configuration (the launcher writes it, and the PKI,
meanwhile); the one JSON ``{"ready": ...}`` line, printed once all listeners
and the admin endpoint are up, goes to ``--ready-fd`` (else stdout) and
``--ready-file``.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import sys
from pathlib import Path

from harness.errors import LabError, UsageError
from harness.model.policy import load_policies
from harness.model.proxylogin import ProxyLogin, new_login
from harness.model.values import listen_port, positive_int
from harness.model.vendors import VendorProfile, get_vendor
from harness.net.addresses import lane_layout, parse_ports, reserve_ports
from harness.net.journal import announce_ready
from harness.pki.ca import CA
from harness.pki.hostile import parse_cases
from harness.proxy.config import ProxyConfig, gateway_addresses, transparent_policy_names
from harness.proxy.upstreamtls import upstream_options


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
    ca_file = Path(confdir) / "mitmproxy-ca.pem"
    if ca_file.exists():
        CA.load(ca_file, hint="regenerate the lab PKI with 'harness pki' (or restart the lab with 'harness up')")


def ensure_login(config: ProxyConfig) -> None:
    """A login for the policies that require one (``auth``): the configuration's, or a fresh one
    (compose, where the proxy starts from flags: it reports the login when ready)."""
    if config.proxy_login is None and any(p.auth for p in config.policies.values()):
        config.proxy_login = str(new_login())
    if config.proxy_login is not None:
        ProxyLogin.parse(config.proxy_login)  # ValueError: a login mitmproxy could not check
        if ":" in config.proxy_login.split(":", 1)[1]:
            raise ValueError("proxy_login's password holds ':', which mitmproxy's proxyauth cannot check")


def with_login(report: dict, config: ProxyConfig) -> dict:
    """The ready report, with the proxy login when a policy requires one (its reader is the lab
    launcher, which puts it in lab.json; the report never goes to a log)."""
    if config.proxy_login is not None and any(p.auth for p in config.policies.values()):
        report["ready"]["proxy_login"] = config.proxy_login
    return report


def build_options(config: ProxyConfig):
    """mitmproxy's options object and the values to set on it once the addon is loaded."""
    # mitmproxy is imported here and in run(), not at the top: harness.lab.gateway and the
    # tests import this module for its helpers without paying mitmproxy's import (~0.6 s).
    from mitmproxy import options

    opts = options.Options()
    modes = [f"regular@{config.listen_host}:{l.port}" for l in config.listeners()]
    modes += [f"transparent@{config.transparent_host}:{l.port}" for l in config.transparent_listeners()]
    update = dict(
        mode=modes,
        confdir=config.confdir,
        ssl_insecure=False,
        # Upstream certificates are checked against the lab's public root only.
        ssl_verify_upstream_trusted_ca=config.upstream_trust,
        # As mitmproxy does by default: a client offering h2 gets h2 on both legs (the mock server
        # offers it too); the reference clients offer http/1.1 only (h11/wsproto), and keep it.
        http2=True,
        termlog_verbosity="warn",
    )
    update.update(evidence_options(config))
    # The product's own upstream ClientHello (versions, cipher order): harness.proxy.upstreamtls.
    update.update(upstream_options(VendorProfile.from_dict(config.vendor) if config.vendor else None))
    return opts, update


def evidence_options(config: ProxyConfig) -> dict:
    """mitmproxy's own options for the evidence a reviewer asked for: its flow file
    (``save_stream_file``), its HAR export (``hardump``) and mitmweb's UI on loopback."""
    update: dict = {}
    if config.save_flows:
        update["save_stream_file"] = config.save_flows
    if config.har:
        update["hardump"] = config.har
    if config.web_port is not None:
        # Loopback only: the UI shows every decrypted request, credentials included.
        update.update(web_host="127.0.0.1", web_port=config.web_port, web_open_browser=False)
    return update


def web_url(config: ProxyConfig) -> str | None:
    """Where mitmweb's UI is (with its login token where mitmproxy has one), or None."""
    if config.web_port is None:
        return None
    return f"http://127.0.0.1:{config.web_port}/" + (f"?token={config.web_token}" if config.web_token else "")


def install_keylog(path: str) -> None:
    """Log the TLS secrets of both legs to ``path`` (NSS key log format), as mitmproxy does for
    ``SSLKEYLOGFILE``: its logger, set before any TLS context exists.  The file is created 0600
    (the secrets decrypt everything captured)."""
    from mitmproxy.net import tls

    if not hasattr(tls, "make_master_secret_logger"):
        raise LabError("this mitmproxy has no TLS key logger (mitmproxy.net.tls); drop --keylog or use mitmproxy 11 or 12.")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(path, 0o600)  # an existing file keeps its mode on open
    tls.log_master_secret = tls.make_master_secret_logger(path)


def make_master(config: ProxyConfig, opts):
    """mitmweb's master when the UI is asked for (``web_port``), else mitmdump's."""
    if config.web_port is None:
        from mitmproxy.tools.dump import DumpMaster

        return DumpMaster(opts, with_termlog=True, with_dumper=False)
    from mitmproxy.tools.web.master import WebMaster

    master = WebMaster(opts, with_termlog=True)
    if "web_password" in master.options:  # mitmproxy >= 11.1: the UI asks for this token
        if config.web_token:
            master.options.update(web_password=config.web_token)
    else:
        config.web_token = None  # mitmproxy 11.0's UI has no login: loopback is its only guard
    return master


async def run(config: ProxyConfig, ready_fd: int | None = None, ready_file: str | None = None) -> None:
    """Serve ``config`` until SIGTERM or SIGINT; announce readiness on ``ready_fd`` (else stdout)
    and in ``ready_file``."""
    # Lazily, as in build_options().
    from harness.proxy.addon import InspectionAddon
    from harness.proxy.login import PolicyLogin
    from harness.proxy.product import ProductAddon

    if config.keylog:
        install_keylog(config.keylog)
    opts, update = build_options(config)
    master = make_master(config, opts)
    url = web_url(config)

    def announce(report: dict) -> None:
        if url:  # mitmweb listens before the addons' running(): the UI is up when this is said
            report["ready"]["web"] = url
        announce_ready(with_login(report, config), ready_fd, ready_file)

    addon = InspectionAddon(config, announce=announce)
    # Before the inspection addon: a CONNECT without the login is answered 407 before anything else.
    master.addons.add(PolicyLogin(config.proxy_login, listener_of=addon._listener, record_of=addon._record))
    # After the inspection addon: it decides and journals, the product adds what the vendor adds.
    master.addons.add(addon, ProductAddon(addon))
    if config.chains_dir:
        from harness.proxy.chains import ChainRecorder

        pki = Path(config.pki_dir or Path(config.confdir).parent)
        master.addons.add(ChainRecorder(config.chains_dir, [Path(config.confdir) / "mitmproxy-ca.pem",
                                                            *sorted(pki.glob("*.pem"))]))
    opts.update(**update)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, master.shutdown)
    await master.run()


def config_from_args(args) -> ProxyConfig:
    """The configuration: a JSON file (local lab), or flags (compose, where the policies
    file ships in the image and ports are fixed, laid out by :func:`lane_layout`)."""
    if args.config:
        config = ProxyConfig.load(args.config)
    else:
        policies = load_policies(args.policies)
        config = ProxyConfig(
            policies=policies, lanes=args.lanes, listen_host=args.listen_host,
            ports=lane_layout(args.base_port, policies, args.lanes), upstream_host=args.upstream_host,
            upstream_ports=parse_ports(args.upstream_ports) if args.upstream_ports else [],
            admin=args.admin, confdir=args.confdir, upstream_trust=args.upstream_trust,
            # The mock server's hostile sites, laid out as its own --site-cases/--site-base-port.
            sites=lane_layout(args.site_base_port, parse_cases(args.site_cases), args.lanes),
            vendor=get_vendor(args.vendor).to_dict() if args.vendor else None,
        )
        if args.gateways:
            # Transparent (gateway) listeners for --transparent-policies (default all): gateway
            # addresses from --gateways and listener ports from --transparent-base-port, per (policy, lane).
            names = transparent_policy_names(args.transparent_policies, policies)
            config.gateways = gateway_addresses(args.gateways, names, args.lanes)
            config.transparent_host = args.listen_host
            config.transparent_ports = lane_layout(args.transparent_base_port, names, args.lanes)
        check_layout(config.ports, config.transparent_ports)
    if os.environ.get("LAB_SHOW_SECRETS") == "1":
        config.show_secrets = True
    return config


def check_layout(*layouts: dict[str, list[int]]) -> None:
    """One sentence when two listeners of the flag-given layout share a port (``--base-port`` and
    ``--transparent-base-port`` too close for the policies times lanes), instead of mitmproxy's
    "Cannot spawn multiple servers" after start."""
    seen: dict[int, str] = {}
    for layout in layouts:
        for policy, ports in layout.items():
            for lane, port in enumerate(ports):
                if port in seen:
                    raise UsageError(f"port {port} would serve both {seen[port]} and {policy} (lane {lane}); move "
                                     "--transparent-base-port or --base-port apart (policies x lanes ports each).")
                seen[port] = f"{policy} (lane {lane})"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.proxy", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="proxy configuration JSON (written by 'harness up')")
    src.add_argument("--policies", help="policies TOML; with --confdir, --lanes, --base-port, --upstream-ports")
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
    p.add_argument("--site-cases", metavar="A,B", default="", help="with --policies: the hostile sites the "
                   "mock server serves (its --site-cases), for the policies whose `upstream` names one")
    p.add_argument("--site-base-port", type=listen_port, default=9443,
                   help="with --site-cases: the first site's lane-0 port (the mock server's --site-base-port)")
    p.add_argument("--vendor", metavar="NAME", default="", help="with --policies: the vendor profile to emulate "
                   "(forging and untrusted-upstream action; the PKI must be that vendor's, 'harness pki --vendor')")
    p.add_argument("--confdir", help="with --policies: mitmproxy confdir holding mitmproxy-ca.pem (the org CA)")
    p.add_argument("--upstream-trust", help="with --policies: CA bundle the proxy trusts for upstream servers")
    p.add_argument("--ready-fd", type=int, help="write the ready report to this file descriptor instead of stdout")
    p.add_argument("--ready-file", help="also write the ready report to this file (for container healthchecks)")
    p.add_argument("--start-gate", action="store_true", help="import mitmproxy, then wait for a line on stdin "
                   "before reading the configuration (the launcher writes it meanwhile)")
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``python -m harness.proxy`` command; returns the exit code."""
    p = _parser()
    args = p.parse_args(argv)
    if args.policies and not args.confdir:
        p.error("--policies needs --confdir (the mitmproxy confdir holding the organisation CA)")
    if args.config and (args.confdir or args.upstream_trust):
        p.error("--confdir and --upstream-trust go with --policies; with --config they are in the file")
    if args.start_gate:
        # Deliberately here, before the gate: the slow imports (~0.6 s) overlap the launcher
        # writing the configuration and the PKI.
        import mitmproxy.tools.dump  # noqa: F401

        import harness.proxy.addon  # noqa: F401

        sys.stdin.readline()
    try:
        config = config_from_args(args)
        check_confdir(config.confdir)
        ensure_login(config)
        fix_ports(config)
        asyncio.run(run(config, args.ready_fd, args.ready_file))
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
