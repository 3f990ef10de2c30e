#!/usr/bin/env python3
"""Benchmark the lab against a bare mitmdump, measured in the same run.

    ./lab bench [--repeat 3] [--handshakes 300] [--concurrency 8] [--compose auto|yes|no|only] [--matrices no|yes|only]

Prints a table and writes JSON to bench/results/latest.json.  Every figure is a
ratio against something measured here, now, on this machine, so the targets
hold on any machine:

* lab start-up (``harness up`` until ready) <= 1.5 x bare ``mitmdump`` start-up;
* the core matrix with start-up (``harness run --tag core``) <= 3 x bare start-up;
* inspected TLS handshakes/s through the lab proxy >= 80 % of bare mitmdump's;
* with Docker (``--compose``): the core matrix on the compose lab <= 3 x the same matrix on a
  local lab, each measured right after its lab started, in the same rounds; and compose ``up``
  to healthy (images built) <= 10 s, shown beside what one ``docker run`` costs now.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.clients.transport import connect_tunnel  # noqa: E402
from harness.lab.open import open_lab  # noqa: E402
from harness.lab.options import LabOptions  # noqa: E402
from harness.net.addresses import reserve_ports  # noqa: E402

PY = sys.executable
ROUNDS = 5


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def mitmdump_path() -> str:
    candidate = Path(PY).with_name("mitmdump")
    return str(candidate) if candidate.exists() else (shutil.which("mitmdump") or "mitmdump")


# -- start-up ------------------------------------------------------------------------------
def bare_mitmdump_startup(confdir: str) -> float:
    """Seconds from spawning ``mitmdump`` until it says it is listening."""
    port = reserve_ports("127.0.0.1", 1)[0]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [mitmdump_path(), "--listen-host", "127.0.0.1", "-p", str(port), "--set", f"confdir={confdir}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )
    try:
        for line in proc.stdout:
            if "listening at" in line:
                return time.perf_counter() - start
        raise RuntimeError("mitmdump exited without listening")
    finally:
        proc.terminate()
        proc.wait()


def lab_startup(state_dir: Path) -> float:
    """Seconds from spawning ``harness up`` until it announces the lab is ready."""
    r, w = os.pipe()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [PY, "-m", "harness", "up", "--state-dir", str(state_dir), "--ready-fd", str(w)],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, cwd=ROOT,
    )
    os.close(w)
    try:
        data = os.read(r, 65536)
        elapsed = time.perf_counter() - start
        if not data:
            raise RuntimeError("harness up exited before the lab was ready")
        return elapsed
    finally:
        os.close(r)
        proc.terminate()
        proc.wait(timeout=15)


def matrix_with_startup(state_dir: Path, lanes: int) -> tuple[float, dict]:
    """Wall time of ``harness run --tag core`` (start-up included) and its result document."""
    start = time.perf_counter()
    proc = subprocess.run(
        [PY, "-m", "harness", "run", "--tag", "core", "--json", "--lanes", str(lanes), "--state-dir", str(state_dir)],
        capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"harness run failed ({proc.returncode}): {proc.stderr[-500:]}")
    return elapsed, json.loads(proc.stdout)


# -- handshakes ----------------------------------------------------------------------------
def handshake_load(target, n: int, concurrency: int) -> dict:
    """Run ``n`` TLS handshakes with ``concurrency`` threads; ``target()`` does one and returns."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))

    def worker():
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            t = time.perf_counter()
            try:
                target()
            except Exception as e:  # counted and reported, never hidden
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - start
    lat = sorted(latencies)
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else None  # noqa: E731
    return {"handshakes": len(lat), "errors": len(errors), "first_error": errors[0] if errors else None,
            "per_second": len(lat) / wall if wall else 0.0, "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def tls_via_proxy(proxy_port: int, connect_target: tuple[str, int], ctx: ssl.SSLContext, sni: str):
    def one():
        sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
        try:
            connect_tunnel(sock, *connect_target)
            ctx.wrap_socket(sock, server_hostname=sni).close()
        finally:
            sock.close()
    return one


def tls_direct(port: int, ctx: ssl.SSLContext, sni: str):
    def one():
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            ctx.wrap_socket(sock, server_hostname=sni).close()
        finally:
            sock.close()
    return one


def start_bare_mitmdump(confdir: str, upstream_trust: str) -> tuple[subprocess.Popen, int]:
    port = reserve_ports("127.0.0.1", 1)[0]
    proc = subprocess.Popen(
        [mitmdump_path(), "--listen-host", "127.0.0.1", "-p", str(port), "--set", f"confdir={confdir}",
         "--set", f"ssl_verify_upstream_trusted_ca={upstream_trust}", "--set", "http2=false", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # -q hides the banner: wait until the port accepts
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("bare mitmdump did not start")


def handshake_benchmarks(state_dir: Path, n: int, concurrency: int) -> dict:
    with open_lab(LabOptions(state_dir=state_dir, lanes=1)) as info:
        org = ssl.create_default_context(cafile=info.pki["trust_public_org"])
        public = ssl.create_default_context(cafile=info.pki["trust_public"])
        server_port = int(info.server_connect[0].rsplit(":", 1)[1])
        lab_port = int(info.proxies["inspect"][0].rsplit(":", 1)[1])
        bare, bare_port = start_bare_mitmdump(info.pki["mitmproxy_confdir"], info.pki["trust_public"])
        try:
            sni = "api.screenmeet.com"
            targets = {
                "direct": tls_direct(server_port, public, sni),
                "bare mitmdump": tls_via_proxy(bare_port, ("127.0.0.1", server_port), org, sni),
                "lab proxy": tls_via_proxy(lab_port, (sni, 443), org, sni),
            }
            for target in targets.values():
                handshake_load(target, 20, concurrency)  # warm caches (forged-cert cache, imports)
            rounds: dict[str, list[dict]] = {name: [] for name in targets}
            order = list(targets)
            for i in range(ROUNDS):
                # Interleave and rotate, so machine noise hits every target alike.
                for name in order[i % len(order):] + order[:i % len(order)]:
                    rounds[name].append(handshake_load(targets[name], max(1, n // ROUNDS), concurrency))
                log(f"handshake round {i + 1}/{ROUNDS}: " + ", ".join(
                    f"{k} {v[-1]['per_second']:.0f}/s" for k, v in rounds.items()))
            results = {}
            for name, runs in rounds.items():
                best = sorted(runs, key=lambda r: r["per_second"])[len(runs) // 2]  # the median round
                results[name] = {**best, "rounds_per_second": [round(r["per_second"], 1) for r in runs],
                                 "errors": sum(r["errors"] for r in runs),
                                 "handshakes": sum(r["handshakes"] for r in runs)}
            return results
        finally:
            bare.terminate()
            bare.wait()


# -- compose ----------------------------------------------------------------------------
def container_start(image: str) -> float:
    """Seconds for ``docker run --rm IMAGE true``: what one container costs on this machine, now."""
    start = time.perf_counter()
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "true"], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"docker run {image} failed: {proc.stderr.strip()[-300:]}")
    return time.perf_counter() - start


def compose_benchmarks(rounds: int, rebuild: bool, cold: bool) -> dict:
    """The image build, and per round: ``up`` to healthy, the core matrix on the compose lab, and
    the same matrix on a local lab (in between, so machine load hits both alike).

    The compose lab is $LAB_COMPOSE_PROJECT's with $LAB_IMAGE (harness.lab.composeenv): a second
    project can be measured beside the first.  Only ``rebuild`` / ``cold`` remove an image first
    ($LAB_IMAGE; with ``cold`` also the offline base image, which every project shares)."""
    from harness.lab import images
    from harness.lab.baseimage import BASE_TAG
    from harness.lab.composeenv import image_tag, project_name
    from harness.matrix.runner import MatrixRunner
    from harness.model.scenarios import load_scenarios

    tag = image_tag()
    result: dict = {"project": project_name(), "image": tag}
    if cold or rebuild:
        subprocess.run(["docker", "rmi", "-f", tag, *([BASE_TAG] if cold else [])], capture_output=True)
        if cold:
            shutil.rmtree(ROOT / "build" / "base", ignore_errors=True)
    kind = "cold (base + wheelhouse + image)" if cold else "image only (base cached)" if rebuild else "cached layers"
    log(f"compose: building {tag} ({kind})")
    t = time.perf_counter()
    images.build_image(tag, progress=lambda line: log(f"  {line}"))
    result["image_build_s"], result["image_build_kind"] = time.perf_counter() - t, kind
    core = [s for s in load_scenarios() if "core" in s.tags]
    up, matrix, local, container, passed = [], [], [], [], True
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            container.append(container_start(tag))
            lab = open_lab(LabOptions(backend="compose", state_dir=Path(tmp) / f"compose{i}", lanes=4, build=False))
            t = time.perf_counter()
            info = lab.start()
            try:
                up.append(time.perf_counter() - t)
                t = time.perf_counter()
                cells = MatrixRunner(info).run(core)
                matrix.append(time.perf_counter() - t)
                passed = passed and all(c.passed for c in cells)
            finally:
                lab.stop()
            # The same first matrix on a fresh local lab (its start not timed either).
            with open_lab(LabOptions(state_dir=Path(tmp) / f"local{i}", lanes=4)) as here:
                t = time.perf_counter()
                MatrixRunner(here).run(core)
                local.append(time.perf_counter() - t)
            log(f"compose round {i + 1}/{rounds}: up {up[-1]:.1f}s, matrix {matrix[-1]:.2f}s "
                f"(local {local[-1]:.2f}s), one container {container[-1]:.2f}s")
    result.update({
        "cells": len(cells), "matrix_all_passed": passed, "rounds": rounds,
        "up_to_healthy_s": up, "matrix_s": matrix, "local_matrix_s": local, "container_start_s": container,
        "up_to_healthy_median_s": statistics.median(up), "matrix_median_s": statistics.median(matrix),
        "local_matrix_median_s": statistics.median(local), "container_start_median_s": statistics.median(container),
    })
    return result


# -- the extended and vendor matrices, compose against local ----------------------------------
MATRICES = {"extended": ["--tag", "extended"], "vendors": ["--all-vendors"]}


def timed_run(backend: str, args: list[str], state_dir: Path, document: Path) -> dict:
    """Wall time of one whole ``harness run ARGS --lab BACKEND --json`` (start-up and stop included);
    its result document goes to ``document`` (``python -m harness.reports.parity`` compares two)."""
    start = time.perf_counter()
    proc = subprocess.run([PY, "-m", "harness", "run", *args, "--lab", backend, "--json", "--state-dir", str(state_dir)],
                          capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"harness run {' '.join(args)} --lab {backend} failed ({proc.returncode}): {proc.stderr[-500:]}")
    doc = json.loads(proc.stdout)
    document.parent.mkdir(parents=True, exist_ok=True)
    document.write_text(proc.stdout)
    return {"seconds": elapsed, "cells": len(doc["cells"]), "failed": doc["failed"], "not_run": len(doc["not_run"])}


def matrix_benchmarks(tmp: Path, out: Path) -> dict:
    """``--matrices``: the extended matrix and the vendor matrix, each on the local and the compose lab;
    the result documents go beside ``out`` (run-NAME-BACKEND.json)."""
    result: dict = {}
    for name, args in MATRICES.items():
        for backend in ("local", "compose"):
            log(f"{name} matrix on the {backend} lab")
            result[f"{name}/{backend}"] = timed_run(backend, args, tmp / f"{name}-{backend}",
                                                    out.parent / f"run-{name}-{backend}.json")
    return result


def matrix_rows(matrices: dict) -> list[tuple[str, str, str]]:
    rows = []
    for name in MATRICES:
        local, compose = matrices[f"{name}/local"], matrices[f"{name}/compose"]
        for backend, r in (("local", local), ("compose", compose)):
            rows.append((f"{name} matrix on {backend} (harness run, start-up incl.)", f"{r['seconds']:.1f} s",
                         f"{r['cells']} cells, {r['failed']} failed, {r['not_run']} not run"
                         + (f"; {compose['seconds'] / local['seconds']:.1f}x local" if backend == "compose" else "")))
    return rows


# -- report ----------------------------------------------------------------------------
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="start-up measurements per kind (median is used)")
    p.add_argument("--handshakes", type=int, default=500, help="handshakes per target, split over rounds")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out", type=Path, help="the JSON results (default bench/results/latest.json; "
                   "with --compose only, bench/results/compose.json)")
    p.add_argument("--compose", choices=("auto", "yes", "no", "only"), default="auto",
                   help="measure the compose lab too (auto: when a Docker engine answers; only: nothing else)")
    p.add_argument("--compose-rounds", type=int, default=3, help="compose: up + matrix rounds (median is used)")
    p.add_argument("--rebuild", action="store_true", help="compose: remove $LAB_IMAGE first, to time its build")
    p.add_argument("--cold", action="store_true", help="compose: also rebuild the offline base image (shared)")
    p.add_argument("--matrices", choices=("no", "yes", "only"), default="no",
                   help="also time the extended and the vendor matrix on the local and the compose lab "
                        "(only: just those; needs a Docker engine and the image)")
    args = p.parse_args()
    args.out = args.out or ROOT / "bench" / "results" / ("compose.json" if args.compose == "only" else "latest.json")
    if args.matrices == "only":
        tmp = Path(tempfile.mkdtemp(prefix="tls-lab-bench-"))
        try:
            matrices = matrix_benchmarks(tmp, args.out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"matrices": matrices}, indent=2))
        for row in matrix_rows(matrices):
            print(f"{row[0]:55}  {row[1]:>8}  {row[2]}")
        print(f"JSON: {args.out}")
        return 0 if all(r["failed"] == 0 for r in matrices.values()) else 1
    if args.compose == "only":
        return report_compose_only(compose_benchmarks(args.compose_rounds, args.rebuild, args.cold), args.out)

    tmp = Path(tempfile.mkdtemp(prefix="tls-lab-bench-"))
    try:
        # A confdir with a CA already in it, so bare mitmdump does not pay CA generation.
        from harness.pki.lab import LabPKI

        confdir = str(LabPKI.generate(tmp / "seed").mitmproxy_confdir)

        bare, lab = [], []
        for i in range(args.repeat):  # interleaved, so drift affects both alike
            log(f"start-up round {i + 1}/{args.repeat}")
            bare.append(bare_mitmdump_startup(confdir))
            lab.append(lab_startup(tmp / f"up{i}"))
        seq, _ = matrix_with_startup(tmp / "seq", lanes=1)
        log(f"core matrix, sequential: {seq:.2f}s")
        par, doc = matrix_with_startup(tmp / "par", lanes=4)
        log(f"core matrix, 4 lanes: {par:.2f}s")
        hs = handshake_benchmarks(tmp / "hs", args.handshakes, args.concurrency)
        compose = None
        if args.compose == "yes" or (args.compose == "auto" and shutil.which("docker")
                                     and subprocess.run(["docker", "info"], capture_output=True).returncode == 0):
            compose = compose_benchmarks(args.compose_rounds, args.rebuild, args.cold)
        matrices = matrix_benchmarks(tmp, args.out) if args.matrices == "yes" else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    bare_s, lab_s = statistics.median(bare), statistics.median(lab)
    ratios = {
        "lab_startup_vs_bare": lab_s / bare_s,
        "matrix_with_startup_vs_bare_startup": par / bare_s,
        "lab_handshakes_vs_bare": hs["lab proxy"]["per_second"] / hs["bare mitmdump"]["per_second"],
    }
    targets = {"lab_startup_vs_bare": ("<=", 1.5), "matrix_with_startup_vs_bare_startup": ("<=", 3.0),
               "lab_handshakes_vs_bare": (">=", 0.8)}
    if compose:
        ratios.update(compose_ratios(compose))
        targets.update(COMPOSE_TARGETS)
    met = {k: (ratios[k] <= v if op == "<=" else ratios[k] >= v) for k, (op, v) in targets.items()}
    result = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "startup_s": {"bare_mitmdump": bare, "lab": lab, "bare_median": bare_s, "lab_median": lab_s},
        "core_matrix_s": {"sequential_1_lane": seq, "parallel_4_lanes": par, "cells": len(doc["cells"]),
                          "all_passed": doc["failed"] == 0},
        "handshakes": hs,
        "compose": compose,
        "matrices": matrices,
        "ratios": ratios,
        "targets_met": met,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    rows = [
        ("bare mitmdump start-up (median)", f"{bare_s:.3f} s", ""),
        ("lab start-up, harness up (median)", f"{lab_s:.3f} s", f"{ratios['lab_startup_vs_bare']:.2f}x bare (target <= 1.5x)"),
        ("core matrix + start-up, 1 lane", f"{seq:.3f} s", f"{seq / bare_s:.2f}x bare start-up"),
        ("core matrix + start-up, 4 lanes", f"{par:.3f} s", f"{ratios['matrix_with_startup_vs_bare_startup']:.2f}x bare start-up (target <= 3x)"),
    ]
    for name, h in hs.items():
        rows.append((f"TLS handshakes via {name}", f"{h['per_second']:.0f}/s",
                     f"p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms, errors {h['errors']}"))
    rows.append(("lab proxy vs bare mitmdump handshakes/s", f"{ratios['lab_handshakes_vs_bare']:.0%}", "target >= 80%"))
    if compose:
        rows += compose_rows(compose)
    if matrices:
        rows += matrix_rows(matrices)
    return print_table(rows, met, args.out)


def print_table(rows: list[tuple[str, str, str]], met: dict[str, bool], out: Path) -> int:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for r in rows:
        print(f"{r[0].ljust(w0)}  {r[1].rjust(w1)}  {r[2]}")
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()))
    print(f"JSON: {out}")
    return 0 if all(met.values()) else 1


