"""``mocli prepare dataset KIND SRC... --out X.h5`` and ``mocli prepare inspect X.h5``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from mocli.cli.options import ExistingFile, OutPath, console, err_console, get_settings
from mocli.errors import InputError


class Kind(str, Enum):
    bvh = "bvh"
    amc = "amc"
    h36m = "h36m"
    amass = "amass"
    ntu = "ntu"
    mesh = "mesh"
    posetrack = "posetrack"
    instavariety = "instavariety"


class SplitRule(str, Enum):
    native = "native"
    mod10 = "mod10"
    train = "train"


class Units(str, Enum):
    auto = "auto"
    m = "m"
    cm = "cm"
    mm = "mm"


class Trunk(str, Enum):
    detector = "detector"
    rig = "rig"


DATASET_HELP = """Convert a dataset into one mocli HDF5 file (H36M-17 joints; schema in docs/hdf5.md).

KIND and SRC (files, folders searched recursively, or .tar.xz archives):

  bvh           *.bvh mocap, any rig with named joints (+ Bandai label .json)
  amc           *.amc mocap + the .asf skeleton beside them (HDM05, CMU)
  h36m          MotionBERT h36m_sh_conf_cam_source_final.pkl, or VideoPose3D
                data_3d_h36m.npz + data_2d_h36m_*.npz
  amass         AMASS *.npz (needs --smpl-model and --regressor)
  ntu           PYSKL ntu60_hrnet.pkl / ntu120_hrnet.pkl, or raw *.skeleton
                (+ the missing-skeleton .txt) -> keypoints2d, label
  mesh          MotionBERT mesh pkl -> keypoints2d, smpl_pose, smpl_shape
  posetrack     PoseTrack json (one per video) -> keypoints2d per track
  instavariety  *.npy (T, J, 3) pixels + confidence per clip

bvh and amc give joints3d in metres, world frame, +Y up; amc clips are taken
as 120 fps unless --native-fps says otherwise.

[b]Examples[/b]

  mocli prepare dataset bvh /data/bandai --out bandai.h5
  mocli prepare dataset bvh cmu_dance.tar.xz --out cmu.h5 \\
      --native-fps 'salsa/*=60' --fps 30
  mocli prepare dataset amc hdm05.tar.xz --out hdm05.h5
  mocli prepare dataset h36m h36m_sh_conf_cam_source_final.pkl --out h36m.h5
  mocli prepare inspect bandai.h5
