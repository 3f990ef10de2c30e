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

Under pytest-xdist (``-n N``) the workers share one lab (:mod:`harness.lab.shared`:
the first starts it, the others attach, the last one out stops it), each worker
with ``--lab-lanes`` lanes of its own (``lab_lanes``), unless ``--lab-per-worker``.
``--lab-report DIR`` writes the cells that ``run_scenario`` and ``run_client``
produced as ``harness run --report`` does (HTML, JUnit XML, JSON); the workers
send theirs to the controller, which writes one report.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from harness.errors import LabError, UnknownNameError
from harness.lab.info import LabInfo
from harness.lab.open import open_lab, start_lab
from harness.lab.options import BACKENDS, LabOptions
from harness.lab.shared import shared_lab, slot_lanes
from harness.lab.statedir import writable_dir
from harness.matrix.cell import CellResult
from harness.matrix.execute import REFERENCE_CLIENTS
from harness.matrix.runner import MatrixRunner
from harness.model.clientdefs import ClientDef, builtin_clients, load_clients
from harness.model.policy import load_policies
from harness.model.scenarios import load_scenarios
from harness.model.values import lane_count, listen_address
from harness.model.vendors import get_vendor
from harness.net.journal import JournalReader
from harness.reports.cells import cell_document, describe
from harness.reports.publish import write_reports


@dataclass
class _Session:
    """What the plugin keeps for a session: the cells for ``--lab-report``, and where it wrote them."""

    started: float = field(default_factory=time.monotonic)
    cells: list[CellResult] = field(default_factory=list)
    labs: dict[str, dict] = field(default_factory=dict)  # who ("main", or an xdist worker id) -> lab document
    show_secrets: bool = False
    written: list[Path] = field(default_factory=list)


_SESSION = pytest.StashKey[_Session]()


def _xdist_worker(config) -> tuple[str, int] | None:
    """``(worker id, worker count)`` when this process is a pytest-xdist worker."""
    wi = getattr(config, "workerinput", None)
    return (wi["workerid"], int(wi["workercount"])) if wi else None


def _shares_lab(config) -> bool:
    return _xdist_worker(config) is not None and not config.getoption("--lab-per-worker")


def pytest_addoption(parser):
    group = parser.getgroup("tls-lab", "TLS-inspection lab")
    group.addoption("--lab", choices=BACKENDS, default=None,
                    help="lab backend for the tls_lab fixture (default $HARNESS_LAB or local)")
    group.addoption("--lab-lanes", type=lane_count, default=None,
                    help="parallel lanes of the lab, per xdist worker when workers share it (default 4)")
    group.addoption("--lab-vendor", metavar="NAME", default=None,
                    help="emulate this vendor profile (fixtures/vendors.toml; default $HARNESS_VENDOR or none)")
    group.addoption("--lab-clients", action="append", default=[], metavar="TOML",
                    help="client definitions ([client.NAME] tables) for the lab_clients fixture (repeatable)")
    group.addoption("--lab-per-worker", action="store_true",
                    help="with pytest-xdist: a lab per worker instead of one lab the workers share")
    group.addoption("--lab-report", metavar="DIR", type=Path, default=None,
                    help="write report.html, junit.xml and report.json of the cells run_scenario/run_client "
                         "produced to DIR, as 'harness run --report' does")
    group.addoption("--lab-listen", type=listen_address, default=None, metavar="ADDRESS",
                    help="local lab: put the proxy listeners and the PAC server on this address of this machine, "
                         "so a real device (a VM, a laptop) can run a client through it, as 'harness up --listen'")


def pytest_configure(config):
    config.addinivalue_line("markers", "compose: needs a Docker engine and runs the compose lab; "
                                       "deselected unless --lab=compose (or $HARNESS_LAB=compose)")
    config.stash[_SESSION] = _Session()
    if _xdist_worker(config) is not None:
        return  # the controller checks the options once and writes the report
    if config.getoption("--lab-per-worker") and getattr(config.option, "numprocesses", None) \
            and (config.getoption("--lab") or os.environ.get("HARNESS_LAB")) == "compose":
        raise pytest.UsageError("--lab-per-worker starts a lab per worker, but one machine runs one compose lab; "
                                "drop --lab-per-worker and the workers share it.")
    if config.getoption("--lab-report") is not None:
        try:  # an unusable report directory fails before any lab starts
            writable_dir(config.getoption("--lab-report"), what="report directory", option="--lab-report")
        except LabError as e:
            raise pytest.UsageError(str(e)) from None