# The compose lab's targets: its core matrix within 3x the local one (measured in the same run), and
# up to healthy (images built) within 10 s.
COMPOSE_TARGETS = {"compose_matrix_vs_local": ("<=", 3.0), "compose_up_to_healthy_s": ("<=", 10.0)}


def compose_ratios(compose: dict) -> dict:
    return {"compose_matrix_vs_local": compose["matrix_median_s"] / compose["local_matrix_median_s"],
            "compose_up_to_healthy_s": compose["up_to_healthy_median_s"]}


def compose_rows(compose: dict) -> list[tuple[str, str, str]]:
    c = compose
    return [
        (f"compose image build, {c['image_build_kind']}", f"{c['image_build_s']:.1f} s", c["image"]),
        ("one container, docker run --rm (median)", f"{c['container_start_median_s']:.2f} s", "this machine, now"),
        ("compose up to healthy (median)", f"{c['up_to_healthy_median_s']:.1f} s",
         f"{c['up_to_healthy_median_s'] / c['container_start_median_s']:.1f}x one container (target <= 10 s); "
         f"rounds {', '.join(f'{x:.1f}' for x in c['up_to_healthy_s'])}"),
        (f"core matrix on compose, {c['cells']} cells (median)", f"{c['matrix_median_s']:.2f} s",
         f"{c['matrix_median_s'] / c['local_matrix_median_s']:.1f}x the local matrix "
         f"({c['local_matrix_median_s']:.2f} s, same run; target <= 3x)" + ("" if c["matrix_all_passed"] else "; FAILURES")),
    ]


def report_compose_only(compose: dict, out: Path) -> int:
    """``--compose only``: the compose figures and targets, nothing else."""
    ratios = compose_ratios(compose)
    met = {k: (ratios[k] <= v if op == "<=" else ratios[k] >= v) for k, (op, v) in COMPOSE_TARGETS.items()}
    met["compose_matrix_all_passed"] = compose["matrix_all_passed"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
                               "compose": compose, "ratios": ratios, "targets_met": met}, indent=2))
    return print_table(compose_rows(compose), met, out)


if __name__ == "__main__":
    raise SystemExit(main())
