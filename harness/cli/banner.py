"""What ``harness up`` prints: where everything of the running lab is, and commands to try.

The commands work as typed: the lab's own ones start with the words that
started this process (``./lab`` from a checkout, whose script says so in
``$HARNESS_PROG``; ``harness`` when that is the one on ``PATH``; else the
path that was run), and the "try" lines are the README's (``Driving the lab by
hand``) with the README's ``PORT`` (the ``inspect`` proxy) and ``ADMIN`` (the
proxy journal) filled in; ``tests/cli/test_banner.py`` holds the two together.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from harness.errors import BadFileError
from harness.lab.info import LabInfo
from harness.lab.pac import default_policy
from harness.lab.statedir import default_state_dir
from harness.model.secrets import REDACTED
from harness.pki.ca import load_certificate
from harness.pki.names import display_name


def harness_command() -> str:
    """The words that run ``harness`` again, as the person who started this process can type them."""
    if prog := os.environ.get("HARNESS_PROG"):  # set by the ./lab script to how it was called
        return prog
    argv0 = Path(sys.argv[0])
    if argv0.name == "harness":
        on_path = shutil.which("harness")
        if on_path and Path(on_path).resolve() == argv0.resolve():
            return "harness"
        return _as_typed(argv0)
    return f"{_as_typed(Path(sys.executable))} -m harness"  # python -m harness


def _as_typed(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (``.venv/bin/harness``), else absolute."""
    path = Path(os.path.abspath(path))  # not resolve(): a venv's python is a symlink that must stay one
    try:
        shown = str(path.relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return shlex.quote(shown)


def describe_lab(info: LabInfo, *, prog: str | None = None, show_login: bool | None = None) -> str:
    """The human summary printed by ``harness up``; ``prog`` runs harness (default :func:`harness_command`).
    ``show_login``: print the proxy login in clear (default: only on a terminal, see :func:`login_lines`)."""
    prog = prog or harness_command()
    pki = info.pki
    lane0 = {policy: urls[0] for policy, urls in info.proxies.items()}
    width = max(len(p) for p in lane0)
    compose = info.backend == "compose"
    lines = [
        *_exposed_lines(info),
        f"TLS-inspection lab is up ({info.backend}, {info.lanes} lane(s)). {_how_to_stop(info, prog)}",
        *ca_lines(info),
        *([f"  vendor profile    {info.vendor} (fixtures/vendors.toml)"] if info.vendor else []),
        f"  trust bundles     public only: {pki['trust_public']}",
        f"                    public + org CA: {pki['trust_public_org']}",
        f"  pins              {pki['pins_file']}",
        "  proxies (lane 0)",
        *[f"    {policy.ljust(width)}  {url}" for policy, url in lane0.items()],
        *login_lines(info, sys.stdout.isatty() if show_login is None else show_login),
        f"  server (direct)   {info.server_connect[0]}  (SNI/Host must be a ScreenMeet name)",
        f"  journals          proxy {info.proxy_admin}/journal   server {info.server_admin}/journal",
        *device_lines(info),
        *([f"  corp shell        docker exec -it {info.machines.corp['beam'][-1][:12]} sh   (a machine on the corp network)"]
          if compose else []),
        # Inside a corp container the image's harness is on PATH.
        *try_lines(info, "harness" if compose else prog),
        *_transparent_lines(info, prog),
        *evidence_lines(info, prog),
        f"  written to        {Path(info.state_dir) / 'lab.json'}",
    ]
    return "\n".join(lines)


def _subject_cn(path: str | None) -> str | None:
    try:
        return display_name(load_certificate(path).subject) if path else None
    except (BadFileError, OSError):
        return None


def ca_lines(info: LabInfo) -> list[str]:
    """The CA lines: each CN beside the file that really holds it.

    The CN clients see as the issuer (``org_issuer_cn``) is the vendor's intermediate when the
    profile has one, which is not what ``org-ca.pem`` (the root, the file to trust) holds: then
    the root's CN goes with ``org-ca.pem`` and the issuer's with ``org-sub-ca.pem``.
    """
    pki, issuer = info.pki, info.org_issuer_cn
    root_cn = _subject_cn(pki.get("org_ca"))
    if root_cn == issuer:
        return [f"  inspection CA     CN={issuer}  ({pki['org_ca']})"]
    if root_cn is None:  # the file cannot be read here (yet): say the CN, claim no file
        return [f"  inspection CA     CN={issuer}"]
    holder = pki.get("org_sub_ca") if _subject_cn(pki.get("org_sub_ca")) == issuer else None
    return [f"  inspection CA     CN={root_cn}  ({pki['org_ca']}: the root clients trust)",
            f"  issuing CA        CN={issuer}" + (f"  ({holder}: sent with every forged leaf)" if holder else "")]


def login_lines(info: LabInfo, show: bool) -> list[str]:
    """The proxy login of the policies that require one (issue 14): in clear for the person at the
    terminal (or with --show-secrets), else redacted, as in every output others may read (a CI
    log, 'up --detach''s up.log); lab.json always has it."""
    if not info.proxy_logins:
        return []
    login = next(iter(info.proxy_logins.values()))
    shown = login if show else f"{login.split(':', 1)[0]}:{REDACTED}"
    return [f"  proxy login       {shown}  for {', '.join(info.proxy_logins)} "
            "(put it in the proxy URL: http://USER:PASSWORD@HOST:PORT; lab.json: proxy_logins)"]


def try_lines(info: LabInfo, prog: str) -> list[str]:
    """The README's commands to try, for this lab: watch the MITM with curl, read the journal, run the clients."""
    pki, inspect = info.pki, (info.proxies.get("inspect") or [None])[0]
    if inspect is None:
        return ["  try               (no inspect proxy in this lab: start it with --policies default or all)"]
    bundle, pins = shlex.quote(pki["trust_public_org"]), shlex.quote(pki["pins_file"])
    compose = info.backend == "compose"
    return [
        "  try" + (" (inside a corp container)" if compose else
                   " (PORT in the README is the inspect proxy's port, ADMIN the proxy journal's)"),
        f"    curl --proxy {inspect} --cacert {bundle} -v https://api.screenmeet.com/",
        *([] if compose else [f"    curl -s {info.proxy_admin}/journal | python3 -m json.tool"]),
        f"    {prog} beam     --proxy {inspect} --trust {bundle} --pins {pins} --once",
        f"    {prog} attended --proxy {inspect} --trust {bundle} --pins {pins} --on-warning ask",
    ]


def _how_to_stop(info: LabInfo, prog: str) -> str:
    where = Path(info.state_dir)
    down = f"{prog} down" + ("" if where.resolve() == default_state_dir().resolve() else f" --state-dir {shlex.quote(str(where))}")
    # Printed by the 'up' process itself it can take Ctrl-C; printed after --detach, it cannot.
    if info.pids.get("up") == os.getpid():
        return f"Stop it with Ctrl-C or '{down}' from another terminal."
    return f"Stop it with '{down}'."


def _transparent_lines(info: LabInfo, prog: str) -> list[str]:
    """How to run a client behind the transparent gateway, if the lab has one."""
    t = info.transparent
    if t is None or not t.gateways:
        return []
    policy = "inspect" if "inspect" in t.gateways else next(iter(t.gateways))
    where = (f"sudo ip netns exec {t.namespace} {prog}" if info.backend == "local"
             else f"docker exec -u lab {info.machines.gateway['beam'][-1][:12]} harness")
    return [f"  transparent       no proxy; gateway address for {policy}: {t.gateways[policy][0]} (all in lab.json)",
            f"    {where} beam --no-proxy --connect-to {t.gateways[policy][0]} "
            f"--trust {info.pki['trust_public_org']} --pins {info.pki['pins_file']} --once"]


def _exposed_lines(info: LabInfo) -> list[str]:
    """The loud line: with ``--listen`` on a LAN address, anyone on that network reaches the proxy
    (and through it mitm.it, which hands out the lab's inspection CA)."""
    if not info.reachable_from_network:
        return []
    return [f"!!! --listen {info.listen}: the lab's proxy and its inspection CA are now reachable from the network "
            f"of {info.listen}; any machine there can use them (journals stay on loopback). Stop the lab when done. !!!"]


def device_lines(info: LabInfo) -> list[str]:
    """Where a real device points: per policy the proxy HOST:PORT and its PAC URL, and the WPAD URL."""
    if not info.pac:
        return []
    width = max(len(p) for p in info.device_proxies)
    note = ("" if info.reachable_from_network
            else "  (loopback only: 'up --listen ADDRESS' for a device on the LAN)")
    return [
        f"  real device       proxy HOST:PORT or PAC URL per policy{note}",
        *[f"    {policy.ljust(width)}  {address}   {info.pac[policy]}" for policy, address in info.device_proxies.items()],
        f"  PAC / WPAD        {info.pac_default}   {info.wpad}   (policy {default_policy(info.pac)})",
    ]


def evidence_lines(info: LabInfo, prog: str) -> list[str]:
    """Live upstream, mitmweb and the evidence files, for a lab that has any of them."""
    e, lines = info.evidence, []
    if e.upstream == "live":
        lines.append(f"  upstream          LIVE: ScreenMeet names go to their real addresses (system DNS), "
                     f"verified against {e.upstream_trust}")
    if e.web:
        guard = "" if "token=" in e.web else "  (no login in this mitmproxy: loopback only)"
        lines.append(f"  mitmweb           {e.web}{guard}")
    files = [(label, path) for label, path in (("flows", e.save_flows), ("HAR", e.har), ("key log", e.keylog),
                                               ("pcap", e.pcap)) if path]
    for label, path in files:
        note = {"HAR": "  (written when the lab stops)",
                "key log": "  (0600: it decrypts everything; do not share it casually)",
                "pcap": "  (0600)"}.get(label, "")
        lines.append(f"  {label.ljust(18)}{path}{note}")
    if e.web or files:
        where = "" if Path(info.state_dir).resolve() == default_state_dir().resolve() else \
            f" --state-dir {shlex.quote(str(info.state_dir))}"
        lines.append(f"  evidence bundle   {prog} evidence DIR{where}   (journals, chains, files, SUMMARY.md, .tar.gz)")
    return lines
