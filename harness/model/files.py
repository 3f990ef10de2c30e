"""Reading a file a person names: a regular file of bounded size, or one sentence.

Every reader of a user-supplied file (TOML data files, pins files, certificates
and keys, the proxy's and server's JSON configuration) goes through
:func:`read_bounded`, so a FIFO, a device (``/dev/zero``), a directory or a
huge file is refused before anything is read, instead of hanging on a FIFO's
``open`` or filling memory from ``/dev/zero``::

    data = read_bounded(path, "pins file", PINS_LIMIT, hint="pass --pins with a pins file")
    text = read_text_bounded(path, "client definitions file", TOML_LIMIT, hint="...")

The limits are far above what a real file holds (a pins file is a few lines,
the system's CA bundle ~250 KB) and far below what would hurt.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from harness.errors import BadFileError

KIB, MIB = 1024, 1024 * 1024
# What each kind of file may weigh at most.
TOML_LIMIT = 1 * MIB  # scenarios, policies, vendors, client definitions
PINS_LIMIT = 64 * KIB
PEM_LIMIT = 4 * MIB  # a trust bundle may be a whole system store
JSON_LIMIT = 4 * MIB  # the lab's own configuration files

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _shown(path: str | os.PathLike, what: str) -> str:
    """``what`` and the path as a sentence shows them: quoted when the path holds
    characters that would break the line (a newline, a NUL)."""
    text = str(path)
    text = text if text.isprintable() else repr(text)
    if len(text) > 200:  # a sentence, not a wall: the start and the file's name are what a person needs
        text = f"{text[:120]}...{text[-60:]}"
    return f"{what} {text}" if what else text


def _size(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if n >= MIB else f"{n / KIB:.0f} KiB" if n >= KIB else f"{n} bytes"


def read_bounded(path: str | os.PathLike, what: str, limit: int, *, hint: str) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``limit`` bytes.

    Anything else raises :class:`BadFileError`: ``"{what} {path} ...; {hint}."`` (``what``
    may be empty: the sentence then starts with the path).
    The file is opened non-blocking, so a FIFO with no writer cannot hang the
    open; its type is checked on the open descriptor (no race with a swap).
    """
    p = Path(path)
    name = _shown(p, what)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise BadFileError(f"{name} does not exist; {hint}.") from None
    except ValueError:  # an embedded NUL: no such path can exist
        raise BadFileError(f"{name} is not a valid path (it holds a NUL byte); {hint}.") from None
    except OSError as e:
        # A socket cannot be opened at all (ENXIO): say what it is rather than the errno.
        _refuse_irregular(name, _stat_or_none(p), hint)
        raise BadFileError(f"{name} cannot be read ({e.strerror or e}); {hint}.") from None
    try:
        _refuse_irregular(name, os.fstat(fd), hint)
        st = os.fstat(fd)
        if st.st_size > limit:
            raise BadFileError(f"{name} is {_size(st.st_size)}, more than the {_size(limit)} such a file "
                               f"may be; {hint}.")
        # A regular file may still grow while we read: never read more than the limit.
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(limit + 1 - total, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise BadFileError(f"{name} grew past the {_size(limit)} such a file may be; {hint}.")
        return b"".join(chunks)
    except OSError as e:
        raise BadFileError(f"{name} cannot be read ({e.strerror or e}); {hint}.") from None
    finally:
        os.close(fd)


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except (OSError, ValueError):
        return None


def _refuse_irregular(name: str, st: os.stat_result | None, hint: str) -> None:
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = next((label for test, label in _KINDS if test(st.st_mode)), "a special file")
        raise BadFileError(f"{name} is {kind}, not a regular file; {hint}.")


def read_text_bounded(path: str | os.PathLike, what: str, limit: int, *, hint: str, fix: str | None = None) -> str:
    """:func:`read_bounded`, decoded as UTF-8 text without NUL bytes; else one sentence
    ending with ``fix`` (default ``hint``)."""
    data = read_bounded(path, what, limit, hint=hint)
    hint = fix or hint
    name = _shown(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadFileError(f"{name} is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); "
                           f"{hint}.") from None
    if "\0" in text:
        raise BadFileError(f"{name} holds a NUL byte (at offset {text.index(chr(0))}), "
                           f"so it is not a text file; {hint}.")
    return text
