"""Tests for harness.lab.composeenv: project, image and subnets from the environment, checked."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.lab import images
from harness.lab.composeenv import (
    SUBNET_VARIABLES,
    compose_environment,
    compose_subnets,
    image_tag,
    project_name,
)
from harness.pki.constraints import COMPOSE_BLOCK, COMPOSE_SUBNETS, LAB_NETWORKS

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_historic_ones():
    assert project_name({}) == "tlslab"
    assert image_tag({}) == "tls-lab:latest" == images.IMAGE_TAG
    assert compose_subnets({}) == COMPOSE_SUBNETS
    assert compose_environment({}) == {"LAB_IMAGE": "tls-lab:latest", "LAB_SUBNET_CORP": "198.19.1.0/24",
                                       "LAB_SUBNET_INTERNET": "198.19.2.0/24", "LAB_SUBNET_CORP_GW": "198.19.3.0/24"}


def test_a_second_project_moves_everything():
    env = {"LAB_COMPOSE_PROJECT": "tlssdk", "LAB_IMAGE": "tls-lab:sdk", "LAB_SUBNET_CORP": "198.19.11.0/24",
           "LAB_SUBNET_INTERNET": "198.19.12.0/24", "LAB_SUBNET_CORP_GW": "198.19.13.0/24"}
    assert project_name(env) == "tlssdk"
    assert compose_environment(env) == {k: v for k, v in env.items() if k != "LAB_COMPOSE_PROJECT"}
    # Every subnet it may pick is one the lab CAs permit.
    for subnet in compose_subnets(env).values():
        assert any(ipaddress.ip_network(subnet).subnet_of(n) for n in LAB_NETWORKS if n.version == 4)


@pytest.mark.parametrize("value", ["198.19.16.0/24", "10.0.0.0/24", "198.19.0.0/16", "198.19.1.0/25", "nonsense",
                                   "fd00::/64", "198.18.1.0/24"])
def test_subnets_outside_the_permitted_block_are_refused(value):
    with pytest.raises(UsageError, match=rf"LAB_SUBNET_CORP='{re.escape(value)}' is not a /24 inside "
                                         rf"{re.escape(COMPOSE_BLOCK)}"):
        compose_subnets({"LAB_SUBNET_CORP": value})


def test_two_networks_on_one_subnet_are_refused():
    with pytest.raises(UsageError, match="three different /24s"):
        compose_subnets({"LAB_SUBNET_CORP": "198.19.2.0/24"})  # the internet network's default


@pytest.mark.parametrize("name", ["TLSLAB", "my lab", "-x", "a/b"])
def test_bad_project_names_are_refused(name):
    with pytest.raises(UsageError, match="LAB_COMPOSE_PROJECT"):
        project_name({"LAB_COMPOSE_PROJECT": name})


def test_compose_yaml_reads_the_same_variables():
    text = (ROOT / "compose.yaml").read_text()
    networks = text[text.index("\nnetworks:\n"):]
    found = dict(re.findall(r"^  ([\w-]+):\n(?:    .*\n)*?        - subnet: \$\{(LAB_SUBNET_[A-Z_]+):-", networks, re.M))
    assert found == SUBNET_VARIABLES
    assert "image: ${LAB_IMAGE:-tls-lab:latest}" in text


def test_the_image_build_uses_lab_image(monkeypatch):
    """``harness images build`` without --tag builds the image compose.yaml will run."""
    commands = []
    monkeypatch.setenv("LAB_IMAGE", "tls-lab:elsewhere")
    monkeypatch.setattr(images, "require_docker", lambda: None)
    monkeypatch.setattr(images, "_base_available", lambda image, progress: True)
    monkeypatch.setattr(images, "buildx_available", lambda: False)
    monkeypatch.setattr(images, "stream", lambda cmd, *a, **kw: commands.append(cmd))
    assert images.main(["build"]) == 0
    assert images.main(["build", "--tag", "t:given"]) == 0
    assert [c[c.index("--tag") + 1] for c in commands] == ["tls-lab:elsewhere", "t:given"]


def test_harness_up_refuses_a_bad_subnet_in_one_sentence_before_anything_starts(tmp_path):
    env = {**os.environ, "LAB_SUBNET_CORP": "10.0.0.0/24", "LAB_COMPOSE_PROJECT": "tlsnever"}
    out = subprocess.run([sys.executable, "-m", "harness", "up", "--lab", "compose", "--state-dir", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 2, out.stderr
    assert "LAB_SUBNET_CORP='10.0.0.0/24' is not a /24 inside 198.19.0.0/20" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "lab.json").exists()
