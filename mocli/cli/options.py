"""Shared CLI state and option aliases (defined once, used by every command)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

# Diagnostics and progress go to stderr; results (tables, paths) to stdout.
console = Console()
err_console = Console(stderr=True)


@dataclass
class Settings:
    """Global options given before the subcommand: ``mocli --device cpu --seed 1 infer ...``."""

    device: str = "auto"
    seed: int = 0
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0


def get_settings(ctx: typer.Context) -> Settings:
    """The Settings of the root command (defaults when a command is invoked without the root callback)."""
    root = ctx.find_root()
    if isinstance(root.obj, Settings):
        return root.obj
    return Settings()


def setup_logging(verbosity: int) -> None:
    from rich.logging import RichHandler

    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err_console, show_path=False)], force=True
    )


OutPath = Annotated[Path, typer.Option("--out", "-o", help="Output file.")]
ExistingFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, resolve_path=True)]


# Options shared by the training commands (pretrain, finetune)
DataFilesOpt = Annotated[list[Path] | None, typer.Option("--data", "-d", help="mocli HDF5 file (repeat for several).")]
TrainPrecisionOpt = Annotated[str | None, typer.Option(help="auto, fp32, bf16 or fp16 (default auto: bf16 on CUDA).")]
ResumeOpt = Annotated[Path | None, typer.Option(help="Continue a run: its folder or its last.pt.")]
SaveEveryOpt = Annotated[int | None, typer.Option(help="Also write last.pt every N steps.")]
MaxStepsOpt = Annotated[int | None, typer.Option(help="Stop once the global step reaches N (resume later).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override any config key: section.key=value.")]
