"""The CLI reference (docs/cli.md) generated from the commands' own ``--help``, as an 80-column terminal shows it."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

WIDTH = 80  # the common terminal; tests check the help at this width
HELP_ENV = {"COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}


def command_paths(app: typer.Typer) -> list[list[str]]:
    """Every command path below the root, depth first: [[], ['prepare'], ['prepare', 'video'], ...]."""
    root = typer.main.get_command(app)

    def walk(cmd, path):
        yield path
        for name in sorted(getattr(cmd, "commands", {}) or {}):
            sub = cmd.commands[name]
            if not getattr(sub, "hidden", False):
                yield from walk(sub, [*path, name])

    return list(walk(root, []))


def render_cli_reference(app: typer.Typer) -> str:
    runner = CliRunner()
    parts = ["# mocli command reference", "", "Generated from `--help` by `python -m mocli.cli.docs > docs/cli.md`;",
             "a test checks that it matches the commands.", ""]  # fmt: skip
    for path in command_paths(app):
        result = runner.invoke(app, [*path, "--help"], env=HELP_ENV, terminal_width=WIDTH)
        if result.exit_code != 0:
            raise RuntimeError(f"mocli {' '.join(path)} --help failed: {result.output}")
        text = "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())
        parts += [f"## mocli {' '.join(path)}".rstrip(), "", "```text", text, "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    from mocli.cli.main import app

    print(render_cli_reference(app), end="")
