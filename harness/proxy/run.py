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
import signal
import socket
import sys

from harness.errors import LabError
from harness.journal import announce_ready
from harness.proxy.config import ProxyConfig


def reserve_ports(host: str, count: int) -> list[int]:
    """Ask the kernel for ``count`` free ports on ``host``.

    mitmproxy refuses two listeners with the same ``host:0`` spec, so ports are
    chosen here, all sockets held open until every port is known (no
    duplicates), then released just before mitmproxy binds them.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def fix_ports(config: ProxyConfig) -> None:
    """Replace every 0 (any free port) in the listener table by a real free port."""
    wanted = sum(p == 0 for name in config.policies for p in config.listener_ports(name))
    free = iter(reserve_ports(config.listen_host, wanted))
    config.ports = {
        name: [p or next(free) for p in config.listener_ports(name)] for name in config.policies
    }


def build_options(config: ProxyConfig, confdir: str, upstream_trust: str | None):
    from mitmproxy import options

    opts = options.Options()
    modes = [f"regular@{config.listen_host}:{l.port}" for l in config.listeners()]
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


async def run(config: ProxyConfig, confdir: str, upstream_trust: str | None, ready_fd: int | None = None) -> None:
    from mitmproxy.tools.dump import DumpMaster

    from harness.proxy.addon import InspectionAddon

    opts, update = build_options(config, confdir, upstream_trust)
    master = DumpMaster(opts, with_termlog=True, with_dumper=False)
    addon = InspectionAddon(config, announce=lambda report: announce_ready(report, ready_fd))
    master.addons.add(addon)
    opts.update(**update)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, master.shutdown)
    await master.run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.proxy", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="proxy configuration JSON (written by 'harness up')")
    p.add_argument("--confdir", required=True, help="mitmproxy confdir holding mitmproxy-ca.pem (the org CA)")
    p.add_argument("--upstream-trust", help="CA bundle the proxy trusts for upstream servers")
    p.add_argument("--ready-fd", type=int, help="write the ready report to this file descriptor instead of stdout")
    p.add_argument("--start-gate", action="store_true", help="import mitmproxy, then wait for a line on stdin")
    args = p.parse_args(argv)
    if args.start_gate:
        import mitmproxy.tools.dump  # noqa: F401  (the slow part, done while the launcher writes the PKI)

        import harness.proxy.addon  # noqa: F401

        sys.stdin.readline()
    try:
        config = ProxyConfig.load(args.config)
        fix_ports(config)
        asyncio.run(run(config, args.confdir, args.upstream_trust, args.ready_fd))
    except LabError as e:
        print(f"proxy: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        hint = "choose free ports or stop what uses them" if e.errno == errno.EADDRINUSE else "check the addresses"
        print(f"proxy: cannot listen ({e}); {hint}.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
