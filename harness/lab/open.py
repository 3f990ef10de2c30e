"""One way to get a lab: :func:`open_lab` for the CLI, the pytest plugin and the benchmarks.

::

    with open_lab(LabOptions(lanes=2), policies=policies) as info:   # a LabInfo
        ...

:func:`early_proxy` starts the local lab's proxy process before the lab is
configured (mitmproxy takes ~0.6 s to import), so a caller's own start-up work
(loading scenarios, checking options) overlaps it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from harness.lab.compose import ComposeLab
from harness.lab.local import LocalLab, prespawn_proxy
from harness.lab.options import LabOptions
from harness.lab.process import Child, stop
from harness.model.policy import Policy, load_policies


def open_lab(options: LabOptions, *, policies: dict[str, Policy] | None = None,
             proxy_child: Child | None = None) -> LocalLab | ComposeLab:
    """The lab ``options`` ask for, not started yet (``with`` starts and stops it).

    ``policies`` are the proxy listeners it serves (default: every policy of
    ``fixtures/policies.toml``; the compose image always serves all of them).
    ``proxy_child`` is a proxy from :func:`early_proxy` for the local lab to adopt.
    """
    if options.backend == "compose":
        return ComposeLab(options, policies=load_policies())
    return LocalLab(options, policies=load_policies() if policies is None else policies, proxy_child=proxy_child)


@contextlib.contextmanager
def early_proxy(options: LabOptions) -> Iterator[Child | None]:
    """For the local lab, a proxy process started now and waiting for its configuration
    (hand it to :func:`open_lab`); stopped again if the block fails before a lab adopts it."""
    if options.backend != "local":
        yield None
        return
    child = prespawn_proxy(options.state_dir, options.python)
    try:
        yield child
    except BaseException:
        stop([child])
        raise
