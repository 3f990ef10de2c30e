"""Generated bad input, in-process: the ``harness`` command line (up, run, pki, probe), the reference
clients' arguments, and the fixture loaders on generated TOML, never answer with a traceback.

Every example must end as a normal exit (0, or the command's failure code) or as one
sentence on one line; for bad input that is exit 2 (a UsageError or BadFileError for the
loaders).  Nothing here starts a lab: ``up``/``run``/``pki`` run their checks up to the
point where a lab would start (the options become a :class:`LabOptions`, the client and
scenario files are loaded), and the clients' network step is replaced by a refusal, so a
well-formed command ends with the clients' network-error code without touching the network.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import socket
import tempfile
import types
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.cli import main as cli_main
from harness.cli.parser import lab_options
from harness.cli.run import resolve_clients
from harness.clients import attended, beam, common, transport
from harness.clients.probe import parse_target
from harness.clients.transport import parse_proxy_url
from harness.errors import LabError, UsageError
from harness.model.clientdefs import load_clients
from harness.model.policy import load_policies
from harness.model.scenarios import load_scenarios
from harness.model.values import split_host_port
from harness.model.vendors import load_vendors
from harness.pki.lab import LabPKI

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORK = Path(tempfile.mkdtemp(prefix="fuzz-inputs-"))
FIFO = WORK / "fifo"
os.mkfifo(FIFO)
(WORK / "dir").mkdir()
(WORK / "binary").write_bytes(b"\xff\xfe\x00\x80garbage")
(WORK / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
PKI = LabPKI.generate(WORK / "pki")

# -- values a person might type -------------------------------------------------------------------------

EXTREMES = st.sampled_from(["nan", "inf", "-inf", "1e309", "1e300", "1e19", "-0", "0", "0x10", "1_000", "٣",
                            "9" * 5000, "", "65536", "99999999999999999999"])
NUMBERS = st.one_of(
    EXTREMES, EXTREMES,  # twice: the interesting values, often
    st.integers().map(str),
    st.integers(min_value=10**18).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=80)
HOSTS = st.one_of(
    st.lists(LABEL, min_size=1, max_size=6).map(".".join),
    st.sampled_from(["127.0.0.1", "::1", "[::1", "a b", "ü" * 70 + ".com", "a..b", ".", "", "x" * 300]),
    st.text(max_size=40),
)
PORTS = st.one_of(st.integers(-5, 70000).map(str), st.sampled_from(["", "http", "99999999999999999999"]))
LONG_HOSTS = st.one_of(st.sampled_from([63, 64, 65, 200]).map(lambda n: "a" * n + ".test"),  # the 63-character label limit
                       st.sampled_from([124, 125, 126]).map(lambda n: "a." * n + "test"))  # the 253-character name limit
URL_EXTREMES = st.one_of(
    st.sampled_from(["https://[::1", "http://[::1", "https://", "https://x:0", "://", "http://a:b@c:1",
                     "https://x:99999", "https://a b/", "https://a\0b/"]),
    st.builds(lambda scheme, host: f"{scheme}://{host}:8080/", st.sampled_from(["https", "http"]), LONG_HOSTS),
)
URLS = st.one_of(
    URL_EXTREMES, URL_EXTREMES,  # twice: the interesting values, often
    st.builds(lambda scheme, host, port: f"{scheme}://{host}:{port}/", st.sampled_from(["https", "http", "ftp", ""]),
              HOSTS, PORTS),
    st.builds(lambda host: f"https://{host}/", HOSTS),
    st.text(max_size=60),
)
FILES = st.one_of(
    st.sampled_from([str(FIFO), "/dev/zero", "/dev/null", str(WORK / "dir"), str(WORK / "binary"),
                     str(WORK / "deep.toml"), "/nonexistent/file", "a\0b", str(WORK / "x" / "\n"),
                     str(PKI.pins_file), str(PKI.trust_public), "/" + "x/" * 2000]),
    st.text(max_size=30),
)
NAMES = st.one_of(st.text(max_size=100), st.sampled_from(["A" * 65, "", "Acme\0CA", "Acme\nCA", "Acme Corp"]))


def values_for(option: str):
    kinds = {
        "--lanes": NUMBERS, "--base-port": NUMBERS, "--timeout": NUMBERS, "--retries": NUMBERS,
        "--messages": NUMBERS, "--heartbeats": NUMBERS, "--interval": NUMBERS, "--backoff-base": NUMBERS,
        "--backoff-cap": NUMBERS, "--ready-fd": NUMBERS,
        "--url": URLS, "--proxy": URLS, "--connect-to": st.builds(lambda h, p: f"{h}:{p}", HOSTS, PORTS) | HOSTS,
        "--org-cn": NAMES, "--org-o": NAMES,
        "--pins": FILES, "--trust": FILES, "--client-file": FILES, "--scenarios-file": FILES,
        "--state-dir": st.sampled_from(["a\0b", "", str(FIFO), "/dev/null/x"]),
        "--report": st.sampled_from(["a\0b", "", str(FIFO), "/dev/null/x"]),
    }
    return kinds.get(option, st.text(max_size=30))


def argv_for(options: list[str], *, min_pairs: int = 0, max_pairs: int = 4):
    """``min_pairs`` to ``max_pairs`` generated ``--option value`` pairs (fewer pairs: more examples get
    past the first bad value to the deeper checks)."""
    pairs = st.lists(st.sampled_from(options).flatmap(lambda o: values_for(o).map(lambda v: [o, v])),
                     min_size=min_pairs, max_size=max_pairs)
    return pairs.map(lambda ps: [x for p in ps for x in p])


def assert_one_sentence(code: int, err: str, *, allowed: tuple[int, ...], sentence_for=(1, 2)) -> None:
    """``code`` is one of ``allowed``; with a code in ``sentence_for``, stderr is one line."""
    assert code in allowed, (code, err)
    assert "Traceback" not in err
    if code in sentence_for:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err
        assert "harness: harness" not in err, err


# -- the harness command line, in-process, up to where a lab would start -------------------------------------

def _checks_only(args) -> int:
    """What up/run/pki/probe check before a lab (or a connection) exists."""
    if args.command in ("up", "run"):
        lab_options(args)
    if args.command in ("up", "run", "pki"):
        # What the PKI does with the CA's names first (cryptography refuses a CN over 64 characters).
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, args.org_cn),
                   x509.NameAttribute(NameOID.ORGANIZATION_NAME, args.org_o)])
    if args.command == "run":
        resolve_clients(args.client, args.client_file)
        if args.scenarios_file:
            load_scenarios(args.scenarios_file, policies=load_policies())
    if args.command == "probe":
        parse_target(args.host)
        if args.proxy:
            parse_proxy_url(args.proxy)
        if args.connect_to:
            try:
                split_host_port(args.connect_to)
            except ValueError as e:
                raise UsageError(str(e)) from None
        if args.pins:
            common.load_pins(args.pins)
        if args.trust:
            common.load_certificates(args.trust)
    return 0


class _Stub:
    cmd_up = cmd_run = cmd_pki = cmd_probe = staticmethod(_checks_only)


COMMAND_OPTIONS = {
    "up": ["--lanes", "--base-port", "--org-cn", "--org-o", "--state-dir", "--ready-fd", "--policies", "--lab"],
    "run": ["--lanes", "--base-port", "--org-cn", "--org-o", "--client-file", "--scenarios-file", "--report",
            "--state-dir", "--client", "--scenario"],
    "pki": ["--org-cn", "--org-o", "--state-dir", "--vendor"],
    "probe": ["--timeout", "--proxy", "--connect-to", "--pins", "--trust"],
}


@SETTINGS
@example(("pki", ["--org-cn", "A" * 65], ""))  # cryptography: ValueError
@example(("probe", [], f"{'a' * 64}.test"))
@example(("probe", [], "https://[::1"))  # urlsplit: ValueError
@example(("run", ["--client-file", str(FIFO)], ""))  # a FIFO: hung
@example(("run", ["--scenarios-file", "/dev/zero"], ""))  # /dev/zero: MemoryError
@example(("up", ["--lanes", "100000"], ""))  # EMFILE once the lab starts
@given(st.sampled_from(sorted(COMMAND_OPTIONS)).flatmap(
    lambda c: st.tuples(st.just(c), argv_for(COMMAND_OPTIONS[c], min_pairs=1, max_pairs=3), URLS | HOSTS)))
def test_the_command_line_answers_bad_input_with_one_sentence(case):
    command, argv, target = case
    argv = [command, *([target] if command == "probe" else []), *argv]
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        # Only the CLI's dispatch is stubbed (not importlib itself: the checks import modules too).
        mp.setattr(cli_main, "importlib", types.SimpleNamespace(import_module=lambda name: _Stub))
        code = cli_main.main(argv)
    assert_one_sentence(code, err.getvalue(), allowed=(0, 1, 2))


# -- the reference clients' arguments ------------------------------------------------------------------------

# The options that reach the network step are listed twice: drawn more often.
CLIENT_OPTIONS = {
    "beam": ["--url", "--proxy", "--connect-to", "--timeout"] * 2 + [
        "--trust", "--pins", "--retries", "--heartbeats", "--interval", "--backoff-base", "--backoff-cap"],
    "attended": ["--url", "--proxy", "--connect-to", "--timeout"] * 2 + ["--trust", "--pins", "--messages"],
}


def _refuse(address, timeout=None, *args, **kwargs):
    """socket.create_connection without the network: what it does to the host name (IDNA, as
    getaddrinfo) and the timeout (settimeout) before connecting, then a refusal."""
    host, port = address
    host.encode("idna")
    probe = socket.socket()
    try:
        probe.settimeout(timeout)
    finally:
        probe.close()
    raise ConnectionRefusedError(errno.ECONNREFUSED, "refused: the network is not part of this test")


@settings(SETTINGS, max_examples=300)
# The inputs that broke before this test existed, always tried first:
@example(("beam", ["--url", f"https://{'a' * 64}.test/"], "", True))  # IDNA in getaddrinfo: UnicodeError
@example(("attended", ["--timeout", "1e300"], "", True))  # settimeout: OverflowError
@example(("beam", ["--retries", "10000"], "", True))  # 2 ** 1024 in the back-off: OverflowError
@example(("beam", [], f"http://{'a' * 64}.test:8080", False))  # HTTPS_PROXY's host
@given(st.sampled_from(sorted(CLIENT_OPTIONS)).flatmap(
    lambda c: st.tuples(st.just(c), argv_for(CLIENT_OPTIONS[c], min_pairs=1, max_pairs=2), URLS, st.booleans())))
def test_the_clients_answer_bad_input_with_one_sentence(case):
    name, argv, https_proxy, no_proxy = case
    # A valid pins file first, so the generated values decide; a generated --pins comes later and wins.
    # Without --no-proxy, the generated HTTPS_PROXY is used (when no --proxy is generated).
    argv = ["--pins", str(PKI.pins_file), *(["--no-proxy"] if no_proxy else []), *argv]
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transport.socket, "create_connection", _refuse)
        # Retries up to the limit (10000), without the back-off or re-reading the trust bundle each time.
        mp.setattr(beam.time, "sleep", lambda s: None)
        mp.setattr(common.Session, "reload_trust", lambda self: None)
        mp.setenv("HTTPS_PROXY", https_proxy.replace("\0", ""))  # no environment holds a NUL
        mp.setenv("NO_PROXY", "")
        main = beam.main if name == "beam" else attended.main
        code = main(argv, stdout=out, stderr=err, stdin=io.StringIO())
    # A usage error is one sentence; the refused network step is exit 6 (Beam says so at every retry).
    assert_one_sentence(code, err.getvalue(), allowed=(2, 6), sentence_for=(2,))


# -- the fixture loaders on generated TOML ---------------------------------------------------------------------

SCALARS = st.one_of(
    st.booleans(), st.integers(), st.integers(min_value=10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40), st.sampled_from(["https://[::1", "https://" + "a" * 64 + ".com/", "(a+)+$", "{proxy_url}",
                                           "pinned-warn", "unpinned", "inspect", "proxy", "direct", "A" * 65]),
)
TOML_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=3), max_leaves=8)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{ " + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(x)}" for k, x in v.items()) + " }"


KEYS = {
    "client": ["policy", "url", "command", "proxy", "direct", "env", "exit_codes", "warning", "answer", "expect",
               "timeout", "description"],
    "scenario": ["name", "network", "expect", "policy", "trust", "attended_on_warning", "tags", "urls",
                 "client_args", "expect_by_action", "expect_by_matching"],
    "policy": ["mode", "exceptions", "upstream", "forge", "untrusted_upstream", "leaf_key", "tls_min", "tls_max"],
    "vendor": ["issuer_cn", "issuer_o", "root_cn", "chain", "key", "leaf_key", "leaf_validity", "untrusted_upstream",
               "block_status", "block_page", "exception_match", "connect_ports", "request_headers", "source"],
}


def document(kind: str):
    body = st.dictionaries(st.sampled_from(KEYS[kind]) | st.text(min_size=1, max_size=8), TOML_VALUES, max_size=6)
    header = "[[scenario]]" if kind == "scenario" else f'[{kind}."x"]'
    structured = body.map(lambda d: header + "\n" + "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in d.items()))
    raw = st.one_of(st.binary(max_size=200).map(lambda b: b.decode("latin-1")), st.text(max_size=200))
    return st.one_of(structured, structured, raw.map(lambda t: header + "\n" + t), raw)


LOADERS = {
    "client": load_clients,
    "scenario": lambda p: load_scenarios(p, policies=load_policies()),
    "policy": load_policies,
    "vendor": load_vendors,
}


@SETTINGS
@example(("client", '[client."x"]\npolicy = "unpinned"\ncommand = ["c", "{proxy_url}"]\ntimeout = 1e300\n'), "utf-8")
@example(("client", '[client."x"]\npolicy = "unpinned"\ncommand = ["c", "{proxy_url}"]\n'
                    f'exit_codes = {{ "{"1" * 5000}" = "connected" }}\n'), "utf-8")  # int(): ValueError
@example(("client", '[client."x"]\npolicy = "unpinned"\ncommand = ["c", "{proxy_url}"]\n'
                    'url = "https://[::1"\n'), "utf-8")  # urlsplit: ValueError
@example(("scenario", '[[scenario]]\nname = "s"\nnetwork = "direct"\nexpect = { beam = "connected" }\n'
                      'urls = { beam = "https://x:99999/" }\n'), "utf-8")  # .port: ValueError at run time
@example(("vendor", '[vendor."x"]\nissuer_cn = "' + "A" * 65 + '"\n'), "utf-8")
@example(("policy", "a = " + "[" * 2000 + "]" * 2000), "utf-8")  # RecursionError
@example(("client", "[client.x]\n"), "utf-16")  # not UTF-8
@given(st.sampled_from(sorted(LOADERS)).flatmap(lambda k: st.tuples(st.just(k), document(k))),
       st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_the_fixture_loaders_answer_bad_files_with_one_sentence(case, encoding):
    kind, text = case
    path = WORK / f"{kind}.toml"
    path.write_bytes(text.encode(encoding, "replace"))
    try:
        LOADERS[kind](path)
    except LabError as e:
        assert isinstance(e, UsageError), e  # BadFileError (or an unknown name): the caller's to fix
        message = str(e)
        assert "\n" not in message and message.endswith("."), message


@pytest.mark.parametrize("kind", sorted(LOADERS))
@pytest.mark.parametrize("special", [str(FIFO), "/dev/zero", str(WORK / "dir"), str(WORK / "deep.toml"),
                                     str(WORK / "binary")])
def test_the_fixture_loaders_refuse_special_files(kind, special):
    with pytest.raises(UsageError) as info:
        LOADERS[kind](special)
    assert special in str(info.value) and "\n" not in str(info.value)
