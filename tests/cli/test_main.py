"""harness.cli.main: dispatch to the command modules and programs, LabError as one sentence and its exit code."""

import errno
import importlib
import importlib.metadata
import os
import subprocess
from pathlib import Path

import pytest

from harness.cli.main import COMMANDS, PROGRAMS, main
from tests.clihelpers import ROOT, assert_one_sentence_error, harness, lab_pids_under


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_names_a_function_that_exists(command):
    module, function = COMMANDS[command]
    assert callable(getattr(importlib.import_module(module), function))


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_every_program_has_a_main(program):
    assert callable(importlib.import_module(PROGRAMS[program]).main)


def test_no_command_prints_the_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: harness" in capsys.readouterr().out


def test_a_lab_error_is_its_sentence_and_exit_code(tmp_path, capsys):
    """'pki --check' on an empty state directory raises BadFileError: printed, not raised."""
    assert main(["pki", "--check", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: ") and "there is no lab PKI" in err and len(err.strip().splitlines()) == 1


def test_programs_get_their_arguments_untouched(capsys):
    """'harness beam --help' is the Beam client's own help, not the harness parser's."""
    assert main(["beam", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--pins" in out and "--once" in out


def test_an_unknown_command_is_one_sentence():
    proc = harness("frobnicate")
    assert_one_sentence_error(proc, 2)
    assert "invalid choice: 'frobnicate'" in proc.stderr and "see 'harness --help'" in proc.stderr


def test_version_is_the_installed_distributions():
    proc = harness("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"harness {importlib.metadata.version('tls-inspection-lab')}\n"


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
    assert not lab_pids_under(tmp_path), "a failed lab left a process behind"


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
    assert not lab_pids_under(full_disk)
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
