"""The CLI's surface: help for every command, version, global options, and the generated reference."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mocli import __version__
from mocli.cli.docs import command_paths, render_cli_reference
from mocli.cli.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", command_paths(app), ids=lambda p: " ".join(p) or "mocli")
def test_every_command_has_help_with_examples(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    if not _is_group(path):
        assert "Example" in result.output, f"mocli {' '.join(path)} --help shows no example"


def _is_group(path):
    import typer

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return bool(getattr(cmd, "commands", None))


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_bad_global_device_is_one_line_error():
    result = runner.invoke(app, ["--device", "tpu", "weights", "list"])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_cli_reference_is_up_to_date():
    expected = render_cli_reference(app)
    actual = (REPO / "docs" / "cli.md").read_text()
    assert actual == expected, "docs/cli.md is stale: run `python -m mocli.cli.docs > docs/cli.md`"
