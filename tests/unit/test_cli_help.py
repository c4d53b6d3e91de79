"""``--help`` at 80 columns: prose reflows, examples and choices are never broken; misplaced global options."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from mocli.cli.docs import command_paths
from mocli.cli.help import EXAMPLE_WIDTH, reflow
from mocli.cli.main import app

runner = CliRunner()
ENV = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}


def _command(path: list[str]):
    import typer

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def _examples(help_text: str) -> list[str]:
    return [line.strip() for line in reflow(help_text).splitlines() if line.strip().startswith("mocli ")]


def _cases():
    for path in command_paths(app):
        yield pytest.param(path, id=" ".join(path) or "mocli")


@pytest.mark.parametrize("path", list(_cases()))
def test_help_at_80_columns_keeps_examples_and_choices_whole(path):
    result = runner.invoke(app, [*path, "--help"], env=ENV, terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.output.splitlines()]
    examples = _examples(_command(path).help or "")
    for example in examples:
        assert len(example) <= EXAMPLE_WIDTH, f"example longer than {EXAMPLE_WIDTH} characters: {example}"
        assert any(line.strip() == example for line in lines), f"example broken across lines: {example}"
    for line in lines:  # a list of choices (<pose3d|action|mesh|all>) opens and closes on one line
        for start in re.finditer(r"<[\w-]+\|", line):
            assert ">" in line[start.start() :], f"choices split across lines: {line.strip()}"
    assert max(len(line) for line in lines) <= 80


def test_choices_and_defaults_stay_on_one_line():
    lines = runner.invoke(app, ["infer", "--help"], env=ENV, terminal_width=80).output.splitlines()
    assert any(line.strip().startswith("--task <pose3d|action|mesh|all>") for line in lines)
    assert any(line.strip().startswith("--detector <mediapipe|mediapipe-multi|yolo|mmpose>") for line in lines)
    assert not any(line.rstrip().endswith("[default:") for line in lines)


def test_reflow_joins_prose_and_keeps_examples_and_option_paragraphs():
    text = """First line.

    A paragraph hard-wrapped
    at a narrow width, with --an-option
    mid-sentence.
    --render adds a file (a paragraph of its own).

    [b]Examples[/b]

      mocli infer a.mp4
      mocli infer b.mp4 --bvh
    """
    assert reflow(text) == (
        "First line.\n\nA paragraph hard-wrapped at a narrow width, with --an-option mid-sentence.\n"
        "--render adds a file (a paragraph of its own).\n\n[b]Examples[/b]\n\n  mocli infer a.mp4\n"
        "  mocli infer b.mp4 --bvh"
    )


def test_prose_reflows_to_the_terminal_width():
    narrow = runner.invoke(app, ["eval", "h36m", "--help"], env={**ENV, "COLUMNS": "60"}, terminal_width=60).output
    wide = runner.invoke(app, ["eval", "h36m", "--help"], env={**ENV, "COLUMNS": "120"}, terminal_width=120).output
    # the same paragraph fills each width: at 120 columns its lines are longer than the source's 115-column wrap
    prose = [line.rstrip() for line in narrow.splitlines() if not line.strip().startswith("mocli ")]
    assert max(len(line) for line in prose) <= 60  # examples are never broken, whatever the width
    assert "Test subjects S9 and S11" in " ".join(wide.split())
    assert any(len(line.rstrip()) > 115 for line in wide.splitlines())


@pytest.mark.parametrize("args", [["infer", "x.mp4", "--device", "cuda"], ["weights", "list", "--seed", "3"]])
def test_global_option_after_the_command_says_where_it_goes(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    option = args[-2]
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"{option} is a global option: give it before the command" in lines[0]
    assert f"mocli {option} ... {args[0]}" in lines[0]


@pytest.mark.parametrize(
    ("args", "message", "command"),
    [
        (["--seed", "abc", "weights", "list"], "Invalid value for '--seed'", "mocli"),
        (["--device", "tpu", "weights", "list"], "'tpu': expected auto, cpu, cuda or cuda:N", "mocli"),
        (["nosuch"], "No such command 'nosuch'.", "mocli"),
        (["infer"], "Missing argument 'INPUT...'.", "mocli infer"),
        (["infer", "x.mp4", "--nosuch"], "No such option: --nosuch", "mocli infer"),
        (["weights", "export", "x.pt", "--detector-3d-spread", "abc"], "Invalid value for '--detector-3d-spread'",
         "mocli weights export"),
        (["eval", "ntu", "--split", "x"], "Invalid value for '--split': 'x' is not one of", "mocli eval ntu"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_with_exit_code_2(args, message, command):
    result = runner.invoke(app, args, env=ENV)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert lines[0].endswith(f"({command} -h for help)")


def test_a_group_without_a_command_still_prints_its_help():
    result = runner.invoke(app, ["weights"], env=ENV)
    assert result.exit_code == 2 and "Usage: mocli weights" in result.output and "error:" not in result.output


def test_weights_list_keeps_names_whole_at_80_columns():
    result = runner.invoke(app, ["weights", "list"], env=ENV, terminal_width=80)
    assert result.exit_code == 0
    names = re.findall(r"^(dstformer-\S+)\s", result.output, flags=re.M)
    assert "dstformer-small.mocap" in names and all(len(line) <= 80 for line in result.output.splitlines())
