"""Values people type, checked once: numbers with their ranges, host names, URLs,
``HOST:PORT``, certificate names and paths.

Each number parser is an argparse ``type=``: it returns the value or raises
:class:`argparse.ArgumentTypeError` with the sentence argparse shows, so every
command (the CLI, the reference clients, the proxy and server processes)
rejects a NaN, an infinity, a negative count or a port of 0 the same way.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import urllib.parse
from pathlib import Path


def _number(text: str, kind: type, low: float, high: float, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        value = None
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


# The ranges: wide enough for any real use, narrow enough that no value hangs a run
# (a retry count of 10**20) or breaks the machinery under it (a socket timeout of 1e300).
MAX_LANES = 64  # each lane is a listener per policy and a server: 64 x ~10 policies of file descriptors
MAX_COUNT = 100_000  # messages, heartbeats
MAX_RETRIES = 10_000
MAX_TIMEOUT = 3600.0  # one network step
MAX_DELAY = 3600.0  # back-off, intervals


def positive_int(text: str) -> int:
    """A whole number from 1 to :data:`MAX_COUNT` (counts)."""
    return _number(text, int, 1, MAX_COUNT, f"a whole number from 1 to {MAX_COUNT}")


def non_negative_int(text: str) -> int:
    """A whole number from 0 to :data:`MAX_COUNT` (messages, heartbeats)."""
    return _number(text, int, 0, MAX_COUNT, f"a whole number from 0 to {MAX_COUNT}")


def lane_count(text: str) -> int:
    """Parallel lanes, 1 to :data:`MAX_LANES`."""
    return _number(text, int, 1, MAX_LANES, f"a number of lanes from 1 to {MAX_LANES}")


def retry_count(text: str) -> int:
    """Retries, 0 to :data:`MAX_RETRIES`."""
    return _number(text, int, 0, MAX_RETRIES, f"a number of retries from 0 to {MAX_RETRIES}")


def file_descriptor(text: str) -> int:
    """An inherited file descriptor's number (``--ready-fd``)."""
    return _number(text, int, 0, 1 << 20, "a file descriptor number")


def port_number(text: str) -> int:
    """A TCP port, 1-65535."""
    return _number(text, int, 1, 65535, "a port number (1-65535)")


def listen_port(text: str) -> int:
    """A TCP port to listen on, 0-65535 (0: the kernel picks a free one)."""
    return _number(text, int, 0, 65535, "a port number (0-65535; 0 picks a free one)")


def positive_seconds(text: str) -> float:
    """A finite number of seconds above zero, at most :data:`MAX_TIMEOUT` (timeouts)."""
    what = f"a number of seconds above 0, at most {MAX_TIMEOUT:g}"
    value = _number(text, float, 0, MAX_TIMEOUT, what)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def non_negative_seconds(text: str) -> float:
    """A finite number of seconds, 0 to :data:`MAX_DELAY` (intervals, back-off)."""
    return _number(text, float, 0, MAX_DELAY, f"a number of seconds from 0 to {MAX_DELAY:g}")


# -- names and paths ---------------------------------------------------------------------------------

# X.509's upper bound for a common name and an organisation name (RFC 5280, ub-common-name).
MAX_NAME = 64


def is_ip_literal(text: str) -> bool:
    """True when ``text`` is an IPv4 or IPv6 address as written (no brackets, no port)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def certificate_name(text: str) -> str:
    """A CA's common or organisation name: printable, 1-64 bytes in UTF-8 (X.509's upper bound, as
    ``cryptography`` counts it: 17 four-byte characters are already too long)."""
    if not text.strip() or len(text.encode("utf-8", "surrogatepass")) > MAX_NAME or not text.isprintable():
        shown = repr(text) if len(text) <= 80 else repr(text[:60]) + f"... ({len(text)} characters)"
        raise argparse.ArgumentTypeError(
            f"{shown} is not a certificate name (printable, 1-{MAX_NAME} bytes in UTF-8, X.509's limit)")
    return text


def path_argument(text: str) -> Path:
    """A path a person gives: not empty and without NUL (which no path can hold)."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a path")
    return Path(text)


def host_problem(host: str) -> str | None:
    """Why ``host`` cannot be connected to or named in a certificate, or None when it can.

    An IP address, or a DNS name of at most 253 characters in labels of 1-63
    (RFC 1035) that IDNA can encode.
    """
    if not host:
        return "it is empty"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return None
    except ValueError:
        pass
    if not host.isprintable() or any(c in host for c in " /\\[]@?#%:,;'\"<>{}|^`"):
        return "it holds a character a host name cannot have"
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253:
        return f"it is {len(name)} characters long; a host name has at most 253"
    for label in name.split("."):
        if not label:
            return "it has an empty label"
        if len(label) > 63:
            return f"it has a label of {len(label)} characters; a label has at most 63"
    try:
        encoded = name.encode("idna")
    except UnicodeError:
        return "it is not a valid international host name (IDNA)"
    if len(encoded) > 253:
        return f"it is {len(encoded)} characters long once encoded; a host name has at most 253"
    return None


def parse_https_url(text: str) -> tuple[str, int]:
    """``https://HOST[:PORT][/...]`` -> (host, port); ValueError with the reason otherwise.
    The caller words the sentence for its option."""
    try:
        u = urllib.parse.urlsplit(text)
        port = 443 if u.port is None else u.port
    except ValueError as e:  # "Invalid IPv6 URL", "Port out of range 0-65535"
        raise ValueError(str(e).lower()) from None
    if u.scheme != "https":
        raise ValueError("it is not an https:// URL")
    if not u.hostname:
        raise ValueError("it names no host")
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not 1-65535")
    if problem := host_problem(u.hostname):
        raise ValueError(f"its host {u.hostname[:70]!r}{'...' if len(u.hostname) > 70 else ''}: {problem}")
    return u.hostname, port


def split_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); ValueError unless the host is
    a valid host name or address (:func:`host_problem`) and the port is 1-65535.
    The caller words the error for its option."""
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or host_problem(host):
        raise ValueError(f"{text!r} is not HOST:PORT (port 1-65535)")
    return host, int(port)


# -- listen addresses ---------------------------------------------------------------------------

def listen_address(text: str) -> str:
    """``--listen``: one IP address of this machine to put the proxy listeners on (not a wildcard:
    the lab exposes one interface the person chose, never all of them)."""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not an IP address (e.g. 192.168.1.20)") from None
    if address.is_unspecified:
        raise argparse.ArgumentTypeError(
            f"{text!r} would listen on every interface; give the one address a device reaches (e.g. 192.168.1.20)")
    if address.is_multicast:
        raise argparse.ArgumentTypeError(f"{text!r} is a multicast address; give an address of one of this machine's interfaces")
    return str(address)
