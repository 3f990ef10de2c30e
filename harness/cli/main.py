"""The ``harness`` command line.

::

    harness up [--detach]        start the lab (local processes by default) and say where everything is
    harness down                 stop it, leaving no process behind
    harness run                  start a lab, run the scenario matrix, print the table, exit 1 on a mismatch
    harness probe HOST           connect as the clients do and say whether (and how) TLS is inspected
    harness pki                  generate a lab PKI into the state directory
    harness images build         build the lab image (offline Debian base + wheelhouse if no registry answers)
    harness attended | beam ...  the reference clients

Every :class:`harness.errors.LabError` is printed as its one sentence with its
exit code; there is no traceback for bad input.

Each command's module is imported when that command runs, deliberately: a
reference client (``harness beam``) starts without loading the lab's
machinery, and ``harness run`` starts its proxy before the heavier imports.
"""

from __future__ import annotations

import importlib
import sys

from harness.cli.parser import build_parser
from harness.errors import LabError

# command -> (module, function); imported on use (see the module docstring).
COMMANDS = {
    "up": ("harness.cli.up", "cmd_up"),
    "down": ("harness.cli.up", "cmd_down"),
    "run": ("harness.cli.run", "cmd_run"),
    "pki": ("harness.cli.pki", "cmd_pki"),
    "probe": ("harness.cli.probe", "cmd_probe"),
}
# Commands with their own argument parsers: argv goes to their main() untouched.
PROGRAMS = {"images": "harness.lab.images", "attended": "harness.clients.attended", "beam": "harness.clients.beam"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PROGRAMS:
        return importlib.import_module(PROGRAMS[argv[0]]).main(argv[1:])
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            build_parser().print_help()
            return 2
        module, function = COMMANDS[args.command]
        return getattr(importlib.import_module(module), function)(args)
    except LabError as e:
        print(f"harness: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
