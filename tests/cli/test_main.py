"""The harness command line as a user runs it: real subprocesses, exit codes, no tracebacks."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def harness(*args, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL, **kw)


def assert_one_sentence_error(proc, code):
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    # Progress lines ("Starting the local lab...") may precede it; the error is one line.
    lines = [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith("Starting ")]
    assert len(lines) == 1, proc.stderr


def test_run_core_matrix_passes_and_reports_json(tmp_path):
    proc = harness("run", "--tag", "core", "--json", "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["failed"] == 0 and doc["passed"] == 14
    assert {c["scenario"] for c in doc["cells"]} >= {"direct", "inspected-continue", "exception-partial"}


def test_run_exits_nonzero_on_a_mismatch(tmp_path):
    """Negative: a scenario file that expects the wrong outcome makes 'harness run' fail."""
    fixtures = ROOT / "fixtures"
    bad = tmp_path / "scenarios.toml"
    (tmp_path / "policies.toml").write_text((fixtures / "policies.toml").read_text())
    bad.write_text('[[scenario]]\nname = "wrong"\nnetwork = "proxy"\npolicy = "inspect"\n'
                   'trust = "public+org"\nexpect = { beam = "connected" }\n')
    proc = harness("run", "--scenarios-file", str(bad), "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout and "expected connected" in proc.stdout


def test_run_subprocess_clients(tmp_path):
    proc = harness("run", "--scenario", "inspected-continue", "--subprocess", "--state-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warned-continued" in proc.stdout


@pytest.mark.parametrize("args,code", [
    (["run", "--scenario", "no-such-scenario"], 2),
    (["run", "--lanes", "0"], 2),
    (["frobnicate"], 2),
    (["beam", "--pins", "/nonexistent/pins.txt"], 2),
    (["beam", "--pins", "README.md"], 2),
    (["attended", "--pins", "README.md", "--proxy", "ftp://x"], 2),
    (["attended", "--url", "http://plain"], 2),
])
def test_bad_input_is_one_sentence(args, code, tmp_path):
    proc = harness(*args, "--state-dir", str(tmp_path)) if args[0] == "run" else harness(*args)
    assert_one_sentence_error(proc, code)


def test_unwritable_state_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = harness("run", "--state-dir", str(blocker / "sub"))
    assert_one_sentence_error(proc, 1)
    assert "not writable" in proc.stderr


def test_up_detach_then_down_leaves_no_process(tmp_path):
    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    assert "inspection CA" in proc.stdout and "curl --proxy" in proc.stdout
    info = json.loads((tmp_path / "lab.json").read_text())
    pids = list(info["pids"].values())
    assert len(pids) == 3 and all(_alive(p) for p in pids)
    # The lab really serves: Beam refuses through the inspect listener.
    beam = harness("beam", "--proxy", info["proxies"]["inspect"][0], "--trust", info["pki"]["trust_public_org"],
                   "--pins", info["pki"]["pins_file"], "--once")
    assert beam.returncode == 5, beam.stderr
    down = harness("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0
    assert not any(_alive(p) for p in pids)
    assert not (tmp_path / "lab.json").exists()
    assert harness("down", "--state-dir", str(tmp_path)).returncode == 0  # idempotent


def test_killed_up_takes_its_children_along(tmp_path):
    """A crashed 'harness up' leaves no proxy or server behind (PR_SET_PDEATHSIG)."""
    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    info = json.loads((tmp_path / "lab.json").read_text())
    os.kill(info["pids"]["up"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(info["pids"][k]) for k in ("proxy", "server")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(info["pids"][k]) for k in ("proxy", "server"))
    assert harness("down", "--state-dir", str(tmp_path)).returncode == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_crashed_proxy_stops_the_lab_and_down_leaves_nothing(tmp_path):
    """The proxy dies (SIGKILL): 'harness up' notices, stops the server and removes lab.json;
    'harness down' afterwards has nothing left to stop."""
    from harness.lab.process import wait_gone

    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    pids = json.loads((tmp_path / "lab.json").read_text())["pids"]
    os.kill(pids["proxy"], signal.SIGKILL)
    assert wait_gone([pids["up"], pids["server"]], 15), "the lab did not stop after its proxy crashed"
    assert not (tmp_path / "lab.json").exists()
    assert "a lab process exited unexpectedly" in (tmp_path / "up.log").read_text()
    down = harness("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0 and "No lab is running" in down.stdout
    assert not any(_alive(p) for p in pids.values())


def test_down_after_a_crash_stops_a_hung_proxy(tmp_path):
    """'harness up' is killed while the proxy hangs (SIGSTOP): the server goes with its parent,
    the stopped proxy cannot act on that signal; 'harness down' still ends it, promptly."""
    from harness.lab.process import wait_gone

    proc = harness("up", "--detach", "--state-dir", str(tmp_path), "--lanes", "1")
    assert proc.returncode == 0, proc.stderr
    pids = json.loads((tmp_path / "lab.json").read_text())["pids"]
    os.kill(pids["proxy"], signal.SIGSTOP)
    os.kill(pids["up"], signal.SIGKILL)
    assert wait_gone([pids["up"], pids["server"]], 10)
    assert _alive(pids["proxy"])  # stopped, with the parent-death SIGTERM pending
    start = time.monotonic()
    down = harness("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    assert "killed" not in down.stderr  # SIGTERM (with SIGCONT) was enough
    assert not any(_alive(p) for p in pids.values())
    assert time.monotonic() - start < 5


def test_down_never_signals_a_process_that_is_not_the_labs(tmp_path):
    """A stale lab.json whose pids now belong to someone else: 'harness down' leaves them alone."""
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        info = {"backend": "local", "state_dir": str(tmp_path), "lanes": 1, "proxies": {}, "server_connect": [],
                "proxy_admin": "", "server_admin": "", "pki": {}, "org_issuer_cn": "",
                "pids": {"up": bystander.pid, "proxy": bystander.pid, "server": bystander.pid}}
        (tmp_path / "lab.json").write_text(json.dumps(info))
        down = harness("down", "--state-dir", str(tmp_path))
        assert down.returncode == 0, down.stderr
        assert bystander.poll() is None, "harness down signalled an unrelated process"
        assert not (tmp_path / "lab.json").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_up_serves_the_everyday_policies_unless_asked(tmp_path):
    """'harness up' starts listeners for the policies of the default matrix (fast); --policies picks others."""
    proc = harness("up", "--detach", "--lanes", "1", "--policies", "inspect,tunnel", "--state-dir", str(tmp_path))
    try:
        assert proc.returncode == 0, proc.stderr
        info = json.loads((tmp_path / "lab.json").read_text())
        assert sorted(info["proxies"]) == ["inspect", "tunnel"]
        # The proxy it started before knowing its configuration read the one file the lab wrote.
        argv = Path(f"/proc/{info['pids']['proxy']}/cmdline").read_bytes().decode().split("\0")
        assert argv[argv.index("--config") + 1] == str(tmp_path / "proxy.json") and "--start-gate" in argv
        assert json.loads((tmp_path / "proxy.json").read_text())["confdir"].endswith("mitmproxy")
    finally:
        assert harness("down", "--state-dir", str(tmp_path)).returncode == 0
    bad = harness("up", "--policies", "inspect,nope", "--state-dir", str(tmp_path / "b"))
    assert_one_sentence_error(bad, 2)
    assert "unknown policy 'nope'" in bad.stderr
    assert not [p for p in _lab_pids_under(tmp_path / "b")], "a prespawned proxy was left behind"


def _lab_pids_under(state_dir):
    """Processes whose command line mentions ``state_dir`` (e.g. a prespawned proxy)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(state_dir) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return [p for p in pids if _alive(p)]


