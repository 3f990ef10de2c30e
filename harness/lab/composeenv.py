"""What the compose lab takes from the environment, checked: project, image tag, subnets.

Two compose labs can share one Docker engine when they differ in all three:

* ``LAB_COMPOSE_PROJECT`` – the compose project name (default ``tlslab``);
* ``LAB_IMAGE`` – the image ``compose.yaml`` runs and ``harness images build``
  builds (default ``tls-lab:latest``);
* ``LAB_SUBNET_CORP``, ``LAB_SUBNET_INTERNET``, ``LAB_SUBNET_CORP_GW`` – the
  networks' /24s (defaults :data:`harness.pki.constraints.COMPOSE_SUBNETS`),
  each inside :data:`~harness.pki.constraints.COMPOSE_BLOCK`, the only such
  addresses the lab CAs' name constraints permit.

A bad value is a :class:`~harness.errors.UsageError` (exit 2) naming the
variable and what to set instead.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping

from harness.errors import UsageError
from harness.pki.constraints import COMPOSE_BLOCK, COMPOSE_SUBNETS

DEFAULT_PROJECT = "tlslab"
DEFAULT_IMAGE = "tls-lab:latest"
SUBNET_VARIABLES = {"corp": "LAB_SUBNET_CORP", "internet": "LAB_SUBNET_INTERNET", "corp-gw": "LAB_SUBNET_CORP_GW"}

# Compose's own rule for project names (v2 enforces it; v1 silently rewrites other names).
_PROJECT = re.compile(r"[a-z0-9][a-z0-9_-]*")


def project_name(environ: Mapping[str, str] = os.environ) -> str:
    """The compose project name: ``$LAB_COMPOSE_PROJECT`` or ``tlslab``."""
    name = environ.get("LAB_COMPOSE_PROJECT") or DEFAULT_PROJECT
    if not _PROJECT.fullmatch(name):
        raise UsageError(f"LAB_COMPOSE_PROJECT={name!r} is not a compose project name; use lower-case letters, "
                         "digits, '-' and '_' (such as tlslab2).")
    return name


def image_tag(environ: Mapping[str, str] = os.environ) -> str:
    """The lab image: ``$LAB_IMAGE`` or ``tls-lab:latest`` (compose.yaml reads the same variable)."""
    return environ.get("LAB_IMAGE") or DEFAULT_IMAGE


def compose_subnets(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The networks' subnets by network name, from ``LAB_SUBNET_*`` or the defaults, checked."""
    block = ipaddress.ip_network(COMPOSE_BLOCK)
    subnets: dict[str, str] = {}
    for network, variable in SUBNET_VARIABLES.items():
        value = environ.get(variable) or COMPOSE_SUBNETS[network]
        try:
            net = ipaddress.ip_network(value)
        except ValueError:
            net = None
        if net is None or net.version != 4 or net.prefixlen != 24 or not net.subnet_of(block):
            raise UsageError(f"{variable}={value!r} is not a /24 inside {COMPOSE_BLOCK}, the only compose addresses "
                             f"the lab CAs permit; use one such as 198.19.11.0/24.")
        if str(net) in subnets.values():
            raise UsageError(f"{variable}={value!r} is the subnet of another compose network too; give "
                             f"{', '.join(SUBNET_VARIABLES.values())} three different /24s.")
        subnets[network] = str(net)
    return subnets


def compose_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The checked variables for a compose command: image and subnets (the project goes by ``-p``)."""
    return {"LAB_IMAGE": image_tag(environ),
            **{SUBNET_VARIABLES[n]: s for n, s in compose_subnets(environ).items()}}
