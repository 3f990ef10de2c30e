"""One way to get a lab: :func:`open_lab` for the CLI, the pytest plugin and the benchmarks.

::

    with open_lab(LabOptions(lanes=2), policies=policies) as info:   # a LabInfo
        ...

A local lab can adopt a proxy started earlier (:mod:`harness.lab.early`).
"""

from __future__ import annotations

from harness.lab.compose import ComposeLab
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
