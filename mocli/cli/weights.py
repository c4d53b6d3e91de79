"""``mocli weights``: list the shipped and imported weights, import released MotionBERT checkpoints."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from mocli.cli.options import console, err_console
from mocli.errors import MocliError

app = typer.Typer(
    help="""Model weights: what is available, and imports of released checkpoints.

[b]Examples[/b]

  mocli weights list
  mocli weights import motionbert MB_lite_global/best_epoch.bin --name mb-lite
  mocli weights info dstformer.mb-h36m
""",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

import_app = typer.Typer(help="Convert other tools' checkpoints into mocli checkpoints.", no_args_is_help=True)
app.add_typer(import_app, name="import")


class _Source(str, Enum):
    motionbert = "motionbert"


def _summary(path: Path) -> dict:
    from mocli.models.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    n_params = sum(v.numel() for k, v in ckpt["model"].items() if v.is_floating_point())
    return {
        "arch": ckpt["arch"]["name"],
        "params": n_params,
        "heads": ", ".join(["pose3d", *sorted(ckpt.get("heads", {}))]),
        "source": str(ckpt.get("meta", {}).get("source", "")),
        "license": str(ckpt.get("meta", {}).get("license", "")),
        "mb": path.stat().st_size / 2**20,
    }


@app.command("list")
def list_weights() -> None:
    """List shipped weights (installed with mocli) and imported ones (in the user weights folder).

    [b]Example[/b]:  mocli weights list
    """
    from mocli.models.registry import find_weights, shipped_weights_dir, user_weights_dir

    found = find_weights()
    rows, notes = [("name", "origin", "arch", "params", "size")], []
    for name, (origin, path) in found.items():
        try:
            s = _summary(path)
        except MocliError as e:
            rows.append((name, origin, "unreadable", "", ""))
            notes.append(str(e))
            continue
        rows.append((name, origin, s["arch"], f"{s['params'] / 1e6:.2f}M", f"{s['mb']:.1f} MB"))
        notes.append(f"heads: {s['heads']}" + (f"; source: {s['source']}" if s["source"] else ""))
    if found:
        # one line per weights file, names and figures whole at any width; its heads and source wrap below it
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for i, row in enumerate(rows):
            line = "  ".join(
                v.ljust(w) if c < 3 else v.rjust(w) for c, (v, w) in enumerate(zip(row, widths, strict=True))
            )
            console.print(Text(line.rstrip(), style="bold" if i == 0 else ""), soft_wrap=True)
            if i:
                console.print(Text(f"  {notes[i - 1]}", style="dim"))
    else:
        console.print("No weights found.")
    console.print(f"shipped: {shipped_weights_dir()}\nuser:    {user_weights_dir()}", highlight=False)


@app.command("info")
def info(name: Annotated[str, typer.Argument(help="A weights name from `mocli weights list`, or a path.")]) -> None:
    """Show what a checkpoint holds: architecture, heads, training config and metadata.

    [b]Example[/b]:  mocli weights info mb-h36m
    """
    from mocli.models.checkpoint import load_checkpoint
    from mocli.models.registry import resolve_weights

    path = resolve_weights(name)
    ckpt = load_checkpoint(path)
    console.print(f"[b]{path}[/b]  (mocli {ckpt.get('mocli_version', '?')}, format {ckpt['format_version']})")
    console.print({"arch": ckpt["arch"], "heads": sorted(ckpt.get("heads", {})), "meta": ckpt.get("meta", {})})
    if ckpt.get("train_config"):
        console.print({"train_config": ckpt["train_config"]})


@import_app.command("motionbert")
def import_motionbert(
    src: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A released MotionBERT file, e.g. best_epoch.bin.")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output checkpoint (.pt). Default: <user weights folder>/<name>.pt."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Name in the user weights folder when --out is not given.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="MotionBERT's YAML config of the run (e.g. configs/pose3d/MB_ft_h36m.yaml).")
    ] = None,
    num_heads: Annotated[
        int | None, typer.Option(min=1, help="Attention heads (not in the shapes; default: the config's, else 8).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Convert a released MotionBERT checkpoint (3D pose, action or mesh) into a mocli checkpoint.

    Every tensor name and shape is checked; a mismatch is named. The encoder's outputs are identical to the
    reference implementation's on the same input. --config reads MotionBERT's YAML config of the run, checks it
    against the weights and records the evaluation convention (rootrel, gt_2d, flip, no_conf, clip_len) that
    `mocli eval h36m` uses; without it a pose checkpoint gets rootrel False (the model's root output kept).

    [b]Examples[/b]

      mocli weights import motionbert MB_ft_h36m/best_epoch.bin --out mb-h36m.pt
      mocli weights import motionbert best_epoch.bin --config MB_ft_h36m.yaml
      mocli weights import motionbert NTU60_xsub/best_epoch.bin --name mb-ntu60
    """
    from mocli.models.checkpoint import save_checkpoint
    from mocli.models.motionbert import describe_convention
    from mocli.models.motionbert import import_motionbert as convert
    from mocli.models.registry import WEIGHTS_SUFFIX, user_weights_dir

    if out is None:
        stem = name or (src.parent.name if src.stem in ("best_epoch", "latest_epoch") else src.stem)
        out = user_weights_dir() / f"{stem}{WEIGHTS_SUFFIX}"
    if out.is_dir():
        raise MocliError(f"--out {out} is a folder; give a file name ending in .pt")
    if out.exists() and not overwrite:
        raise MocliError(f"{out} exists; pass --overwrite to replace it")
    ckpt = convert(src, num_heads=num_heads, config=config)
    save_checkpoint(ckpt, out)
    task = ckpt["meta"]["task"]
    n = sum(v.numel() for v in ckpt["model"].values())
    err_console.print(f"imported {task} model ({ckpt['arch']['name']}, {n:,} parameters)")
    convention = ckpt["meta"].get("eval_convention")
    if convention is not None:
        how = "assumed, no --config" if config is None else f"from {convention['from']}"
        err_console.print(
            f"evaluation convention ({how}): {describe_convention(convention)}", highlight=False, soft_wrap=True
        )
    console.print(str(out), highlight=False)


