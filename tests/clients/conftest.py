"""Fixtures for the reference-client tests."""

import pytest

from harness.pki.lab import LabPKI


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A lab PKI generated once per test module."""
    return LabPKI.generate(tmp_path_factory.mktemp("pki"))
