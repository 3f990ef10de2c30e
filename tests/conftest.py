"""The project's own tests use the lab plugin (harness.plugin) like any client repository,
with one override: journals keep credentials in clear, so tests can prove where they went."""

import pytest

from harness.lab.gateway import policies_for
from harness.lab.options import LabOptions
from harness.model.scenarios import load_scenarios


@pytest.fixture(scope="session")
def lab_options(pytestconfig, lab_backend, lab_state_dir) -> LabOptions:
    # The transparent rows need the gateway: built where it can be (root on Linux; skipped with
    # the reason otherwise), for the policies those rows use.
    return LabOptions(backend=lab_backend, state_dir=lab_state_dir, lanes=pytestconfig.getoption("--lab-lanes") or 4,
                      show_secrets=True, transparent=None, transparent_policies=tuple(policies_for(load_scenarios())))


def pytest_collection_modifyitems(config, items):
    """Local-only modules are skipped on the compose lab: 'pytest --lab=compose' runs the shared suite.
    (Tests marked ``compose`` are deselected on the local lab by the plugin, harness.plugin.)"""
    backend = config.getoption("--lab") or "local"
    shared = {"test_matrix.py", "test_secrets.py", "test_compose.py", "test_compose_runs.py"}
    for item in items:
        name = item.path.name
        if backend == "compose" and name not in shared:
            item.add_marker(pytest.mark.skip(reason="runs on the local lab; the compose run covers the shared scenario suite"))
