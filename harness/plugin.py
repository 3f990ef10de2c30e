"""pytest plugin (entry point ``pytest11``): the TLS-inspection lab as fixtures.

Layers, as in pytest-httpserver:

* configuration fixtures, each overridable in a ``conftest.py``:
  ``lab_backend`` (``--lab=local|compose`` or ``$HARNESS_LAB``),
  ``lab_options`` (a :class:`harness.lab.options.LabOptions`: lanes,
  show_secrets, org CA name, vendor ...), ``lab_policies``, ``lab_scenarios``;
* ``tls_lab`` – session-scoped: the lab starts once per test session and is
  shared (:func:`harness.lab.open.open_lab`); yields its :class:`harness.lab.info.LabInfo`;
* ``lab_runner`` – session-scoped :class:`harness.matrix.runner.MatrixRunner`;
* ``lab_journal`` – per test and cheap: remembers where both journals ended
  when the test began, so a test only sees its own records.

``run_scenario(name, client)`` runs a reference client in a scenario and
returns a judged :class:`harness.matrix.cell.CellResult`; ``run_client(definition,
scenario)`` does the same for any client described by a
:class:`harness.model.clientdefs.ClientDef` (a command template and the pinning
policy it claims; ``lab_clients`` holds the definitions of
``fixtures/clients.toml`` and ``--lab-clients FILE``).
``--lab-vendor NAME`` emulates a vendor profile and judges every cell as
that product would make it turn out.  ``assert_outcome(cell)``
fails with expected vs observed, what the proxy could read, both journals and
the client's output (credentials redacted).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import UnknownNameError
from harness.lab.open import open_lab
from harness.lab.options import BACKENDS, LabOptions
from harness.matrix.execute import REFERENCE_CLIENTS
from harness.matrix.runner import MatrixRunner
from harness.model.clientdefs import ClientDef, builtin_clients, load_clients
from harness.model.policy import load_policies
from harness.model.scenarios import load_scenarios
from harness.model.values import lane_count
from harness.model.vendors import get_vendor
from harness.net.journal import JournalReader
from harness.reports.cells import cell_document, describe


def pytest_addoption(parser):
    group = parser.getgroup("tls-lab", "TLS-inspection lab")
    group.addoption("--lab", choices=BACKENDS, default=None,
                    help="lab backend for the tls_lab fixture (default $HARNESS_LAB or local)")
    group.addoption("--lab-lanes", type=lane_count, default=None, help="parallel lanes of the lab (default 4)")
    group.addoption("--lab-vendor", metavar="NAME", default=None,
                    help="emulate this vendor profile (fixtures/vendors.toml; default $HARNESS_VENDOR or none)")
    group.addoption("--lab-clients", action="append", default=[], metavar="TOML",
                    help="client definitions ([client.NAME] tables) for the lab_clients fixture (repeatable)")


def pytest_configure(config):
    config.addinivalue_line("markers", "compose: needs a Docker engine and runs the compose lab")


@pytest.fixture(scope="session")
def lab_backend(pytestconfig) -> str:
    """``local`` or ``compose``: ``--lab``, else ``$HARNESS_LAB``, else ``local``."""
    return pytestconfig.getoption("--lab") or os.environ.get("HARNESS_LAB", "local")


@pytest.fixture(scope="session")
def lab_state_dir(tmp_path_factory) -> Path:
    """Where the session's lab keeps its PKI, logs and ``lab.json``."""
    return tmp_path_factory.mktemp("tls-lab")


@pytest.fixture(scope="session")
def lab_options(pytestconfig, lab_backend, lab_state_dir) -> LabOptions:
    """The :class:`harness.lab.options.LabOptions` of the session's lab; override to change the
    org CA, lanes, secrets, vendor (a dict of LabOptions fields is accepted too)."""
    vendor = pytestconfig.getoption("--lab-vendor") or os.environ.get("HARNESS_VENDOR") or None
    return LabOptions(backend=lab_backend, state_dir=lab_state_dir, lanes=pytestconfig.getoption("--lab-lanes") or 4,
                      vendor=get_vendor(vendor) if vendor else None)


@pytest.fixture(scope="session")
def lab_settings(lab_options, lab_backend, lab_state_dir) -> LabOptions:
    """``lab_options`` as a LabOptions, whatever the override returned."""
    if isinstance(lab_options, LabOptions):
        return lab_options
    return LabOptions(**{"backend": lab_backend, "state_dir": lab_state_dir, **lab_options})


@pytest.fixture(scope="session")
def lab_policies() -> dict:
    """The policies the lab serves: ``fixtures/policies.toml``."""
    return load_policies()


@pytest.fixture(scope="session")
def lab_scenarios(lab_policies) -> dict:
    """Every scenario row by name: ``fixtures/scenarios.toml``."""
    return {s.name: s for s in load_scenarios(policies=lab_policies)}


@pytest.fixture(scope="session")
def tls_lab(lab_settings, lab_policies):
    """The running lab, started once per session; yields its :class:`harness.lab.info.LabInfo`."""
    with open_lab(lab_settings, policies=lab_policies) as info:
        yield info


@pytest.fixture(scope="session")
def lab_clients(pytestconfig) -> dict:
    """Client definitions by name: fixtures/clients.toml, then every ``--lab-clients`` file."""
    clients = builtin_clients()
    for path in pytestconfig.getoption("--lab-clients"):
        clients.update(load_clients(path))
    return clients


@pytest.fixture(scope="session")
def lab_runner(tls_lab, lab_policies, lab_settings) -> MatrixRunner:
    """The session's :class:`harness.matrix.runner.MatrixRunner` (judges as the lab's vendor would)."""
    return MatrixRunner(tls_lab, policies=lab_policies, vendor=lab_settings.vendor)


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

    def run(name: str, client: str):
        if name not in lab_scenarios:
            raise UnknownNameError("scenario", name, list(lab_scenarios))
        return lab_runner.run_cell(lab_scenarios[name], client)

    return run


@pytest.fixture
def run_client(lab_runner, lab_scenarios, lab_clients):
    """``run_client(client, "inspected-continue")`` -> a judged CellResult.

    ``client`` is a :class:`harness.model.clientdefs.ClientDef` (see
    :func:`harness.model.clientdefs.define_client`), the name of one in
    ``lab_clients``, or ``attended``/``beam``.  ``expect=OUTCOME`` judges
    against that outcome instead of the one the client's policy implies.
    """

    def run(client, scenario: str, *, expect: str | None = None):
        if scenario not in lab_scenarios:
            raise UnknownNameError("scenario", scenario, list(lab_scenarios))
        if isinstance(client, str) and client not in REFERENCE_CLIENTS:
            if client not in lab_clients:
                raise UnknownNameError("client", client, [*REFERENCE_CLIENTS, *lab_clients])
            client = lab_clients[client]
        if isinstance(client, str) and client not in lab_scenarios[scenario].expect and expect is None:
            raise UnknownNameError("client", client, list(lab_scenarios[scenario].expect))
        if not isinstance(client, (str, ClientDef)):
            raise TypeError(f"run_client needs a ClientDef or a client name, not {type(client).__name__}")
        return lab_runner.run_cell(lab_scenarios[scenario], client, expect=expect)

    return run


def describe_cell(cell) -> str:
    """A readable account of a judged cell: expected vs observed, what the proxy could read,
    both journals and the client's output (credentials redacted)."""
    return describe(cell_document(cell))


def assert_outcome(cell) -> None:
    """Fail with :func:`describe_cell` unless the cell's verdict passed."""
    __tracebackhide__ = True
    if not cell.passed:
        pytest.fail(describe_cell(cell), pytrace=False)
