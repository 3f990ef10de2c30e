"""The ``harness`` command line.

::

    harness up [--detach]        start the lab (local processes by default) and say where everything is
    harness down                 stop it, leaving no process behind
    harness run                  start a lab, run the scenario matrix, print the table, exit 1 on a mismatch
    harness probe HOST           connect as the clients do and say whether (and how) TLS is inspected
    harness audit --proxy URL    grade someone else's inspection proxy against the lab's hostile sites
    harness pki                  generate a lab PKI into the state directory
    harness images build         build the lab image (offline Debian base + wheelhouse if no registry answers)
    harness attended | beam ...  the reference clients

Every :class:`harness.errors.LabError` is printed as its one sentence with its
exit code, and so is an :class:`OSError` (a full disk: exit 1); there is no
traceback for bad input.  A detached ``up`` runs this same ``main`` in its own
process with ``--ready-fd``: its error goes to that descriptor as well, so the
launcher prints the same sentence and exits with the same code.

Each command's module is imported when that command runs, deliberately: a
reference client (``harness beam``) starts without loading the lab's
machinery, and ``harness run`` starts its proxy before the heavier imports.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import sys
from pathlib import Path

from harness.cli.parser import build_parser
from harness.errors import LabError
from harness.lab.statedir import default_state_dir

# command -> (module, function); imported on use (see the module docstring).
COMMANDS = {
    "up": ("harness.cli.up", "cmd_up"),
    "down": ("harness.cli.up", "cmd_down"),
    "run": ("harness.cli.run", "cmd_run"),
    "pki": ("harness.cli.pki", "cmd_pki"),
    "probe": ("harness.cli.probe", "cmd_probe"),
    "evidence": ("harness.cli.evidence", "cmd_evidence"),
    "audit": ("harness.cli.audit", "cmd_audit"),
}
# Commands with their own argument parsers: argv goes to their main() untouched.
PROGRAMS = {"images": "harness.lab.images", "attended": "harness.clients.attended", "beam": "harness.clients.beam"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PROGRAMS:
        return importlib.import_module(PROGRAMS[argv[0]]).main(argv[1:])
    args = None
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            build_parser().print_help()
            return 2
        module, function = COMMANDS[args.command]
        return getattr(importlib.import_module(module), function)(args)
    except LabError as e:
        return _fail(str(e), e.exit_code, args)
    except OSError as e:
        # The machine, not the lab: a full disk, a directory that vanished, a read-only file system.
        return _fail(os_problem(e, getattr(args, "state_dir", None)), 1, args)
    except KeyboardInterrupt:
        return 130


def os_problem(e: OSError, state_dir: Path | None = None) -> str:
    """An :class:`OSError` that reached the command line, as one sentence naming the path: the
    error's own, else the state directory the command writes to (a write that fills the disk
    has no file name in its error)."""
    where = f"on {e.filename}" if e.filename else f"under {state_dir or default_state_dir()}"
    why = _OS_REASONS.get(e.errno, e.strerror or str(e))
    return f"a file operation {where} failed ({why}); free space or choose another --state-dir."


_OS_REASONS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is used up",
               errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"}


def _fail(sentence: str, exit_code: int, args) -> int:
    """Print the error once, ``harness: SENTENCE`` (argparse's own sentences already name the
    program), and tell a launcher waiting on ``--ready-fd`` (``up --detach``) the same."""
    line = sentence if sentence.startswith("harness") else f"harness: {sentence}"
    # The descriptor first: a detached child's stderr is a log file, which a full disk cannot take.
    fd = getattr(args, "ready_fd", None)
    if fd is not None:
        try:
            os.write(fd, (json.dumps({"error": line.removeprefix("harness: "), "exit_code": exit_code}) + "\n").encode())
            os.close(fd)
        except OSError:
            pass  # already closed: the lab had announced itself ready before failing
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass  # nowhere left to say it (stderr on a full disk, a closed pipe): the exit code still does
    return exit_code
