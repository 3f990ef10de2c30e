"""harness.cli.parser: the arguments, their one-sentence errors, and LabOptions from them."""

from pathlib import Path

import pytest

from harness.cli.parser import build_parser, lab_options
from harness.errors import UnknownNameError, UsageError
from harness.lab.options import DEFAULT_ORG_CN, LabOptions
from harness.lab.statedir import default_state_dir


def test_errors_are_one_sentence_pointing_at_the_commands_help():
    with pytest.raises(UsageError) as e:
        build_parser().parse_args(["run", "--lanes", "0"])
    message = str(e.value)
    assert message.startswith("harness run: ") and message.endswith("see 'harness run --help'.")
    assert "\n" not in message


def test_up_defaults_make_the_default_lab_options(monkeypatch):
    monkeypatch.delenv("HARNESS_LAB", raising=False)
    monkeypatch.delenv("HARNESS_VENDOR", raising=False)
    options = lab_options(build_parser().parse_args(["up"]))
    assert isinstance(options, LabOptions)
    assert options.backend == "local" and options.lanes == 4 and options.state_dir == default_state_dir()
    assert options.org_common_name == DEFAULT_ORG_CN and options.name_constraints and options.vendor is None
    assert options.transparent is False and options.base_port is None and not options.show_secrets


def test_arguments_reach_lab_options():
    args = build_parser().parse_args(["run", "--lab", "local", "--state-dir", "/tmp/s", "--lanes", "2",
                                      "--no-name-constraints", "--transparent", "--base-port", "20000",
                                      "--org-cn", "Acme CA", "--show-secrets"])
    options = lab_options(args)
    assert options.state_dir == Path("/tmp/s") and options.lanes == 2 and options.name_constraints is False
    assert options.transparent is True and options.base_port == 20000
    assert options.org_common_name == "Acme CA" and options.show_secrets
    vendor = lab_options(build_parser().parse_args(["run", "--lab", "local", "--vendor", "zscaler"]))
    assert vendor.vendor.name == "zscaler"


def test_changes_override_the_arguments():
    options = lab_options(build_parser().parse_args(["up", "--lanes", "3"]), lanes=1)
    assert options.lanes == 1


def test_an_unknown_vendor_is_refused_when_the_options_are_made():
    with pytest.raises(UnknownNameError, match="unknown vendor 'nope'"):
        lab_options(build_parser().parse_args(["up", "--lab", "local", "--vendor", "nope"]))


def test_the_environment_picks_the_backend(monkeypatch):
    monkeypatch.setenv("HARNESS_LAB", "compose")
    assert build_parser().parse_args(["down"]).lab == "compose"
