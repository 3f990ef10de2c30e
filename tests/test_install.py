"""The package as a user installs it: a wheel built from a clean copy of the checkout (what
``pip install /path/to/checkout`` and ``pip install git+URL`` build), installed into a fresh
venv outside the checkout, then the README's plugin example and ``harness run --tag core``
run from a directory that is not the checkout.

The editable install the rest of the suite runs from finds ``fixtures/`` in the checkout
and cannot see a wheel that lacks them; this module can.
"""

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import harness

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_FILES = sorted(p.name for p in (ROOT / "fixtures").glob("*.toml"))
EXAMPLE_MARK = "<!-- example: tests/test_plugin_example.py -->"


def readme_example() -> str:
    """The README's plugin example: the python block after its marker comment."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split(EXAMPLE_MARK, 1)[1]
    return re.match(r"\s*```python\n(.*?)\n```", block, re.S).group(1) + "\n"


def test_the_readme_example_is_the_tested_file_verbatim():
    assert readme_example() == (ROOT / "tests/test_plugin_example.py").read_text()


def test_the_readme_install_line_works_without_a_registry():
    readme = (ROOT / "README.md").read_text()
    assert "pip install /path/to/tls-inspection-lab" in readme and re.search(r"pip install \"?git\+https://", readme)
    # Not published: no line may tell people to install it from a registry by name.
    assert not re.search(r"pip install ['\"]?tls-inspection-lab\b", readme)
    assert "pip install tls-inspection-lab" not in (ROOT / "tests/test_plugin_example.py").read_text()


def test_every_package_is_listed_for_the_wheel():
    """pyproject.toml lists the packages (its package-dir mapping needs that): a new one must be added."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "harness").rglob("__init__.py")}
    assert listed == on_disk | {"harness.fixtures"}


def clean_copy(dest: Path) -> Path:
    """The files a clone of this checkout would have (tracked or new, not ignored), as they are now."""
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode == 0:
        for name in filter(None, proc.stdout.split("\0")):
            if (ROOT / name).is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, dest / name)
    else:  # not a git checkout (an unpacked archive): everything but local state
        shutil.copytree(ROOT, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", ".lab", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "reports"))
    return dest


def clean_env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "HARNESS_FIXTURES", "HARNESS_STATE_DIR", "HARNESS_LAB",
                        "HARNESS_VENDOR", "PYTEST_ADDOPTS")}
    return {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """The project's wheel, built as pip builds it from a checkout; (wheel, pip's output)."""
    tmp = tmp_path_factory.mktemp("install")
    src = clean_copy(tmp / "src")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp / "dist"), str(src)],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp / "dist").glob("tls_inspection_lab-*.whl")
    return wheel, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> tuple[Path, Path]:
    """A fresh venv with the wheel (and its test extra) installed; (venv, a client repo's directory)."""
    wheel, _ = built
    tmp = tmp_path_factory.mktemp("client")
    venv, repo = tmp / "venv", tmp / "repo"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    proc = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", f"{wheel}[test]"],
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    repo.mkdir()
    return venv, repo


def run_in(venv: Path, repo: Path, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=repo, env=clean_env(venv), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_the_wheel_carries_the_fixtures_and_builds_without_warnings(built):
    wheel, output = built
    # setuptools prints its deprecations as "!!" blocks (e.g. a license table instead of an SPDX string).
    assert "!!" not in output and "Warning" not in output, output
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for name in FIXTURE_FILES:
            assert z.read(f"harness/fixtures/{name}") == (ROOT / "fixtures" / name).read_bytes()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "harness").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert f"\nVersion: {harness.__version__}\n" in metadata
    assert "\nLicense-Expression: MIT\n" in metadata


@pytest.mark.slow
def test_installed_harness_runs_the_core_matrix_outside_the_checkout(installed):
    venv, repo = installed
    proc = run_in(venv, repo, "harness", "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"harness {harness.__version__}", proc.stderr
    # The installed package and its own fixtures, not the checkout's.
    proc = run_in(venv, repo, "python", "-c",
                  "import harness; from harness.model.datafile import fixtures_dir; "
                  "print(harness.__file__); print(fixtures_dir())")
    assert proc.returncode == 0, proc.stderr
    where, fixtures = proc.stdout.split()
    site = Path(subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True).stdout.strip())
    assert Path(where).is_relative_to(site) and Path(fixtures) == site / "harness" / "fixtures", proc.stdout
    proc = run_in(venv, repo, "harness", "run", "--tag", "core")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^\d+ passed, 0 failed", proc.stdout, re.M), proc.stdout


@pytest.mark.slow
def test_installed_plugin_runs_the_readme_example_outside_the_checkout(installed):
    venv, repo = installed
    (repo / "test_my_agent.py").write_text(readme_example())
    proc = run_in(venv, repo, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lab-lanes", "2")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "7 passed" in out and "cannot find the lab's fixtures" not in out
