"""harness.lab.statedir: reading the lab's own small files back without hanging or flooding."""

from __future__ import annotations

import os
import time

import pytest

from harness.lab.statedir import read_state_file


def test_a_small_regular_file_is_read(tmp_path):
    (tmp_path / "lab.json").write_bytes(b'{"a": 1}')
    assert read_state_file(tmp_path / "lab.json") == b'{"a": 1}'
    assert read_state_file(tmp_path / "lab.json", limit=8) == b'{"a": 1}'


def make_fifo(p):
    os.mkfifo(p)


def make_zero_link(p):
    p.symlink_to("/dev/zero")


def make_dir(p):
    p.mkdir()


def make_big(p):
    with open(p, "wb") as f:
        f.truncate(2 << 20)


@pytest.mark.parametrize("make,reason", [
    (make_fifo, "not a regular file"),          # would block open() or read() for ever
    (make_zero_link, "a symbolic link"),        # would read without end
    (make_dir, "a directory"),
    (make_big, "larger than"),
])
def test_anything_else_is_an_os_error_at_once(tmp_path, make, reason):
    path = tmp_path / "lab.json"
    make(path)
    start = time.monotonic()
    with pytest.raises(OSError, match=reason):
        read_state_file(path)
    assert time.monotonic() - start < 1


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_state_file(tmp_path / "nope")
