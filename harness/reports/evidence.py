"""``harness evidence DIR``: what the lab saw, in one directory and one ``.tar.gz`` a reviewer hands on.

The bundle holds both journals (JSON), each host's forged and real chain
(``chains/HOST.forged.pem``, ``HOST.real.pem``), the flow file, the HAR, the
TLS key log and the pcap when the lab captured them, ``lab.json``, and
``SUMMARY.md`` (:mod:`harness.reports.summary`).

A running lab is read live (its journal endpoints).  A stopped one has no
endpoints and no ``lab.json``: ``harness up`` keeps a snapshot of both
journals and of ``lab.json`` in ``STATE/evidence/`` while it runs
(:func:`snapshot`), and that is what is bundled then.  The HAR is written by
mitmproxy when the proxy stops; for a running lab the bundle makes it from the
flow file with mitmproxy's own HAR export (``SaveHar.make_har``).

The flow file, HAR, key log and pcap hold credentials and secrets in clear: a
bundle with any of them is 0700 (directory) and 0600 (files and archive).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tarfile
from pathlib import Path

from harness.errors import LabError, UsageError
from harness.lab.info import LabInfo
from harness.net.journal import JournalReader
from harness.reports.summary import summarize, summary_markdown

SNAPSHOT = "evidence"  # under the state directory
PROXY_JOURNAL, SERVER_JOURNAL = "proxy-journal.json", "server-journal.json"
SECRET_FILES = ("flows.mitm", "flows.har", "sslkeylog.txt", "capture.pcap")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def fetch_journals(info: LabInfo, timeout: float = 5.0) -> tuple[list[dict], list[dict]]:
    """Both journals of a running lab, read from their endpoints (a LabError if unreachable)."""
    return (JournalReader(info.proxy_admin, timeout=timeout).read(),
            JournalReader(info.server_admin, timeout=timeout).read())


def snapshot(info: LabInfo) -> bool:
    """Keep both journals and ``lab.json`` in ``STATE/evidence/`` (for a bundle after the lab
    stops); False when a journal could not be read (the last snapshot stays)."""
    try:
        proxy, server = fetch_journals(info, timeout=2.0)
    except LabError:
        return False
    where = Path(info.state_dir) / SNAPSHOT
    where.mkdir(exist_ok=True)
    _write_atomic(where / PROXY_JOURNAL, json.dumps(proxy, indent=1))
    _write_atomic(where / SERVER_JOURNAL, json.dumps(server, indent=1))
    _write_atomic(where / "lab.json", info.to_json())
    return True


def _lab_state(state_dir: Path) -> tuple[LabInfo, list[dict], list[dict], str]:
    """The lab's info and journals: live if it runs, else the snapshot ``up`` kept."""
    if (state_dir / "lab.json").is_file():
        info = LabInfo.read(state_dir)
        try:
            proxy, server = fetch_journals(info)
            return info, proxy, server, "running lab (journals read live)"
        except LabError:
            pass  # stopped a moment ago: the snapshot below
    snap = state_dir / SNAPSHOT
    if not (snap / "lab.json").is_file():
        raise UsageError(f"no lab has run in {state_dir} (no lab.json and no evidence snapshot); start one with "
                         f"'harness up' (or pass --state-dir with the directory it used).")
    info = LabInfo.read(snap)
    try:
        proxy = json.loads((snap / PROXY_JOURNAL).read_text())
        server = json.loads((snap / SERVER_JOURNAL).read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"the evidence snapshot in {snap} is unreadable ({e}); nothing to bundle.") from None
    return info, proxy, server, "stopped lab (journals from the snapshot 'harness up' kept)"


def _check_out_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty directory; give a new directory for the evidence.")
    if not out.parent.is_dir():
        raise UsageError(f"the directory {out.parent} does not exist; create it or choose another place for {out.name}.")


def har_from_flows(flows_file: Path) -> dict:
    """mitmproxy's HAR export of the flows in ``flows_file`` (its own addon, not a HAR writer of ours)."""
    from mitmproxy import io
    from mitmproxy.addons.savehar import SaveHar

    with open(flows_file, "rb") as f:
        flows = list(io.FlowReader(f).stream())
    return SaveHar().make_har(flows)


