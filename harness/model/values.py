"""Values people type, checked once: numbers with their ranges and ``HOST:PORT``.

Each number parser is an argparse ``type=``: it returns the value or raises
:class:`argparse.ArgumentTypeError` with the sentence argparse shows, so every
command (the CLI, the reference clients, the proxy and server processes)
rejects a NaN, an infinity, a negative count or a port of 0 the same way.
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type, low: float, high: float, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        value = None
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1 (lanes, counts)."""
    return _number(text, int, 1, math.inf, "a whole number of at least 1")


def non_negative_int(text: str) -> int:
    """A whole number, 0 or more (retries, messages)."""
    return _number(text, int, 0, math.inf, "a whole number of 0 or more")


def port_number(text: str) -> int:
    """A TCP port, 1-65535."""
    return _number(text, int, 1, 65535, "a port number (1-65535)")


def listen_port(text: str) -> int:
    """A TCP port to listen on, 0-65535 (0: the kernel picks a free one)."""
    return _number(text, int, 0, 65535, "a port number (0-65535; 0 picks a free one)")


def positive_seconds(text: str) -> float:
    """A finite number of seconds above zero (timeouts)."""
    value = _number(text, float, 0, math.inf, "a number of seconds above 0")
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def non_negative_seconds(text: str) -> float:
    """A finite number of seconds, 0 or more (intervals, back-off)."""
    return _number(text, float, 0, math.inf, "a number of seconds, 0 or more")


def split_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); ValueError unless the host is
    non-empty and the port is 1-65535.  The caller words the error for its option."""
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (port 1-65535)")
    return host, int(port)
