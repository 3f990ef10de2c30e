"""Tests for harness.lab.baseimage: the apt sources and the bootstrap command of the offline base image."""

from __future__ import annotations

from harness.lab import baseimage

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main
"""


def test_debian_sources_from_deb822_keeps_the_suite_and_its_updates():
    assert baseimage.debian_sources([("debian.sources", DEB822)]) == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main contrib",
    ]


def test_debian_sources_one_line_format_skips_other_repositories():
    text = ("deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
            "# deb http://m.example/debian bookworm-backports main\n"
            "deb https://packages.vendor.example/apt cloud-sdk-bookworm main\n"
            "deb http://m.example/debian trixie main\n")
    assert baseimage.debian_sources([("sources.list", text)]) == [
        "deb http://m.example/debian bookworm main"]


def test_disabled_deb822_stanza_is_ignored():
    text = "Enabled: no\nTypes: deb\nURIs: http://m.example/debian\nSuites: bookworm\n"
    assert baseimage.debian_sources([("x.sources", text)]) == []


def test_mmdebstrap_command_is_minbase_with_the_lab_packages(tmp_path):
    mirrors = ["deb http://m.example/debian bookworm main"]
    cmd = baseimage.bootstrap_command("mmdebstrap", tmp_path / "b.tar", mirrors)
    assert cmd[0] == "mmdebstrap" and "--variant=minbase" in cmd
    include = next(a for a in cmd if a.startswith("--include="))
    assert {"python3", "python3-venv", "iptables", "ca-certificates"} <= set(include[10:].split(","))
    assert cmd[-2:] == [str(tmp_path / "b.tar"), mirrors[0]]


def test_debootstrap_takes_the_first_mirror_uri(tmp_path):
    cmd = baseimage.bootstrap_command("debootstrap", tmp_path, ["deb http://m.example/debian bookworm main"])
    assert cmd[0] == "debootstrap" and cmd[-1] == "http://m.example/debian"
