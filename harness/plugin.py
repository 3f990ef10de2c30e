"""pytest plugin (entry point ``pytest11``): the TLS-inspection lab as fixtures.

Layers, as in pytest-httpserver:

* configuration fixtures, each overridable in a ``conftest.py``:
  ``lab_backend`` (``--lab=local|compose`` or ``$HARNESS_LAB``),
  ``lab_options`` (lanes, show_secrets, org CA name ...), ``lab_policies``,
  ``lab_scenarios``;
* ``tls_lab`` – session-scoped: the lab starts once per test session and is
  shared; yields its :class:`harness.lab.LabInfo`;
* ``lab_runner`` – session-scoped :class:`harness.runner.MatrixRunner`;
* ``lab_journal`` – per test and cheap: remembers where both journals ended
  when the test began, so a test only sees its own records.

``run_scenario(name, client)`` runs a reference client in a scenario and
returns a judged :class:`harness.runner.CellResult`; ``assert_outcome(cell)``
fails with expected vs observed and what the proxy and server saw.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.journal import JournalReader


def pytest_addoption(parser):
    group = parser.getgroup("tls-lab", "TLS-inspection lab")
    group.addoption("--lab", choices=("local", "compose"), default=None,
                    help="lab backend for the tls_lab fixture (default $HARNESS_LAB or local)")
    group.addoption("--lab-lanes", type=int, default=None, help="parallel lanes of the lab (default 4)")


def pytest_configure(config):
    config.addinivalue_line("markers", "compose: needs a Docker engine and runs the compose lab")


@pytest.fixture(scope="session")
def lab_backend(pytestconfig) -> str:
    return pytestconfig.getoption("--lab") or os.environ.get("HARNESS_LAB", "local")


@pytest.fixture(scope="session")
def lab_options(pytestconfig) -> dict:
    """Keyword arguments for the lab backend; override to change the org CA, lanes, secrets."""
    return {"lanes": pytestconfig.getoption("--lab-lanes") or 4, "show_secrets": False}


@pytest.fixture(scope="session")
def lab_policies() -> dict:
    from harness.scenarios import load_policies

    return load_policies()


@pytest.fixture(scope="session")
def lab_scenarios(lab_policies) -> dict:
    from harness.scenarios import load_scenarios

    return {s.name: s for s in load_scenarios(policies=lab_policies)}


@pytest.fixture(scope="session")
def lab_state_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tls-lab")


@pytest.fixture(scope="session")
def tls_lab(lab_backend, lab_options, lab_policies, lab_state_dir):
    """The running lab, started once per session; yields its LabInfo."""
    if lab_backend == "compose":
        from harness.lab.compose import ComposeLab as Lab
    else:
        from harness.lab.local import LocalLab as Lab
    lab = Lab(lab_state_dir, policies=lab_policies, **lab_options)
    info = lab.start()
    try:
        yield info
    finally:
        lab.stop()


@pytest.fixture(scope="session")
def lab_runner(tls_lab):
    from harness.runner import MatrixRunner

    return MatrixRunner(tls_lab)


class JournalView:
    """Both journals, seen from the moment the test started."""

    def __init__(self, lab) -> None:
        self.proxy = JournalReader(lab.proxy_admin)
        self.server = JournalReader(lab.server_admin)
        self.reset()

    def reset(self) -> None:
        self.proxy_after = self.proxy.last_seq()
        self.server_after = self.server.last_seq()

    def proxy_records(self, lane: int | None = None, settle: float = 5.0) -> list[dict]:
        return self.proxy.read(lane=lane, after=self.proxy_after, settle=settle)

    def server_records(self, lane: int | None = None) -> list[dict]:
        return self.server.read(lane=lane, after=self.server_after)


@pytest.fixture
def lab_journal(tls_lab) -> JournalView:
    """Per-test view of the journals (a cursor, so resetting costs nothing)."""
    return JournalView(tls_lab)


@pytest.fixture
def run_scenario(lab_runner, lab_scenarios):
    """``run_scenario("inspected-continue", "beam")`` -> a judged CellResult."""
    from harness.errors import UnknownNameError

    def run(name: str, client: str):
        if name not in lab_scenarios:
            raise UnknownNameError("scenario", name, list(lab_scenarios))
        return lab_runner.run_cell(lab_scenarios[name], client)

    return run


def describe_cell(cell) -> str:
    """A readable account of a judged cell: expected vs observed and the ground truth."""
    o = cell.verdict.observation
    lines = [
        f"{cell.scenario.name}/{cell.client}: expected {cell.verdict.expected}, observed {o.outcome}",
        *[f"  - {r}" for r in cell.verdict.reasons],
        f"  issuer seen: {o.issuer_seen}; pin match: {o.pin_match}; {o.summary()}",
        "  proxy saw:",
        *[f"    {r.get('action')} sni={r.get('sni')} client_tls={r.get('client_tls')} "
          f"requests={[q.get('method') + ' ' + q.get('path', '') for q in r.get('requests', [])]}"
          for r in cell.proxy_records if r.get("kind") == "connection"],
        "  server saw:",
        *[f"    {r.get('method')} {r.get('host')}{r.get('path')} -> {r.get('status')}" for r in cell.server_records if r.get("kind") == "http"],
        "  client output:",
        *[f"    {line}" for line in cell.output.splitlines()[-8:]],
    ]
    return "\n".join(lines)


def assert_outcome(cell) -> None:
    """Fail with :func:`describe_cell` unless the cell's verdict passed."""
    __tracebackhide__ = True
    if not cell.passed:
        pytest.fail(describe_cell(cell), pytrace=False)
