"""The ``mocli`` command: global options, and one sub-app per pipeline stage."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from mocli._version import __version__
from mocli.cli import eval as eval_cmd
from mocli.cli import finetune, infer, prepare, pretrain, weights
from mocli.cli.help import HelpGroup, apply_help_layout, click, is_usage_error, usage_error_line
from mocli.cli.options import Settings, err_console, setup_logging
from mocli.errors import MocliError


class _Group(HelpGroup):
    """Turns a MocliError raised anywhere below into one red line on stderr and exit code 1 (no traceback), and a
    usage error raised while running a command (an unknown command, a value its callback rejects) into one line and
    exit code 2; those raised while parsing are handled by ``HelpGroup``/``HelpCommand`` themselves."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.UsageError as e:
            if not is_usage_error(e):
                raise
            click.echo(usage_error_line(e), err=True)
            raise typer.Exit(2) from None
        except MocliError as e:
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None


HELP = """Videos of people to 3D motion: 2D keypoints, the DSTformer motion encoder, 3D joints, meshes, actions.

Global options (--device, --seed, -v, -q) come before the command: mocli --device cuda infer clip.mp4.

[b]Examples[/b]

  mocli weights list
  mocli weights import motionbert MB_ft_h36m/best_epoch.bin --out mb-h36m.pt
  mocli --device cpu --seed 0 weights list
"""

app = typer.Typer(
    name="mocli",
    cls=_Group,
    help=HELP,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# in the order of the data flow: video -> keypoints -> training -> 3D -> benchmarks
app.add_typer(prepare.app, name="prepare")
pretrain.register(app)
finetune.register(app)
infer.register(app)
eval_cmd.register(app)
app.add_typer(weights.app, name="weights")
apply_help_layout(app)  # --help that reflows at any width (mocli.cli.help)


def _version(value: bool) -> None:
    if value:
        import torch

        typer.echo(f"mocli {__version__} (torch {torch.__version__}, python {sys.version.split()[0]})")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for Python, numpy and torch.")] = 0,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    """Global options come before the subcommand."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device.strip().lower()):
        raise typer.BadParameter(f"{device!r}: expected auto, cpu, cuda or cuda:N", param_hint="--device")
    ctx.obj = Settings(device=device, seed=seed, verbosity=-1 if quiet else verbose)
    setup_logging(ctx.obj.verbosity)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