def tshark_command(info: LabInfo, keylog: str = "sslkeylog.txt", pcap: str = "capture.pcap") -> list[str]:
    """tshark decrypting the capture: the lab's ports are not 443, so each is named (decode as
    HTTP for the proxy listeners, TLS for the server's ports)."""
    http = sorted({int(url.rsplit(":", 1)[1]) for urls in info.proxies.values() for url in urls})
    tls = sorted({int(a.rsplit(":", 1)[1]) for a in [*info.server_connect, *[x for v in info.sites.values() for x in v]]})
    return ["tshark", "-o", f"tls.keylog_file:{keylog}", "-r", pcap,
            *[a for p in http for a in ("-d", f"tcp.port=={p},http")],
            *[a for p in tls for a in ("-d", f"tcp.port=={p},tls")], "-Y", "http.request"]


def _copy_secret(src: str | None, dst: Path) -> bool:
    if not src or not Path(src).is_file():
        return False
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o600)
    return True


def bundle(state_dir: str | Path, out: str | Path) -> Path:
    """Write the evidence of the lab in ``state_dir`` to the new directory ``out`` and
    ``out.tar.gz``; returns the archive's path."""
    state_dir, out = Path(state_dir), Path(out).absolute()
    _check_out_dir(out)
    info, proxy, server, source = _lab_state(state_dir)
    out.mkdir(exist_ok=True)
    os.chmod(out, 0o700)
    files: list[str] = []
    (out / PROXY_JOURNAL).write_text(json.dumps(proxy, indent=1))
    (out / SERVER_JOURNAL).write_text(json.dumps(server, indent=1))
    (out / "lab.json").write_text(info.to_json())
    files += [f"{PROXY_JOURNAL}: the proxy journal ({len(proxy)} records)",
              f"{SERVER_JOURNAL}: the server journal ({len(server)} records)", "lab.json: where everything was"]
    e = info.evidence
    chains = sorted(Path(e.chains_dir).glob("*.pem")) if e.chains_dir and Path(e.chains_dir).is_dir() else []
    if chains:
        (out / "chains").mkdir()
        for c in chains:
            shutil.copyfile(c, out / "chains" / c.name)
        files.append(f"chains/: per host, the forged chain the client was shown and the real one ({len(chains)} files)")
    if _copy_secret(e.save_flows, out / "flows.mitm"):
        files.append("flows.mitm: mitmproxy flow file (open with mitmweb -r or mitmproxy -r)")
    # Empty until mitmproxy writes it, as the proxy stops (the lab created it 0600 and empty).
    if e.har and Path(e.har).is_file() and Path(e.har).stat().st_size and _copy_secret(e.har, out / "flows.har"):
        files.append("flows.har: mitmproxy's HAR export")
    elif e.save_flows and (out / "flows.mitm").is_file():
        (out / "flows.har").write_text(json.dumps(har_from_flows(out / "flows.mitm"), indent=1))
        os.chmod(out / "flows.har", 0o600)
        files.append("flows.har: mitmproxy's HAR export, made from the flow file (the lab still runs)")
    if _copy_secret(e.keylog, out / "sslkeylog.txt"):
        files.append("sslkeylog.txt: TLS key log of both legs (secret: decrypts the capture)")
    if _copy_secret(e.pcap, out / "capture.pcap"):
        files.append("capture.pcap: tcpdump capture; decrypted: `" + shlex.join(tshark_command(info)) + "`")
    facts = [f"source: {source}, state directory {state_dir.absolute()}",
             f"inspection CA: CN={info.org_issuer_cn}" + (f" (vendor profile {info.vendor})" if info.vendor else ""),
             f"upstream: {e.upstream}" + (f", verified against {e.upstream_trust}" if e.upstream_trust else ""),
             f"policies: {', '.join(info.proxies)}"]
    if any((out / name).exists() for name in SECRET_FILES):
        facts.append("this bundle holds decrypted traffic and/or TLS secrets in clear: share it like a password")
    summary = summarize(proxy, server)
    (out / "SUMMARY.md").write_text(summary_markdown(summary, title="TLS inspection evidence", facts=facts,
                                                     files=files))
    archive = out.with_name(out.name + ".tar.gz")
    fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
        tar.add(out, arcname=out.name)
    return archive
