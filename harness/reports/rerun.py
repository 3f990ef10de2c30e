"""The shell line that runs one cell's client again, exactly as the harness ran it.

A failing cell is easiest to investigate by running its client by hand: the
same argv, the environment the harness added (``HTTPS_PROXY=...`` for a client
that reads its proxy from there), the same standard input (a pinned-warn
client's answer, else none: the client saw no terminal), and on the compose lab
the ``docker exec`` that put it on its machine.  The line is built from a
report's document cell (:func:`harness.reports.cells.cell_document`), so a
credential in the arguments or the environment is already redacted unless
the report shows secrets.
"""

from __future__ import annotations

import re
import shlex

# A name the shell takes in "NAME=value command"; anything else goes through env(1).
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def rerun_command(cell: dict) -> str:
    """``cell``'s client as one shell line (every word quoted), or "" when the cell has no command."""
    argv = list(cell.get("command") or [])
    if not argv:
        return ""
    env = dict(cell.get("env") or {})
    prefix = list(cell.get("exec_prefix") or [])
    assignments = [f"{k}={v}" for k, v in env.items()]
    if prefix:  # the environment must reach the other machine: docker exec C env K=V cmd
        line = shlex.join([*prefix, *(["env", *assignments] if env else []), *argv])
    elif all(_SHELL_NAME.match(k) for k in env):
        line = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.join(argv)])
    else:
        line = shlex.join(["env", *assignments, *argv])
    stdin = cell.get("stdin")
    if stdin:
        return f"printf {shlex.quote(_printf_format(stdin))} | {line}"
    return f"{line} < /dev/null"


def _printf_format(text: str) -> str:
    """``text`` as a printf(1) format that prints it back: backslashes, percents and newlines escaped."""
    return text.replace("\\", "\\\\").replace("%", "%%").replace("\n", "\\n").replace("\t", "\\t")