@app.command("export")
def export(
    src: Annotated[str, typer.Argument(help="A mocli checkpoint (e.g. runs/pretrain/NAME/best.pt) or weights name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output checkpoint (.pt).")],
    half: Annotated[bool, typer.Option(help="Store float tensors as float16 (loaded back as float32).")] = False,
    license_: Annotated[str | None, typer.Option("--license", help="License note stored in the metadata.")] = None,
    detector_3d_spread: Annotated[
        float | None,
        typer.Option(
            "--detector-3d-spread",
            help="Metres: the lifter's flip spread at which `mocli infer --detector-3d auto` gives the detector's 3D "
            "pose half the weight with these weights (default: the source's, else infer's 0.06).",
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Write a model checkpoint for shipping or sharing: weights and description only (no optimiser state).

    [b]Example[/b]:  mocli weights export runs/pretrain/small/best.pt --out weights/dstformer-small.mocap.pt --half
    """
    from mocli.models.checkpoint import load_checkpoint, shipping_copy
    from mocli.models.registry import resolve_weights

    path = resolve_weights(src)
    if out.exists() and not overwrite:
        raise MocliError(f"{out} exists; pass --overwrite to replace it")
    ckpt = load_checkpoint(path)
    shipped = shipping_copy(
        ckpt, half=half, license_=license_, exported_from=path.name, detector_3d_spread_m=detector_3d_spread
    )
    _write(shipped, out, "exported")


@app.command("average")
def average(
    srcs: Annotated[list[str], typer.Argument(help="Two or more checkpoints or weights names of one architecture.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output checkpoint (.pt).")],
    weight: Annotated[
        list[float] | None, typer.Option(help="Weight of each checkpoint, in order (repeat; default: equal).")
    ] = None,
    half: Annotated[bool, typer.Option(help="Store float tensors as float16 (loaded back as float32).")] = False,
    license_: Annotated[str | None, typer.Option("--license", help="License note stored in the metadata.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Average the weights of checkpoints trained on from one starting point (a "model soup") into one.

    [b]Example[/b]:  mocli weights average runs/pretrain/a/best.pt runs/pretrain/b/best.pt --out soup.pt --half
    """
    from mocli.models.checkpoint import average_checkpoints, load_checkpoint, shipping_copy
    from mocli.models.registry import resolve_weights

    paths = [resolve_weights(s) for s in srcs]
    if out.exists() and not overwrite:
        raise MocliError(f"{out} exists; pass --overwrite to replace it")
    ckpts = [load_checkpoint(p) for p in paths]
    names = [p.name if p.name not in ("best.pt", "last.pt", "model.pt") else f"{p.parent.name}/{p.name}" for p in paths]
    averaged = average_checkpoints(ckpts, weight or None, names)
    _write(shipping_copy(averaged, half=half, license_=license_, exported_from="average"), out, "averaged")


def _write(ckpt: dict, out: Path, verb: str) -> None:
    import torch

    from mocli.models.checkpoint import save_checkpoint

    save_checkpoint(ckpt, out)
    size = out.stat().st_size / 2**20
    n = sum(v.numel() for v in ckpt["model"].values() if isinstance(v, torch.Tensor))
    err_console.print(f"{verb} {ckpt['arch']['name']} ({n:,} values, {size:.1f} MB)")
    console.print(str(out), highlight=False)
