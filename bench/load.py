#!/usr/bin/env python3
"""Load benchmark: N Beam agents at once through the exception policy and N through inspection.

    ./lab bench-load [--agents 200] [--timeout 20] [--deadline 180] [--out bench/results/load.json]

Starts a fresh local lab (credentials journaled in clear, so a leak would
show), releases all 2 x N agents behind one start gate, and reports:

* errors: agents that did not end as expected (connected through the
  exception, refused under inspection), with the reasons;
* journal completeness: proxy connection records matched one to one with the
  connections the agents opened (by local address), and registrations at
  the server;
* credential exposure: agent tokens found in the proxy's decrypted view;
* latency p50/p99: TLS handshake through the proxy (CONNECT included) and
  time to the outcome (registered + heartbeat, or refused).

Bounded: each agent has ``--timeout`` per network step and tries once; the
whole swarm has ``--deadline``.  It stops by itself and exits 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.clients.swarm import journal_mismatch, percentile, run_swarm  # noqa: E402
from harness.lab.open import open_lab  # noqa: E402
from harness.lab.options import LabOptions  # noqa: E402
from harness.net.journal import JournalReader  # noqa: E402

EXPECTED = {"exception-wildcard": "connected", "inspect": "refused"}


def log(msg: str) -> None:
    print(f"[load] {msg}", file=sys.stderr, flush=True)


def raise_fd_limit(wanted: int) -> int:
    """Each agent holds a socket, the proxy two per connection: lift the soft limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def cpu_seconds(pid: int | None = None) -> float | None:
    """CPU time (user + system) used so far by ``pid`` (Linux /proc) or, without it, by this process."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def summarise(agents, proxy_records, server_records, seconds: float) -> dict:
    errors = [
        {"policy": a.policy, "outcome": a.outcome,
         "reason": next((e.get("reason") for e in reversed(a.events) if e.get("event") == "error"), None)
         or (repr(a.thread.error) if a.thread.error else None)}
        for a in agents if a.outcome != EXPECTED[a.policy]
    ]
    decrypted_view = json.dumps(proxy_records)
    server_view = json.dumps(server_records)
    leaked = sum(a.token in decrypted_view for a in agents)
    registrations = Counter(a.policy for a in agents if f"Bearer {a.token}" in server_view)
    doc = {"agents": len(agents), "seconds": round(seconds, 2), "errors": len(errors),
           "error_reasons": dict(Counter(f"{e['policy']}: {e['outcome']}: {e['reason']}" for e in errors)),
           "journal": {k: len(v) for k, v in journal_mismatch(agents, proxy_records).items()},
           "proxy_records": sum(r.get("kind") == "connection" for r in proxy_records),
           "agent_connections": sum(len(a.connections) for a in agents),
           "registrations_at_server": dict(registrations),
           "tokens_in_decrypted_view": leaked, "policies": {}}
    for policy in EXPECTED:
        group = [a for a in agents if a.policy == policy]
        hs = [a.handshake_seconds for a in group if a.handshake_seconds is not None]
        out = [a.outcome_seconds for a in group if a.outcome_seconds is not None]
        doc["policies"][policy] = {
            "agents": len(group), "outcomes": dict(Counter(a.outcome for a in group)),
            "handshake_ms": {"p50": ms(percentile(hs, 50)), "p99": ms(percentile(hs, 99)), "max": ms(max(hs, default=None))},
            "outcome_ms": {"p50": ms(percentile(out, 50)), "p99": ms(percentile(out, 99)), "max": ms(max(out, default=None))},
        }
    return doc


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=200, help="agents per policy (default 200: 400 in all)")
    p.add_argument("--timeout", type=float, default=20.0, help="each agent's --timeout per network step")
    p.add_argument("--deadline", type=float, default=180.0, help="the whole swarm's deadline in seconds")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = p.parse_args()
    if args.agents < 1:
        p.error("--agents must be at least 1")

    fds = raise_fd_limit(max(4096, 8 * args.agents))
    with tempfile.TemporaryDirectory(prefix="tls-lab-load-") as tmp:
        log(f"starting a local lab (file descriptor limit {fds})")
        with open_lab(LabOptions(state_dir=Path(tmp), lanes=1, show_secrets=True)) as info:
            proxy_journal, server_journal = JournalReader(info.proxy_admin), JournalReader(info.server_admin)
            proxy_after, server_after = proxy_journal.last_seq(), server_journal.last_seq()
            log(f"{args.agents} agents through the exception policy and {args.agents} through inspection, at once")
            who = {"proxy": info.pids["proxy"], "server": info.pids["server"], "agents": None}
            cpu_before = {k: cpu_seconds(pid) for k, pid in who.items()}
            start = time.monotonic()
            agents = run_swarm(info, {policy: args.agents for policy in EXPECTED},
                               timeout=args.timeout, deadline=args.deadline)
            seconds = time.monotonic() - start
            cpu = {k: round(cpu_seconds(pid) - cpu_before[k], 2) for k, pid in who.items()
                   if cpu_before[k] is not None}
            proxy_records = proxy_journal.read(after=proxy_after, settle=30)
            server_records = server_journal.read(after=server_after)
    doc = summarise(agents, proxy_records, server_records, seconds)
    doc["cpu_seconds"] = cpu  # where the time went: mitmproxy is one Python process
    doc["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                      "platform": platform.platform()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")

    print(f"{doc['agents']} agents in {doc['seconds']}s: {doc['errors']} error(s); "
          f"journal missing/duplicated/unexpected = {doc['journal']['missing']}/{doc['journal']['duplicated']}/"
          f"{doc['journal']['unexpected']} ({doc['proxy_records']} proxy records for {doc['agent_connections']} "
          f"connections); tokens in the decrypted view: {doc['tokens_in_decrypted_view']}")
    print("CPU seconds during the swarm: " + ", ".join(f"{k} {v}" for k, v in cpu.items()))
    print(f"{'policy':20} {'outcomes':28} {'handshake p50/p99 ms':>22} {'outcome p50/p99 ms':>20}")
    for policy, row in doc["policies"].items():
        hs, out = row["handshake_ms"], row["outcome_ms"]
        print(f"{policy:20} {json.dumps(row['outcomes']):28} {hs['p50']!s:>10}/{hs['p99']!s:<11} "
              f"{out['p50']!s:>9}/{out['p99']!s:<10}")
    for reason, count in doc["error_reasons"].items():
        print(f"  {count} x {reason}")
    log(f"written to {args.out}")
    ok = (doc["errors"] == 0 and doc["tokens_in_decrypted_view"] == 0 and not any(doc["journal"].values())
          and doc["registrations_at_server"] == {"exception-wildcard": args.agents})
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