# -- one sentence, once, the same code: foreground, detached, and when the disk is full ---------------

@pytest.mark.parametrize("args,code,says", [
    (["up", "--policies", "inspect,nope"], 2, "harness: unknown policy 'nope'"),
    (["up", "--base-port", "65530"], 2, "harness: port 65536 (proxy listener"),
])
def test_a_detached_up_says_what_the_foreground_one_says(tmp_path, args, code, says):
    """The detached child's sentence reaches the launcher through --ready-fd: the same line, the same
    exit code (before: 'the lab failed to start: harness: ...', exit 1, or an empty log)."""
    fg = harness(*args, "--state-dir", str(tmp_path / "fg"))
    bg = harness(*args, "--detach", "--state-dir", str(tmp_path / "bg"))
    for proc in (fg, bg):
        assert_one_sentence_error(proc, code)
        assert proc.stderr.startswith(says) and "harness: harness" not in proc.stderr
    assert fg.stderr == bg.stderr
    assert not _lab_pids_under(tmp_path), "a failed lab left a process behind"


@pytest.mark.parametrize("args", [["frobnicate"], ["up", "--lanes", "0"], ["run", "--org-cn", "A" * 65]])
def test_argument_errors_name_the_program_once(args):
    proc = harness(*args)
    assert_one_sentence_error(proc, 2)
    assert proc.stderr.startswith("harness") and "harness: harness" not in proc.stderr