def _backend(config) -> str:
    return config.getoption("--lab") or os.environ.get("HARNESS_LAB", "local")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``compose`` run only when the compose lab is asked for: they build images and
    start containers, which a default run must not do just because a Docker engine answers."""
    if _backend(config) == "compose":
        return
    dropped = [item for item in items if item.get_closest_marker("compose")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("compose")]


@pytest.fixture(scope="session")
def lab_backend(pytestconfig) -> str:
    """The lab backend, local or compose: --lab, else $HARNESS_LAB, else local."""
    return _backend(pytestconfig)


@pytest.fixture(scope="session")
def lab_state_dir(pytestconfig, tmp_path_factory) -> Path:
    """Where the session's lab keeps its PKI, logs and lab.json (one for all xdist workers sharing it)."""
    if _shares_lab(pytestconfig):
        # The directory above a worker's basetemp is the session's, shared by its workers (pytest-xdist's docs).
        return tmp_path_factory.getbasetemp().parent / "tls-lab"
    return tmp_path_factory.mktemp("tls-lab")


@pytest.fixture(scope="session")
def lab_options(pytestconfig, lab_backend, lab_state_dir) -> LabOptions:
    """The LabOptions of the session's lab: override it to change the CA, lanes, secrets or vendor.

    Return a :class:`harness.lab.options.LabOptions` or a dict of its fields.
    ``lanes`` are per worker when pytest-xdist workers share the lab.
    """
    vendor = pytestconfig.getoption("--lab-vendor") or os.environ.get("HARNESS_VENDOR") or None
    return LabOptions(backend=lab_backend, state_dir=lab_state_dir, lanes=pytestconfig.getoption("--lab-lanes") or 4,
                      vendor=get_vendor(vendor) if vendor else None,
                      **({"listen": listen} if (listen := pytestconfig.getoption("--lab-listen")) else {}))


@pytest.fixture(scope="session")
def lab_settings(lab_options, lab_backend, lab_state_dir) -> LabOptions:
    """lab_options as a LabOptions, whatever the override returned."""
    if isinstance(lab_options, LabOptions):
        return lab_options
    return LabOptions(**{"backend": lab_backend, "state_dir": lab_state_dir, **lab_options})


@pytest.fixture(scope="session")
def lab_policies() -> dict:
    """The policies the lab serves, by name (fixtures/policies.toml)."""
    return load_policies()


@pytest.fixture(scope="session")
def lab_scenarios(lab_policies) -> dict:
    """Every scenario row by name (fixtures/scenarios.toml)."""
    return {s.name: s for s in load_scenarios(policies=lab_policies)}


