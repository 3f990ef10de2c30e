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
a traceback for these.  Anything else escaping is a bug in the lab.  An unknown
name comes with the closest known ones ("did you mean ...?"), and every command
line of the lab parses with :class:`ArgumentParser`, whose mistakes are a
UsageError pointing at the mistyped command's ``--help``.

The reference clients (:mod:`harness.clients`) fail for the remote side's
reasons, not the caller's; each failure maps to a client exit code
(:class:`harness.model.vocab.ExitCode`) and its message names what happened::

    NetworkError              – the proxy or server could not be reached, or refused the tunnel (exit 6)
    ├── StepTimeout           – one network step (an answer, a handshake, a message) took too long
    ├── ProxyLoginRequired    – the proxy answered 407: it wants a login the client lacks, or refused it
    └── ProtocolError         – the server answered something that is not the protocol we speak
    TlsVerificationError      – the chain is untrusted, expired, for another host, or weak (exit 4)
    └── TlsHandshakeAborted   – the other end closed mid-handshake (an inspection product's refusal,
                                or a restarting proxy: an agent may retry it)
"""

from __future__ import annotations

import argparse
import difflib
import re


class LabError(Exception):
    """Base class: its message is a complete sentence meant for a person."""

    exit_code = 1


class UsageError(LabError):
    """The caller asked for something invalid."""

    exit_code = 2


class UnknownNameError(UsageError):
    """A name (scenario, vendor, backend, client) that the lab does not know.

    The sentence suggests the closest known names first (a typo is the usual
    cause), then lists them all.
    """

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]):
        self.kind, self.name, self.known = kind, name, list(known)
        self.suggestions = close_names(name, self.known)
        super().__init__(f"unknown {kind} {name!r}{did_you_mean(self.suggestions)}; "
                         f"choose one of: {', '.join(sorted(self.known))}.")


def close_names(name: str, known: list[str] | tuple[str, ...], *, n: int = 3) -> list[str]:
    """The known names closest to ``name`` (a typo, another case, a missing suffix), best first."""
    by_lower = {k.lower(): k for k in known}
    return [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)]


def did_you_mean(suggestions: list[str]) -> str:
    """`` (did you mean 'a' or 'b'?)``, or nothing without suggestions."""
    if not suggestions:
        return ""
    names = [repr(s) for s in suggestions]
    return f" (did you mean {' or '.join([', '.join(names[:-1]), names[-1]] if len(names) > 1 else names)}?)"


# argparse's own words for a value outside ``choices``, to add the closest ones.
_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<name>[^']*)' \(choose from (?P<known>.*)\)")


def usage_error(prog: str, message: str, *, named: bool = True) -> UsageError:
    """An argparse complaint as one sentence that points at the command's ``--help``.

    Every parser of the lab (``harness``, its subcommands, ``harness images``, the
    reference clients) raises this from ``error()``; a mistyped choice also gets the
    closest names.  ``named=False`` leaves ``prog`` out of the front, for a caller
    that prints its own prefix (``harness: ...``).
    """
    if m := _INVALID_CHOICE.search(message):
        known = [k.strip().strip("'") for k in m["known"].split(",")]
        message = message[:m.end()] + did_you_mean(close_names(m["name"], known)) + message[m.end():]
    return UsageError(f"{prog + ': ' if named else ''}{message}; see '{prog} --help'.")


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


class ProxyLoginRequired(NetworkError):
    """The proxy answered CONNECT with 407 Proxy Authentication Required: the client has no login
    for it, or the proxy refused the one given.  Retrying does not help (and retrying a refused
    login can lock the account on a real proxy)."""


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


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes are a :class:`UsageError` (exit 2), never argparse's usage dump.

    The sentence comes from :func:`usage_error`: it points at the ``--help`` of the
    (sub)command that was mistyped, also for an unknown option after a subcommand
    (plain argparse blames the top command for that).  Subcommands are made with
    ``add_subparsers(parser_class=type(parser))``.  ``named_in_errors = False``
    leaves the program's name out, for a caller that prints ``harness: `` in front.
    """

    named_in_errors = True

    def error(self, message: str):
        raise usage_error(self.prog, message, named=self.named_in_errors)

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._chosen_subcommand(parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _chosen_subcommand(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The innermost subcommand's parser that ``parsed`` went through (else this one)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                sub = action.choices.get(getattr(parsed, action.dest, None) or "")
                if isinstance(sub, ArgumentParser):
                    return sub._chosen_subcommand(parsed)
        return self
