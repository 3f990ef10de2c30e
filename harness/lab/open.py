"""One way to get a lab: :func:`open_lab` for the CLI, the pytest plugin and the benchmarks.

::

    with open_lab(LabOptions(lanes=2), policies=policies) as info:   # a LabInfo
        ...

A local lab can adopt a proxy started earlier (:mod:`harness.lab.early`).
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import LabStartError
from harness.lab.compose import ComposeLab
from harness.lab.info import LabInfo
from harness.lab.local import LocalLab
from harness.lab.options import LabOptions
from harness.lab.process import Child
from harness.model.policy import Policy, load_policies


def open_lab(options: LabOptions, *, policies: dict[str, Policy] | None = None,
             proxy_child: Child | None = None) -> LocalLab | ComposeLab:
    """The lab ``options`` ask for, not started yet (``with`` starts and stops it).

    ``policies`` are the proxy listeners it serves (default: every policy of
    ``fixtures/policies.toml``; the compose image always serves all of them).
    ``proxy_child`` is a proxy from :func:`harness.lab.early.early_proxy` for the local lab to adopt.
    """
    if options.backend == "compose":
        return ComposeLab(options, policies=load_policies())
    return LocalLab(options, policies=load_policies() if policies is None else policies, proxy_child=proxy_child)


START_ATTEMPTS = 3


def lost_port_race(error: LabStartError, state_dir: Path) -> bool:
    """Whether a failed start lost a port race: a lab reserves free ports and binds them a moment
    later, and another process's outgoing connection may take one in between (its ephemeral port)."""
    logs = [p.read_text(errors="replace")[-2000:] for p in (state_dir / "logs").glob("*.log")]
    return any("already in use" in text for text in [str(error), *logs])


def start_lab(options: LabOptions, *, policies: dict[str, Policy] | None = None, proxy_child: Child | None = None,
              attempts: int = START_ATTEMPTS) -> tuple[LocalLab | ComposeLab, LabInfo]:
    """:func:`open_lab` and start it: ``(lab, info)``; stop it with ``lab.stop()``.  A start that
    lost a port race is tried again with fresh ports (any other failure is raised at once)."""
    for attempt in range(1, attempts + 1):
        lab = open_lab(options, policies=policies, proxy_child=proxy_child)
        proxy_child = None  # adopted (and stopped with the lab) or already reaped on failure
        try:
            return lab, lab.start()
        except LabStartError as e:
            if attempt == attempts or not lost_port_race(e, options.state_dir):
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")
