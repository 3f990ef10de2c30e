"""Every error the lab reports to a person.

::

    LabError                  – one clear sentence: what is wrong and what to do
    ├── UsageError            – the caller gave bad input (exit 2)
    │   ├── UnknownNameError  – an unknown scenario, vendor, lab backend ...
    │   └── BadFileError      – a missing, unreadable or corrupt PEM / pins / scenario file
    ├── EnvironmentProblem    – the machine is not as needed (port in use, no Docker,
    │                           unwritable state directory)
    └── LabStartError         – a lab component did not come up in time

The CLI prints ``str(error)`` and exits with ``error.exit_code``; it never shows
a traceback for these.  Anything else escaping is a bug in the lab.
"""

from __future__ import annotations


class LabError(Exception):
    """Base class: its message is a complete sentence meant for a person."""

    exit_code = 1


class UsageError(LabError):
    """The caller asked for something invalid."""

    exit_code = 2


class UnknownNameError(UsageError):
    """A name (scenario, vendor, backend, client) that the lab does not know."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]):
        self.kind, self.name, self.known = kind, name, list(known)
        super().__init__(
            f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(self.known))}."
        )


class BadFileError(UsageError):
    """A file the lab needs is missing, unreadable or malformed."""


class EnvironmentProblem(LabError):
    """The machine lacks something the lab needs (a free port, Docker, a writable directory)."""

    exit_code = 1


class LabStartError(LabError):
    """A lab component failed to start or to become ready in time."""

    exit_code = 1
