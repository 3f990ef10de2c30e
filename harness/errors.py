"""Every error the lab reports to a person, and every failure a reference client reports.

::

    LabError                  – one clear sentence: what is wrong and what to do
    ├── UsageError            – the caller gave bad input (exit 2)
    │   ├── UnknownNameError  – an unknown scenario, vendor, lab backend ...
    │   ├── BadFileError      – a missing, unreadable or corrupt PEM / pins / scenario file
    │   └── PatternTimeout    – a client definition's warning regex ran past its time limit
    ├── EnvironmentProblem    – the machine is not as needed (port in use, no Docker,
    │                           unwritable state directory)
    └── LabStartError         – a lab component did not come up in time

The CLI prints ``str(error)`` and exits with ``error.exit_code``; it never shows
a traceback for these.  Anything else escaping is a bug in the lab.

The reference clients (:mod:`harness.clients`) fail for the remote side's
reasons, not the caller's; each failure maps to a client exit code
(:class:`harness.model.vocab.ExitCode`) and its message names what happened::

    NetworkError              – the proxy or server could not be reached, or refused the tunnel (exit 6)
    ├── StepTimeout           – one network step (an answer, a handshake, a message) took too long
    └── ProtocolError         – the server answered something that is not the protocol we speak
    TlsVerificationError      – the chain is untrusted, expired, for another host, or weak (exit 4)
    └── TlsHandshakeAborted   – the other end closed mid-handshake (an inspection product's refusal,
                                or a restarting proxy: an agent may retry it)
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


class PatternTimeout(UsageError):
    """A user-supplied regular expression took longer than allowed (catastrophic backtracking)."""


class EnvironmentProblem(LabError):
    """The machine lacks something the lab needs (a free port, Docker, a writable directory)."""

    exit_code = 1


class LabStartError(LabError):
    """A lab component failed to start or to become ready in time."""

    exit_code = 1


# -- what a reference client meets on the wire ---------------------------------------------


class NetworkError(Exception):
    """The proxy or server could not be reached, or the proxy refused the tunnel."""


class StepTimeout(NetworkError):
    """A network step (an answer, a handshake, a message) took longer than the client's timeout."""


class ProtocolError(NetworkError):
    """The server answered something that is not the protocol we speak."""


class TlsVerificationError(Exception):
    """The presented chain is not trusted, expired, for another host, or too weak."""

    def __init__(self, reason: str, *, issuer_cn: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.issuer_cn = issuer_cn
        self.host: str | None = None


class TlsHandshakeAborted(TlsVerificationError):
    """The other end closed the connection in the middle of the TLS handshake.

    A TLS failure (an inspection product that refuses the handshake does just
    that), but also what a proxy restart looks like, so a long-running agent
    may retry it before giving up; nothing was verified or sent.
    """
