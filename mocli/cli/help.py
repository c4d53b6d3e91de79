"""``--help`` as a person reads it, at any terminal width (80 columns is the common one).

Prose reflows to the terminal: the hard line breaks inside a paragraph are dropped, so lines do not alternate long
and short. Example lines (indented by two or more spaces) are printed whole, never broken (keep them to
``EXAMPLE_WIDTH`` characters so that they fit an 80-column terminal and can be pasted). Options are listed one per
line with their choices whole; when the option and its choices are too wide for the option column, its help starts
on the next line. Global options given after a command get one line saying where they go; every other usage error
(a bad option value, a missing argument, an unknown command) is one line too, ``error: ... (mocli CMD -h for help)``
with exit code 2, instead of click's boxed panel.

``apply_help_layout`` installs this on every command of an app (``mocli.cli.main`` calls it once).
"""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
from typing import Any

import typer
import typer.core
from rich.console import Console
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup
from typer.models import DefaultPlaceholder

# the click typer runs on: its own copy in recent releases, the click package before
click = getattr(typer.core, "_click", None) or importlib.import_module("click")

__all__ = [
    "EXAMPLE_WIDTH",
    "HelpCommand",
    "HelpGroup",
    "apply_help_layout",
    "is_usage_error",
    "reflow",
    "usage_error_line",
]

EXAMPLE_WIDTH = 76  # the longest example line that fits an 80-column terminal with its indent
_OPTION_COLUMN = 28  # option strings up to this width share their line with the help
_INDENT = "  "
_NEW_LINE_START = re.compile(r"^(--?[a-zA-Z]|\[b\]|[-*•] )")  # options, bold headings, bullets: their own line
_SENTENCE_END = (".", ":", ";", ")", "!", "?")
_MARKUP = re.compile(r"\[/?(?:b|i|bold|italic|dim)\]|\[/\]")


def reflow(text: str) -> str:
    """``text`` with the hard line breaks inside prose paragraphs replaced by spaces.

    Kept as they are: blank lines (paragraph breaks), indented lines (examples, lists), and a line that starts with
    an option, a bold heading or a bullet right after a line that ends a sentence (a paragraph without a blank line).
    """
    out: list[str] = []
    for line in inspect.cleandoc(text).splitlines():
        line = line.rstrip()
        prev = out[-1] if out else ""
        joins = (
            line
            and prev
            and not line.startswith(" ")
            and not prev.startswith(" ")
            and not (_NEW_LINE_START.match(line) and prev.endswith(_SENTENCE_END))
        )
        if joins:
            out[-1] = f"{prev} {line}"
        else:
            out.append(line)
    return "\n".join(out)


def _console() -> Console:
    # the width comes from the terminal, else $COLUMNS, else 80 (rich's rules)
    return Console(highlight=False, soft_wrap=False)


def _print_prose(console: Console, text: str) -> None:
    """Help prose: the first paragraph bold, prose lines wrapped to the width, example lines printed whole."""
    paragraphs = reflow(text).split("\n\n")
    console.print(Text.from_markup(paragraphs[0].replace("\n", " "), style="bold"))
    for paragraph in paragraphs[1:]:
        console.print()
        for line in paragraph.splitlines():
            if line.startswith(" "):
                console.print(Text.from_markup(line), soft_wrap=True)  # an example: never broken
            else:
                console.print(Text.from_markup(line))


def _print_rows(console: Console, title: str, rows: list[tuple[str, str]]) -> None:
    """A section of (left, help) rows: left padded to a column, help wrapped beside it or below a wide left."""
    if not rows:
        return
    console.print()
    console.print(Text(title, style="bold"))
    column = min(max(len(left) for left, _ in rows), _OPTION_COLUMN)
    width = max(console.width - len(_INDENT) * 2 - column, 20)
    for left, help_text in rows:
        keep = re.sub(r"\[(default|env var): ", lambda m: f"[{m[1]}:\xa0", help_text)  # '[default: x]' whole
        lines = textwrap.wrap(keep, width, break_long_words=False, break_on_hyphens=False) or [""]
        lines = [line.replace("\xa0", " ") for line in lines]
        pad = " " * (len(_INDENT) * 2 + column)
        if len(left) > column:
            console.print(Text(f"{_INDENT}{left}"), soft_wrap=True)
            first, rest = f"{pad}{lines[0]}", lines[1:]
        else:
            first, rest = f"{_INDENT}{left:<{column}}{_INDENT}{lines[0]}", lines[1:]
        console.print(Text(first.rstrip()), soft_wrap=True)
        for line in rest:
            console.print(Text(f"{pad}{line}"), soft_wrap=True)


