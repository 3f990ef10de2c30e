"""harness.matrix.execute: reference clients' arguments, running foreign clients, reading --json events."""

from __future__ import annotations

import os
import sys
import time

import pytest

from harness.lab.info import Endpoint, LabInfo
from harness.matrix.execute import OUTPUT_LIMIT, REFERENCE_CLIENTS, parse_events, run_foreign
from harness.model.scenarios import Scenario

LAB = LabInfo(backend="local", state_dir="/s", lanes=1, proxies={"inspect": ["http://127.0.0.1:9001"]},
              server_connect=["127.0.0.1:9100"], proxy_admin="", server_admin="", org_issuer_cn="Acme CA",
              pki={"pins_file": "/s/pins.txt", "trust_public": "/s/public.pem", "trust_public_org": "/s/org.pem"})


def test_parse_events_keeps_json_lines_only():
    output = 'starting\n{"event": "tls", "issuer": "X"}\n  {"event": "done"}  \n{not json\nERROR: x\n'
    assert parse_events(output) == [{"event": "tls", "issuer": "X"}, {"event": "done"}]
    assert parse_events("") == []


def test_beam_through_a_proxy():
    s = Scenario(name="s", network="proxy", expect={"beam": "refused"}, policy="inspect", trust="public")
    argv = REFERENCE_CLIENTS["beam"].argv(s, LAB, Endpoint(proxy_url="http://127.0.0.1:9001"), "tok-1")
    assert argv[argv.index("--proxy") + 1] == "http://127.0.0.1:9001" and "--no-proxy" not in argv
    assert argv[argv.index("--trust") + 1] == "/s/public.pem" and argv[argv.index("--pins") + 1] == "/s/pins.txt"
    assert argv[-3:] == ["--once", "--token", "tok-1"]
    assert argv[argv.index("--url") + 1] == "https://beam.screenmeet.com"


def test_attended_direct_connects_to_the_endpoint():
    s = Scenario(name="s", network="direct", expect={"attended": "connected"}, trust="public+org",
                 attended_on_warning="continue")
    argv = REFERENCE_CLIENTS["attended"].argv(s, LAB, Endpoint(connect_to="127.0.0.1:9100"), "code-1")
    assert "--proxy" not in argv and argv[argv.index("--connect-to") + 1] == "127.0.0.1:9100"
    assert argv[argv.index("--trust") + 1] == "/s/org.pem"
    assert argv[-4:] == ["--on-warning", "continue", "--code", "code-1"]


def test_run_foreign_exit_output_env_and_stdin():
    code, out = run_foreign([sys.executable, "-c", "import os,sys; print(os.environ['X'], sys.stdin.read()); "
                             "sys.exit(3)"], {"X": "42"}, "hello", 30)
    assert code == 3 and out.strip() == "42 hello"


def test_run_foreign_missing_program_is_127_with_a_sentence():
    code, out = run_foreign(["/nonexistent/client"], {}, None, 5)
    assert code == 127
    assert out == "[harness] cannot run '/nonexistent/client': no such program; install it or fix 'command'.\n"


def test_run_foreign_timeout_is_124_with_a_sentence():
    code, out = run_foreign([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(30)"],
                            {}, None, 1)
    assert code == 124 and "the client did not finish within 1s; its process group was killed." in out


def session_members(sid: int) -> list[int]:
    """Live processes (not zombies) whose session id is ``sid``: field 6 of /proc/PID/stat."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[3]) == sid and fields[0] != b"Z":
                members.append(int(entry))
    return members


def survivors(sid: int, grace: float = 5.0) -> list[int]:
    """The session's members still alive after ``grace`` (SIGKILL takes a moment to land)."""
    deadline = time.monotonic() + grace
    while (members := session_members(sid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


def gone(pid: int, grace: float = 5.0) -> bool:
    """True once ``pid`` is dead (a zombie counts as dead)."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_a_grandchild_dies_with_the_client_at_its_timeout():
    """sh starts 'sleep 77' in the background and waits on 'sleep 100': at the timeout both die."""
    start = time.monotonic()
    code, output = run_foreign(["sh", "-c", "sleep 77 & echo $$ $!; sleep 100"], {}, None, 1.0)
    assert code == 124 and time.monotonic() - start < 30
    assert "did not finish within 1s; its process group was killed" in output
    sh, sleeper = (int(x) for x in output.split()[:2])
    assert gone(sleeper), "the background 'sleep 77' survived the client's timeout"
    assert survivors(sh) == [], "a process of the client's session survived its timeout"


def test_a_background_child_dies_when_the_client_exits():
    """A client that exits 0 leaving 'sleep 77 &' behind: its exit code stands, the child is gone,
    and the harness did not wait for the child's end of the output pipe."""
    start = time.monotonic()
    code, output = run_foreign(["sh", "-c", "sleep 77 & echo $$ $!"], {}, None, 30.0)
    assert code == 0 and time.monotonic() - start < 20  # not 77 s
    sh, sleeper = (int(x) for x in output.split())
    assert gone(sleeper) and survivors(sh) == []


def test_the_client_runs_in_a_session_of_its_own():
    code, output = run_foreign([sys.executable, "-c", "import os; print(os.getpid(), os.getsid(0), os.getpgrp())"],
                               {}, None, 30.0)
    pid, sid, pgrp = (int(x) for x in output.split())
    assert code == 0 and pid == sid == pgrp != os.getsid(0)


def test_output_beyond_the_limit_is_cut_with_a_note():
    code, output = run_foreign([sys.executable, "-c", "import sys; sys.stdout.write('a' * 3_000_000)"], {}, None, 30.0)
    assert code == 0
    assert output[:OUTPUT_LIMIT] == "a" * OUTPUT_LIMIT and output[OUTPUT_LIMIT:OUTPUT_LIMIT + 11] == "\n[harness] "
    assert output.endswith(f"[harness] output cut: {3_000_000 - OUTPUT_LIMIT} bytes not kept "
                           f"(the first {OUTPUT_LIMIT} are above).\n")


def test_endless_output_is_cut_and_the_client_stopped():
    code, output = run_foreign(["sh", "-c", "yes"], {}, None, 1.0)
    assert code == 124 and len(output) < OUTPUT_LIMIT + 500
    assert "[harness] output cut: " in output and "its process group was killed" in output


@pytest.mark.parametrize("data,shown", [(b"\xff\xfeok\n", "\ufffd\ufffdok\n"), (b"\x00nul\n", "\x00nul\n")])
def test_any_bytes_are_output(data, shown):
    code, output = run_foreign([sys.executable, "-c", f"import sys; sys.stdout.buffer.write({data!r})"], {}, None, 30.0)
    assert code == 0 and output == shown


def test_stdin_is_given_and_a_client_that_never_reads_it_does_not_hang():
    assert run_foreign(["cat"], {}, "y\n", 30.0) == (0, "y\n")
    start = time.monotonic()
    assert run_foreign(["sh", "-c", "exit 3"], {}, "x" * 5_000_000, 30.0) == (3, "")
    assert time.monotonic() - start < 10


def test_stderr_is_kept_with_stdout():
    code, output = run_foreign(["sh", "-c", "echo out; echo err >&2; exit 5"], {"X": "1"}, None, 30.0)
    assert code == 5 and output == "out\nerr\n"


def test_missing_and_unexecutable_programs(tmp_path):
    assert run_foreign(["/nonexistent/client"], {}, None, 5)[0] == 127
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert run_foreign([str(script)], {}, None, 5)[0] == 126
