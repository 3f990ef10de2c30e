"""harness.model.files: a file a person names is a regular file of bounded size, or one sentence.

Every case runs under a short alarm: before read_bounded, a FIFO hung the reader and
/dev/zero filled memory.
"""

from __future__ import annotations

import os
import signal
import socket

import pytest

from harness.errors import BadFileError
from harness.model.datafile import read_toml
from harness.model.files import read_bounded, read_text_bounded
from harness.model.pins import load_pins
from harness.pki.ca import load_certificates, load_private_key
from harness.proxy.config import ProxyConfig


@pytest.fixture(autouse=True)
def no_hang():
    """Fail (instead of hanging the suite) if a read blocks."""
    def hung(*_):
        raise AssertionError("the read blocked")
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def one_sentence(call, *needles) -> str:
    with pytest.raises(BadFileError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and message.endswith(".") and info.value.__cause__ is None, message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path):
    path = tmp_path / "sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    yield path
    s.close()


def test_a_regular_file_is_read_whole(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, "pins file", 100, hint="h") == b"x" * 100
    assert read_text_bounded(path, "pins file", 100, hint="h") == "x" * 100


@pytest.mark.parametrize("kind,says", [
    ("fifo", "is a FIFO (named pipe), not a regular file"),
    ("socket", "is a socket, not a regular file"),
    ("/dev/zero", "is a character device, not a regular file"),
    ("/dev/null", "is a character device, not a regular file"),
    ("directory", "is a directory, not a regular file"),
    ("missing", "does not exist"),
])
def test_what_is_not_a_regular_file_is_refused_before_reading(kind, says, fifo, unix_socket, tmp_path):
    path = {"fifo": fifo, "socket": unix_socket, "directory": tmp_path, "missing": tmp_path / "absent"}.get(kind, kind)
    message = one_sentence(lambda: read_bounded(path, "pins file", 1000, hint="pass a pins file"), says)
    assert message == f"pins file {path} {says}; pass a pins file."


def test_a_file_over_the_limit_is_refused_with_both_sizes(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * (2 * 1024 * 1024))
    one_sentence(lambda: read_bounded(path, "pins file", 64 * 1024, hint="h"), "is 2.0 MiB, more than the 64 KiB")


def test_a_file_that_grows_is_read_no_further_than_the_limit():
    # /proc files say size 0 and then give more: the read stops at the limit.
    one_sentence(lambda: read_bounded("/proc/self/status", "x", 10, hint="h"), "grew past the 10 bytes")


@pytest.mark.parametrize("path,says", [
    ("/tmp/a\0b", "'/tmp/a\\x00b' is not a valid path (it holds a NUL byte)"),
    ("/tmp/a\nb/c", "'/tmp/a\\nb/c' does not exist"),  # a newline in the path stays on one line
    ("/" + "x/" * 3000, "cannot be read (File name too long)"),
])
def test_strange_paths_are_one_line(path, says):
    message = one_sentence(lambda: read_bounded(path, "pins file", 10, hint="h"), says)
    assert len(message) < 400


@pytest.mark.parametrize("content,says", [
    (b"\xff\xfe", "is not UTF-8 text (byte 0xff at offset 0); fix it."),
    (b"ok\x00", "holds a NUL byte (at offset 2), so it is not a text file; fix it."),
    (b"\xc3", "is not UTF-8 text (byte 0xc3 at offset 0)"),
])
def test_text_must_be_utf8_without_nul(tmp_path, content, says):
    path = tmp_path / "t"
    path.write_bytes(content)
    one_sentence(lambda: read_text_bounded(path, "x", 100, hint="pass one", fix="fix it"), says)


# -- every reader of a user-supplied file uses it ---------------------------------------------------------

READERS = {
    "read_toml": lambda p: read_toml(p, missing_hint="pass one"),
    "load_pins": load_pins,
    "load_certificates": load_certificates,
    "load_private_key": load_private_key,
    "ProxyConfig.load": ProxyConfig.load,
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "directory"])
def test_every_reader_refuses_what_is_not_a_regular_file(reader, kind, fifo, tmp_path):
    path = {"fifo": fifo, "directory": tmp_path}.get(kind, kind)
    one_sentence(lambda: READERS[reader](path), str(path), "not a regular file")


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_refuses_a_huge_file(reader, tmp_path):
    path = tmp_path / "huge"
    with open(path, "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of NULs on no disk
    one_sentence(lambda: READERS[reader](path), str(path), "MiB, more than the")