def _param_rows(command: click.Command, ctx: click.Context) -> dict[str, list[tuple[str, str]]]:
    """The (option strings + metavar, help) rows of a command's parameters, by panel ('Arguments', 'Options', ...)."""
    panels: dict[str, list[tuple[str, str]]] = {}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        left, help_text = record
        if isinstance(param, TyperArgument):
            panel = getattr(param, "rich_help_panel", None) or "Arguments"
            if not help_text and getattr(param, "help", None):
                help_text = param.help
        else:
            panel = getattr(param, "rich_help_panel", None) or "Options"
        help_text = _MARKUP.sub("", help_text or "")  # bold/italic tags; '[default: x]' is text
        panels.setdefault(panel, []).append((left, " ".join(help_text.split())))
    return panels


def _print_help(command: click.Command, ctx: click.Context) -> None:
    console = _console()
    console.print(Text(f"Usage: {ctx.command_path} {' '.join(command.collect_usage_pieces(ctx))}"), soft_wrap=True)
    console.print()
    _print_prose(console, command.help or "")
    panels = _param_rows(command, ctx)
    for title in ["Arguments", *[p for p in panels if p not in ("Arguments", "Options")], "Options"]:
        _print_rows(console, title, panels.get(title, []))
    if isinstance(command, TyperGroup):
        rows = []
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                first = reflow(sub.help or "").split("\n\n")[0].replace("\n", " ")
                rows.append((name, Text.from_markup(first).plain))
        _print_rows(console, "Commands", rows)


def _global_option_error(ctx: click.Context, error: click.NoSuchOption) -> None:
    """One line and exit 2 when a global option (``--device``, ``--seed``, ...) comes after the command."""
    root = ctx.find_root().command
    names = {name for param in root.params for name in (*param.opts, *param.secondary_opts)}
    option = error.option_name.split("=", 1)[0]
    if option in names and ctx.parent is not None:
        click.echo(
            f"error: {option} is a global option: give it before the command, e.g. `mocli {option} ... "
            f"{' '.join(ctx.command_path.split()[1:])} ...`",
            err=True,
        )
        ctx.exit(2)


def usage_error_line(error: click.exceptions.UsageError) -> str:
    """``error: <message> (<command> -h for help)`` on one line, for any usage error but the bare-group help."""
    message = " ".join(error.format_message().split()).replace("Value error, ", "")  # pydantic's prefix
    path = error.ctx.command_path if error.ctx is not None else "mocli"
    return f"error: {message} ({path} -h for help)"


def is_usage_error(error: BaseException) -> bool:
    """A usage error to print as one line: any but NoArgsIsHelpError, which a group without a command raises to print
    its help."""
    return isinstance(error, click.exceptions.UsageError) and type(error).__name__ != "NoArgsIsHelpError"


class _HelpLayout:
    """``--help`` laid out by this module, and one line for a bad option value or a global option after the command."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _print_help(self, ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.UsageError as e:
            if not is_usage_error(e):
                raise
            if isinstance(e, click.exceptions.NoSuchOption):
                _global_option_error(ctx, e)  # exits when the option is a global one
            click.echo(usage_error_line(e), err=True)
            ctx.exit(2)


class HelpCommand(_HelpLayout, TyperCommand):
    """A command with mocli's ``--help`` layout."""


class HelpGroup(_HelpLayout, TyperGroup):
    """A group with mocli's ``--help`` layout."""


def _unset(value: Any, default: type) -> bool:
    return value is None or value is default or isinstance(value, DefaultPlaceholder)


def apply_help_layout(app: typer.Typer) -> None:
    """Use ``HelpCommand``/``HelpGroup`` for every command and group below ``app`` that has no class of its own."""
    for command in app.registered_commands:
        if _unset(command.cls, TyperCommand):
            command.cls = HelpCommand
    for group in app.registered_groups:
        if _unset(group.cls, TyperGroup) and _unset(group.typer_instance.info.cls, TyperGroup):
            group.cls = HelpGroup
        apply_help_layout(group.typer_instance)
