"""Shared pieces of batch commands (prepare video, infer): progress bar, failure list, final table."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from mocli.cli.options import err_console
from mocli.result_folder import failure_message

if TYPE_CHECKING:
    from mocli.results import InputResult

__all__ = ["Batch", "InferReporter", "error_line", "failure_message", "progress_bar", "summarise"]


class CountColumn(ProgressColumn):
    """Steps done of the total ("12/230"); nothing for a stage that cannot count its steps."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        return Text(f"{int(task.completed)}/{int(task.total)}", style="progress.download")


class RateColumn(ProgressColumn):
    """Steps per second in the task's own unit (``unit`` field: frames, inputs, ...; frames by default)."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        unit = task.fields.get("unit", "frames")
        speed = task.finished_speed or task.speed
        return Text(f"{speed:5.1f} {unit}/s" if speed else f"  ... {unit}/s", style="progress.data.speed")


class TimeColumn(ProgressColumn):
    """Time left when the total is known, else the time the stage has taken so far."""

    def __init__(self) -> None:
        super().__init__()
        self.remaining, self.elapsed = TimeRemainingColumn(), TimeElapsedColumn()

    def render(self, task: Task) -> Text:
        return self.elapsed.render(task) if task.total is None else self.remaining.render(task)


# Kept for callers that name it: the rate column, which reads each task's unit.
FpsColumn = RateColumn


def progress_bar(quiet: bool) -> Progress:
    """The progress display of batch commands (on stderr; nothing at all when ``quiet``). Give tasks a ``unit``
    field (``add_task(..., unit="inputs")``) when they do not count frames."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        CountColumn(),
        RateColumn(),
        TimeColumn(),
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
    busy: list[Path] = field(default_factory=list)  # being written by another process: skipped, not failed

    def fail(self, name: str, message: str) -> None:
        self.failed.append((name, message))
        error_line(message)


def summarise(batch: Batch, quiet: bool) -> None:
    if batch.skipped and not quiet:
        err_console.print(f"skipped {len(batch.skipped)} input(s) with existing outputs (use --overwrite)")
    if batch.busy and not quiet:
        err_console.print(f"skipped {len(batch.busy)} input(s) being written by another mocli process")
    if len(batch.failed) > 1 or (batch.failed and (batch.written or batch.skipped or batch.busy)):
        table = Table(title=f"{len(batch.failed)} failed", title_justify="left", show_lines=False)
        table.add_column("input", overflow="fold")
        table.add_column("error", overflow="fold")
        for name, message in batch.failed:
            table.add_row(escape(name), escape(message))
        err_console.print(table)
    if batch.failed:
        raise typer.Exit(1)


class InferReporter:
    """``mocli.infer``'s progress on a rich Progress: a bar over the inputs, one per stage; failures as they come."""

    def __init__(self, progress: Progress, batch: Batch, quiet: bool = False) -> None:
        self.progress, self.batch, self.quiet = progress, batch, quiet
        self.inputs_task = None

    def start(self, num_inputs: int) -> None:
        if num_inputs > 1:
            self.inputs_task = self.progress.add_task("inputs", total=num_inputs, unit="inputs")

    @contextlib.contextmanager
    def stage(self, description: str, total: int | None = None, unit: str = "frames") -> Iterator[Callable[..., None]]:
        task = self.progress.add_task(description, total=total, unit=unit)
        try:
            yield lambda n=1: self.progress.advance(task, n)
        finally:
            self.progress.remove_task(task)

    def done(self, result: InputResult) -> None:
        if result.status == "written":
            self.batch.written.append(result.out_dir)
        elif result.status == "skipped":
            self.batch.skipped.append(result.input)
        elif result.status == "busy":
            self.batch.busy.append(result.input)
            if not self.quiet:
                err_console.print(f"skipped: {escape(result.message)}", highlight=False, soft_wrap=True)
        else:
            self.batch.fail(str(result.input), result.message)
        if self.inputs_task is not None and result.out_dir is not None:
            self.progress.advance(self.inputs_task)