def test_an_os_error_is_one_sentence_naming_the_path(monkeypatch, capsys):
    """What no command catches itself (lab.json on a full disk) still ends as one sentence, exit 1."""
    from harness.cli import main as cli_main

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/lab/state/lab.json")

    monkeypatch.setattr(cli_main.importlib, "import_module", lambda name: type("M", (), {"cmd_pki": full}))
    assert cli_main.main(["pki", "--state-dir", "/lab/state"]) == 1
    assert capsys.readouterr().err == ("harness: a file operation on /lab/state/lab.json failed (no space left on the "
                                       "device); free space or choose another --state-dir.\n")


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs, nearly full (root only; elsewhere the test is skipped and the monkeypatched one above runs)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        (mnt / "r").mkdir()
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path, leave_kib: int) -> None:
    st = os.statvfs(mnt)
    (mnt / "filler").write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave_kib * 1024))


def test_a_full_disk_is_one_sentence_naming_the_path(full_disk, tmp_path):
    pki = harness("pki", "--state-dir", str(full_disk / "pki-state"))
    assert_one_sentence_error(pki, 1)
    assert f"cannot write the lab PKI under {full_disk}/pki-state/pki (No space left on device)" in pki.stderr
    # Detached: the child's log is on the full disk too; its sentence still reaches the launcher.
    # Writes that fill the disk carry no file name: the sentence names the state directory.
    bg = harness("up", "--detach", "--lanes", "1", "--state-dir", str(full_disk / "up-state"))
    assert_one_sentence_error(bg, 1)
    assert f"under {full_disk}/up-state" in bg.stderr and "o space left on" in bg.stderr
    assert not _lab_pids_under(full_disk)
    # The report directory passes the writability probe (an empty file fits) and then fills up.
    _fill(full_disk, leave_kib=4)
    run = harness("run", "--json", "--scenario", "direct", "--lanes", "1", "--report", str(full_disk / "r"),
                  "--state-dir", str(tmp_path / "run-state"))
    assert_one_sentence_error(run, 1)
    assert f"cannot write the reports to {full_disk}/r (No space left on device)" in run.stderr


@pytest.mark.parametrize("args,says", [
    (["beam", "--pins", "{fifo}", "--once"], "pins file {fifo} is a FIFO (named pipe), not a regular file"),
    (["attended", "--pins", "/dev/zero"], "pins file /dev/zero is a character device, not a regular file"),
    (["probe", "beam.screenmeet.com", "--trust", "{fifo}"], "certificate file {fifo} is a FIFO (named pipe)"),
    (["run", "--client-file", "/dev/zero"], "/dev/zero is a character device, not a regular file"),
    (["run", "--scenarios-file", "{fifo}"], "is a FIFO (named pipe), not a regular file"),
])
def test_a_fifo_or_a_device_is_one_sentence_not_a_hang(tmp_path, args, says):
    """Before: a FIFO hung the command and /dev/zero filled its memory (the subprocess' timeout catches a hang)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "policies.toml").write_bytes((ROOT / "fixtures" / "policies.toml").read_bytes())  # beside the scenarios
    args = [a.replace("{fifo}", str(fifo)) for a in args]
    proc = harness(*args, *(["--state-dir", str(tmp_path / "s")] if args[0] == "run" else []), timeout=60)
    assert_one_sentence_error(proc, 2)
    assert says.replace("{fifo}", str(fifo)) in proc.stderr
