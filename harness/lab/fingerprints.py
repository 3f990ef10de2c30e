"""Learning at lab start which TLS fingerprint each client produces (the mock server's ``--known``).

The mock server flags a request whose ClientHello is not the one its
User-Agent's client sends (:mod:`harness.server.detect`).  Which one that is
depends on the TLS library and its build (OpenSSL's defaults change between
versions), so the lab does not declare it: it *learns* it here, each time a lab
starts, from the clients' own TLS stacks on this machine:

* the reference clients (User-Agent ``tls-lab-reference-client/1``): the context
  they build (:func:`harness.clients.transport.trust_context`), for every
  ``--tls-min``/``--tls-max`` they accept, driven through a handshake in memory
  (``ssl.MemoryBIO``: the exact bytes they would send, no socket);
* curl (User-Agent ``curl/…``, the foreign clients of ``fixtures/clients.toml``):
  a real direct connection to a one-shot loopback listener that reads the
  ClientHello and hangs up, with and without ``--http2``.

Each ClientHello is parsed as the server parses it (:mod:`harness.server.peek`)
and fingerprinted by :func:`harness.model.tlsfingerprint.ja4`.  Learning takes about
0.15 s (three curl runs), once per process; a missing curl is skipped (its
requests are then not judged by fingerprint).
"""

from __future__ import annotations

import functools
import json
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

from harness.clients.transport import trust_context
from harness.clients.wire import USER_AGENT
from harness.model.tlsfingerprint import Hello, ja4
from harness.server.detect import client_family
from harness.server.peek import parser

REFERENCE_FAMILY = client_family(USER_AGENT)  # "tls-lab-reference-client"
SNI = "api.screenmeet.com"
VERSION_BOUNDS = ((None, None), (None, "1.2"), (None, "1.3"), ("1.2", None), ("1.3", None), ("1.2", "1.2"))
CURL_VARIANTS = ((), ("--http2",), ("--http1.1",))


def _parse(record_bytes: bytes):
    """The ClientHello (:class:`mitmproxy.tls.ClientHello`) in ``record_bytes``, or None if incomplete."""
    get_client_hello, client_hello = parser()
    raw = get_client_hello(record_bytes)
    return client_hello(raw[4:]) if raw is not None else None


def reference_hellos() -> list:
    """The ClientHellos the reference clients send, one per version bound they accept."""
    hellos = []
    for tls_min, tls_max in VERSION_BOUNDS:
        ctx = trust_context(None, tls_min=tls_min, tls_max=tls_max)
        out = ssl.MemoryBIO()
        obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=SNI)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass  # the ClientHello is written; the server's answer would come next
        if (hello := _parse(out.read())) is not None:
            hellos.append(hello)
    return hellos


def program_hello(argv: list[str], timeout: float = 5.0):
    """The ClientHello a program sends to ``https://{SNI}:PORT/`` (``{port}`` in ``argv``), read from
    a one-shot listener on loopback; None if it sent none in time."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        proc = subprocess.Popen([a.replace("{port}", str(port)) for a in argv],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            listener.settimeout(timeout)
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(timeout)
                data, deadline = b"", time.monotonic() + timeout
                while time.monotonic() < deadline and len(data) < 65536:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    if (hello := _parse(data)) is not None:
                        return hello
                return None
        except (OSError, ValueError):
            return None
        finally:
            proc.kill()
            proc.wait()


def curl_hellos(curl: str | None = None) -> list:
    """curl's ClientHellos (default, ``--http2``, ``--http1.1``); none when curl is not installed."""
    curl = curl or shutil.which("curl")
    if curl is None:
        return []
    hellos = []
    for extra in CURL_VARIANTS:
        argv = [curl, "-s", "-o", "/dev/null", "--max-time", "5", *extra,
                "--resolve", f"{SNI}:{{port}}:127.0.0.1", f"https://{SNI}:{{port}}/"]
        if (hello := program_hello(argv)) is not None:
            hellos.append(hello)
    return hellos


@functools.cache
def learn() -> dict[str, list[str]]:
    """``{client family: [JA4, ...]}`` for the reference clients and curl, from this machine's stacks
    (once per process: ``--all-vendors`` starts one lab per vendor on the same machine)."""
    known = {REFERENCE_FAMILY: reference_hellos(), "curl": curl_hellos()}
    return {family: sorted({ja4(Hello.from_client_hello(h)) for h in hellos})
            for family, hellos in known.items() if hellos}


def write_known(path: Path) -> Path:
    """Learn (:func:`learn`) and write the server's ``--known`` file to ``path``."""
    path.write_text(json.dumps(learn(), indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.lab.fingerprints FILE``: learn and write FILE (the compose lab's server
    container does this before it starts, with the clients' image)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m harness.lab.fingerprints FILE (where to write the known fingerprints)", file=sys.stderr)
        return 2
    try:
        write_known(Path(args[0]))
    except OSError as e:
        print(f"cannot write the known fingerprints to {args[0]} ({e.strerror or e}); give a writable path.",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
