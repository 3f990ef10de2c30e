"""Tests for harness.lab.wheelhouse: when the dependency wheels are up to date."""

from __future__ import annotations

from harness.lab import wheelhouse


def test_stamp_changes_with_pyproject_and_target_python():
    a = wheelhouse.wheelhouse_stamp(b"[project]\nname='x'\n")
    assert a == wheelhouse.wheelhouse_stamp(b"[project]\nname='x'\n")
    assert a != wheelhouse.wheelhouse_stamp(b"[project]\nname='y'\n")
    assert a != wheelhouse.wheelhouse_stamp(b"[project]\nname='x'\n", (3, 12))


def test_wheelhouse_is_current_needs_the_same_stamp_and_some_wheels(tmp_path):
    stamp = wheelhouse.wheelhouse_stamp(b"deps")
    assert not wheelhouse.wheelhouse_is_current(tmp_path, stamp)
    (tmp_path / wheelhouse.STAMP_NAME).write_text(stamp + "\n")
    assert not wheelhouse.wheelhouse_is_current(tmp_path, stamp)  # no wheels yet
    (tmp_path / "h11-0.14.0-py3-none-any.whl").write_bytes(b"")
    assert wheelhouse.wheelhouse_is_current(tmp_path, stamp)
    assert not wheelhouse.wheelhouse_is_current(tmp_path, wheelhouse.wheelhouse_stamp(b"other deps"))


def test_the_wheel_source_holds_the_fixtures_the_wheel_maps_into_the_package(tmp_path):
    src = wheelhouse._project_source(tmp_path)
    for name in ("scenarios.toml", "policies.toml", "vendors.toml", "clients.toml"):
        assert (src / "fixtures" / name).read_bytes() == (wheelhouse.REPO_ROOT / "fixtures" / name).read_bytes()
    assert (src / "harness" / "__init__.py").is_file() and (src / "pyproject.toml").is_file()
