"""``harness probe HOST``: connect as the clients do and say whether (and how) TLS is inspected."""

from __future__ import annotations

import argparse
import json

from harness.clients.probe import probe, render_text


def cmd_probe(args: argparse.Namespace) -> int:
    result = probe(args.host, proxy=args.proxy, no_proxy=args.no_proxy, pins_file=args.pins, trust=args.trust,
                   connect_to=args.connect_to, timeout=args.timeout,
                   public_trust=args.public_trust, handshake_only=args.handshake_only)
    print(json.dumps(result.to_dict(), indent=2) if args.json else render_text(result))
    return result.exit_code
