"""Shared pieces of batch commands (prepare video, infer): progress bar, failure list, final table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from mocli.cli.options import err_console
from mocli.errors import MocliError


class FpsColumn(ProgressColumn):
    """Frames per second of a task."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:5.1f} frames/s" if speed else "  ... frames/s", style="progress.data.speed")


def progress_bar(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        FpsColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
    )


def error_line(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


@dataclass
class Batch:
    """Outcome of a batch: written files, skipped inputs, failures (input, message)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, name: str, message: str) -> None:
        self.failed.append((name, message))
        error_line(message)


def summarise(batch: Batch, quiet: bool) -> None:
    if batch.skipped and not quiet:
        err_console.print(f"skipped {len(batch.skipped)} input(s) with existing outputs (use --overwrite)")
    if len(batch.failed) > 1 or (batch.failed and (batch.written or batch.skipped)):
        table = Table(title=f"{len(batch.failed)} failed", title_justify="left", show_lines=False)
        table.add_column("input", overflow="fold")
        table.add_column("error", overflow="fold")
        for name, message in batch.failed:
            table.add_row(escape(name), escape(message))
        err_console.print(table)
    if batch.failed:
        raise typer.Exit(1)


def failure_message(path: Path, error: Exception) -> str:
    """One line naming the file: a MocliError's own message, else the exception type and text."""
    message = str(error) if isinstance(error, MocliError) else f"{type(error).__name__}: {error}"
    return message if str(path) in message else f"{path}: {message}"
