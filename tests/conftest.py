"""The project's own tests use the lab plugin (harness.plugin) like any client repository,
with one override: journals keep credentials in clear, so tests can prove where they went."""

import pytest


@pytest.fixture(scope="session")
def lab_options(pytestconfig) -> dict:
    return {"lanes": pytestconfig.getoption("--lab-lanes") or 4, "show_secrets": True}