@pytest.fixture(scope="session")
def _tls_lab_hold(pytestconfig, lab_settings, lab_policies, tmp_path_factory):
    """The session's lab and the lanes this process may use (see tls_lab and lab_lanes)."""
    state = pytestconfig.stash[_SESSION]
    state.show_secrets = lab_settings.show_secrets
    if not _shares_lab(pytestconfig):
        # Several labs may start at once (a lab per xdist worker): a lost port race is tried again.
        lab, info = start_lab(lab_settings, policies=lab_policies)
        try:
            state.labs[(_xdist_worker(pytestconfig) or ("main",))[0]] = _lab_document(info)
            yield info, tuple(range(info.lanes))
        finally:
            lab.stop()
        return
    worker, count = _xdist_worker(pytestconfig)
    def start():  # lab_settings.lanes lanes for each worker: the first worker starts the lab with all of them
        return open_lab(replace(lab_settings, lanes=lab_settings.lanes * count), policies=lab_policies)

    with shared_lab(tmp_path_factory.getbasetemp().parent, start, slots=count) as hold:
        state.labs[worker] = _lab_document(hold.info)
        yield hold.info, tuple(slot_lanes(hold.slot, hold.info.lanes // count))


def _lab_document(info: LabInfo) -> dict:
    """The lab as the reports show it (lab.json's content)."""
    return json.loads(info.to_json())


@pytest.fixture(scope="session")
def tls_lab(_tls_lab_hold) -> LabInfo:
    """The running lab, started once per session (shared by xdist workers): its LabInfo."""
    return _tls_lab_hold[0]


@pytest.fixture(scope="session")
def lab_lanes(_tls_lab_hold) -> tuple[int, ...]:
    """The lanes of tls_lab this process may use: all of them, or this xdist worker's own."""
    return _tls_lab_hold[1]


@pytest.fixture(scope="session")
def lab_clients(pytestconfig) -> dict:
    """Client definitions by name: fixtures/clients.toml, then every --lab-clients file."""
    clients = builtin_clients()
    for path in pytestconfig.getoption("--lab-clients"):
        clients.update(load_clients(path))
    return clients


@pytest.fixture(scope="session")
def lab_runner(tls_lab, lab_lanes, lab_policies, lab_settings) -> MatrixRunner:
    """The session's MatrixRunner on this process's lanes, judging as the lab's vendor would."""
    return MatrixRunner(tls_lab, policies=lab_policies, vendor=lab_settings.vendor, lanes=lab_lanes)


class JournalView:
    """Both journals, seen from the moment the test started, on this process's lanes."""

    def __init__(self, lab: LabInfo, lanes: tuple[int, ...] | None = None) -> None:
        self.proxy = JournalReader(lab.proxy_admin)
        self.server = JournalReader(lab.server_admin)
        self.lanes = tuple(range(lab.lanes)) if lanes is None else tuple(lanes)
        self._all_lanes = len(self.lanes) == lab.lanes
        self.reset()

    def reset(self) -> None:
        self.proxy_after = self.proxy.last_seq()
        self.server_after = self.server.last_seq()

    def proxy_records(self, lane: int | None = None, settle: float = 5.0) -> list[dict]:
        return self._read(self.proxy, self.proxy_after, lane, settle)

    def server_records(self, lane: int | None = None) -> list[dict]:
        return self._read(self.server, self.server_after, lane, 0.0)

    def _read(self, reader: JournalReader, after: int, lane: int | None, settle: float) -> list[dict]:
        if lane is not None or self._all_lanes:
            return reader.read(lane=lane, after=after, settle=settle)
        # A shared lab: the other workers' lanes are theirs to read.
        records = [r for own in self.lanes for r in reader.read(lane=own, after=after, settle=settle)]
        return sorted(records, key=lambda r: r["seq"])


@pytest.fixture
def lab_journal(tls_lab, lab_lanes) -> JournalView:
    """Per-test view of both journals on this process's lanes (a cursor: resetting costs nothing)."""
    return JournalView(tls_lab, lab_lanes)


@pytest.fixture
def run_scenario(pytestconfig, lab_runner, lab_scenarios):
    """run_scenario("inspected-continue", "beam") runs a reference client: a judged CellResult."""
    cells = pytestconfig.stash[_SESSION].cells

    def run(name: str, client: str):
        if name not in lab_scenarios:
            raise UnknownNameError("scenario", name, list(lab_scenarios))
        cell = lab_runner.run_cell(lab_scenarios[name], client)
        cells.append(cell)
        return cell

    return run


@pytest.fixture
def run_client(pytestconfig, lab_runner, lab_scenarios, lab_clients):
    """run_client(client, "inspected-continue") runs any client in a scenario: a judged CellResult.

    ``client`` is a :class:`harness.model.clientdefs.ClientDef` (see
    :func:`harness.model.clientdefs.define_client`), the name of one in
    ``lab_clients``, or ``attended``/``beam``.  ``expect=OUTCOME`` judges
    against that outcome instead of the one the client's policy implies.
    """
    cells = pytestconfig.stash[_SESSION].cells

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
        cell = lab_runner.run_cell(lab_scenarios[scenario], client, expect=expect)
        cells.append(cell)
        return cell

    return run


# -- --lab-report: the workers' cells travel to the controller, which writes one report --------


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist (controller): a worker finished; keep the cells and the lab it sent."""
    data = getattr(node, "workeroutput", {}).get("tls_lab")
    if data:
        state = node.config.stash[_SESSION]
        # Pickled by this plugin in our own worker process (pytest_sessionfinish below).
        sent = pickle.loads(data)
        state.cells += sent["cells"]
        state.labs.update(sent["labs"])
        state.show_secrets = state.show_secrets or sent["show_secrets"]


def pytest_sessionfinish(session):
    config = session.config
    state = config.stash.get(_SESSION, None)
    if state is None:
        return
    if _xdist_worker(config) is not None:
        if state.cells or state.labs:
            # CellResults are plain dataclasses; execnet carries bytes, not our classes.
            config.workeroutput["tls_lab"] = pickle.dumps(
                {"cells": state.cells, "labs": state.labs, "show_secrets": state.show_secrets})
        return
    report_dir = config.getoption("--lab-report")
    if report_dir is not None:
        docs = list(state.labs.values())
        # One lab (the workers shared it, or no xdist): its document; --lab-per-worker: each worker's.
        lab = ({} if not docs else docs[0] if all(d == docs[0] for d in docs) else {"workers": state.labs})
        state.written = write_reports(report_dir, state.cells, lab=lab, seconds=time.monotonic() - state.started,
                                      show_secrets=state.show_secrets)


def pytest_terminal_summary(terminalreporter, config):
    state = config.stash.get(_SESSION, None)
    if state is not None and state.written:
        terminalreporter.write_line(f"tls-lab reports ({len(state.cells)} cells): "
                                    + ", ".join(str(p) for p in state.written))


def describe_cell(cell) -> str:
    """A readable account of a judged cell: expected vs observed, what the proxy could read,
    both journals and the client's output (credentials redacted)."""
    return describe(cell_document(cell))


def assert_outcome(cell) -> None:
    """Fail with :func:`describe_cell` unless the cell's verdict passed."""
    __tracebackhide__ = True
    if not cell.passed:
        pytest.fail(describe_cell(cell), pytrace=False)