"""

Src = Annotated[list[Path], typer.Argument(exists=True, help="Input files, folders or tar archives.")]
_MODEL = "Body model (amass)"
_2D = "2D inputs"


def register(app: typer.Typer) -> None:
    """Add the ``dataset`` and ``inspect`` commands to ``mocli prepare``."""
    app.command("dataset", help=DATASET_HELP, no_args_is_help=True)(dataset)
    app.command("inspect", no_args_is_help=True)(inspect)


def _parse_native_fps(values: list[str]) -> dict[str, float]:
    """['salsa/*=60', '25'] -> {'salsa/*': 60.0, '*': 25.0}."""
    out: dict[str, float] = {}
    for v in values:
        pattern, _, fps = v.rpartition("=")
        try:
            out[pattern or "*"] = float(fps)
        except ValueError:
            raise InputError(f"--native-fps {v!r}: expected FPS or PATTERN=FPS, e.g. 'salsa/*=60'") from None
    return out


def _progress_bar(kind: str, quiet: bool):
    """A function wrapping the task list in a rich progress bar on stderr."""

    def wrap(tasks: list) -> Iterator:
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[file]}", style="dim"),
        )
        with Progress(*columns, console=err_console, disable=quiet) as bar:
            handle = bar.add_task(kind, total=len(tasks), file="")
            for task in tasks:
                bar.update(handle, file=task.relpath[-50:])
                yield task
                bar.advance(handle)

    return wrap


def dataset(
    ctx: typer.Context,
    kind: Annotated[Kind, typer.Argument(help="Dataset format (see above).", show_default=False)],
    src: Src,
    out: OutPath,
    fps: Annotated[
        float | None, typer.Option(help="Resample to this frame rate (default: keep the native rate).")
    ] = None,
    split_rule: Annotated[
        SplitRule | None,
        typer.Option(help="native: the dataset's split; mod10: sorted paths, every 10th is val; train: all train."),
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source name to record (default: folder/archive name).")] = None,
    native_fps: Annotated[
        list[str], typer.Option(help="True frame rate, FPS or PATTERN=FPS on the relative path (repeatable).")
    ] = [],  # noqa: B006 (typer needs a literal default)
    units: Annotated[
        Units, typer.Option(help="BVH units (auto: from the body size); ASF base unit (auto: inch).")
    ] = Units.auto,
    up: Annotated[str, typer.Option(help="BVH/ASF up axis: auto, y, z, -y, ... (output is always +Y up).")] = "auto",
    min_frames: Annotated[int, typer.Option(help="Skip sequences shorter than this.")] = 1,
    trunk: Annotated[
        Trunk,
        typer.Option(help="BVH/ASF pelvis, spine, thorax: from hips and shoulders as a detector's, or the rig's."),
    ] = Trunk.detector,
    layout: Annotated[
        str | None, typer.Option(help="Layout of 2D input: coco, h36m, halpe, ...", rich_help_panel=_2D)
    ] = None,
    benchmark: Annotated[str, typer.Option(help="NTU split: xsub, xview, xset.", rich_help_panel=_2D)] = "xsub",
    smpl_model: Annotated[
        Path | None, typer.Option(help="SMPL/SMPL-H model file.", exists=True, dir_okay=False, rich_help_panel=_MODEL)
    ] = None,
    regressor: Annotated[
        Path | None,
        typer.Option(help="(17, V) H36M regressor .npy.", exists=True, dir_okay=False, rich_help_panel=_MODEL),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out file.")] = False,
) -> None:
    from mocli.data.converters import ConvertOptions, convert_dataset

    settings = get_settings(ctx)
    opts = ConvertOptions(
        fps=fps,
        units=units.value,
        up_axis=up,
        split_rule=split_rule.value if split_rule else None,
        source=source,
        native_fps=_parse_native_fps(native_fps),
        layout=layout,
        smpl_model=smpl_model,
        regressor=regressor,
        benchmark=benchmark,
        min_frames=min_frames,
        trunk=trunk.value,
    )
    progress = _progress_bar(kind.value, settings.quiet)
    report = convert_dataset(kind.value, src, out, opts, progress=progress, overwrite=overwrite)
    table = Table(title=f"{out} ({report.seconds:.1f} s)", title_justify="left")
    for col in ("split", "sequences", "frames"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for split in sorted(report.sequences):
        table.add_row(split, str(report.sequences[split]), str(report.frames[split]))
    console.print(table)
    if len(report.frames_by_source) > 1:
        console.print("frames per source: " + ", ".join(f"{s} {n}" for s, n in sorted(report.frames_by_source.items())))
    if report.failures:
        for f in report.failures:
            error = f.error.removeprefix(f"{Path(f.path).name}: ")  # most errors start with the file name
            err_console.print(f"[red]failed[/] {f.path}: {error}", highlight=False, soft_wrap=True)
        err_console.print(f"[bold red]{len(report.failures)} file(s) failed[/]; the others are in {out}")
        raise typer.Exit(1)


def inspect(
    path: ExistingFile,
    check: Annotated[bool, typer.Option("--check", help="Also validate every array against the schema.")] = False,
    names: Annotated[int, typer.Option(help="List the first N sequence names.")] = 0,
) -> None:
    """Summarise a mocli HDF5 file: schema, kind, sequences and frames per split, arrays, fps, labels.

    [b]Examples[/b]

      mocli prepare inspect bandai.h5
      mocli prepare inspect bandai.h5 --check --names 20
    """
    from mocli.data.h5 import open_dataset, validate_dataset

    with open_dataset(path) as ds:
        refs = list(ds)
        console.print(
            f"[bold]{path.name}[/]  schema {ds.schema}, kind [cyan]{ds.kind}[/], source {ds.source or '-'}, "
            f"{ds.attrs.get('created_by', '?')}",
            highlight=False,
        )
        console.print(_split_table(refs))
        arrays = Counter(a for r in refs for a in r.array_names)
        shapes = {a: _symbolic_shape(a, next(r for r in refs if a in r.array_names).shape(a)) for a in arrays}
        console.print("arrays: " + ", ".join(f"{a} {shapes[a]} x{n}" for a, n in arrays.items()), highlight=False)
        fps = Counter(round(r.fps, 3) for r in refs)
        console.print("fps: " + ", ".join(f"{f:g} ({n})" for f, n in sorted(fps.items())), highlight=False)
        for key in ("subject", "action", "content_label", "style_label", "label"):
            values = Counter(str(r.attrs[key]) for r in refs if r.attrs.get(key) not in (None, ""))
            if values:
                top = ", ".join(f"{v} {n}" for v, n in values.most_common(12))
                more = f" (+{len(values) - 12} more)" if len(values) > 12 else ""
                console.print(f"{key}: {len(values)} values: {top}{more}", highlight=False)
        for r in refs[:names]:
            console.print(f"  {r.name}  {r.split}  {r.num_frames} frames @ {r.fps:g}", highlight=False)
    if check:
        problems = validate_dataset(path, check_values=True)
        for p in problems[:50]:
            err_console.print(f"[red]invalid[/] {p}", highlight=False)
        if problems:
            err_console.print(f"[bold red]{len(problems)} problem(s)[/]")
            raise typer.Exit(1)
        console.print("[green]valid[/]")


def _symbolic_shape(array: str, shape: tuple[int, ...]) -> str:
    """(2151, 17, 3) -> '(T, 17, 3)'; (2, 90, 17, 3) -> '(M, T, 17, 3)'; a static smpl_shape stays '(10)'."""
    dims = [str(d) for d in shape]
    if array in ("keypoints2d", "joints3d", "joints3d_image") and len(dims) >= 3:
        dims[-3] = "T"
        if len(dims) == 4:
            dims[0] = "M"
    elif not (array == "smpl_shape" and len(dims) == 1) and dims:
        dims[0] = "T"
    return f"({', '.join(dims)})"


def _split_table(refs: list) -> Table:
    table = Table(box=None, pad_edge=False)
    for col in ("split", "sequences", "frames", "hours", "min/median/max frames"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split in ("train", "val", "test"):
        sel = [r for r in refs if r.split == split]
        if not sel:
            continue
        lengths = sorted(r.num_frames for r in sel)
        hours = sum(r.num_frames / r.fps for r in sel) / 3600
        spread = f"{lengths[0]}/{lengths[len(lengths) // 2]}/{lengths[-1]}"
        table.add_row(split, str(len(sel)), str(sum(lengths)), f"{hours:.2f}", spread)
    return table
