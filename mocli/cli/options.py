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
