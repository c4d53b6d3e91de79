"""``mocli eval``: benchmarks. ``h36m`` (Human3.6M, the papers' protocols) and ``mocap`` (mocli's own)."""

from __future__ import annotations

import logging
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from mocli.cli.options import console, err_console, get_settings
from mocli.errors import MocliError

log = logging.getLogger(__name__)

app = typer.Typer(
    name="eval",
    help="Benchmarks: Human3.6M as the papers evaluate it, and mocli's mocap benchmark.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


class Protocol(str, Enum):
    p1 = "1"
    p2 = "2"
    all = "all"


H36M_HELP = """Human3.6M 3D pose: P1 MPJPE and P2 PA-MPJPE (mm) per action, as MotionBERT evaluates.

--data: MotionBERT's [b]h36m_sh_conf_cam_source_final.pkl[/b], VideoPose3D's [b]data_2d_h36m_cpn_ft_h36m_dbb.npz[/b]
(with data_3d_h36m.npz beside it, or both paths), a folder holding either, or a mocli .h5 from
`mocli prepare dataset h36m`. Test subjects S9 and S11; every frame of every video scored exactly once; the three
broken S9 recordings excluded as the reference does. The paper's number is the mean over the 15 actions.

[b]Examples[/b]

  mocli eval h36m --data data/motion3d/h36m_sh_conf_cam_source_final.pkl --model mb-h36m.pt
  mocli --device cuda eval h36m --data h36m.h5 --model mb-h36m.pt --protocol 1 --json h36m.json
  mocli eval h36m --data data_2d_h36m_cpn_ft_h36m_dbb.npz --data data_3d_h36m.npz --model mb-h36m.pt --gt-2d
"""

MOCAP_HELP = """mocli's benchmark: lifting on the validation split of real motion capture (mocli .h5 files).

Each validation sequence is seen through one fixed virtual camera (seeded by --seed and the sequence name), from
the ranges the model was trained with; inputs are made exactly as in training (no flip, no masks), clean and with
MotionBERT's detection-noise model. MPJPE, PA-MPJPE (mm) and acceleration error (mm/frame²) per source and action.

[b]Examples[/b]

  mocli eval mocap --data bandai.h5 --data cmu_dance.h5 --data reactidle.h5
  mocli --seed 1 eval mocap --data bandai.h5 --model runs/pretrain/small/best.pt --no-noise --json mocap.json
"""

DataOption = Annotated[list[Path], typer.Option("--data", help="Data file (repeat for several).", show_default=False)]
JsonOption = Annotated[Path | None, typer.Option("--json", help="Also write every figure to this JSON file.")]
ClipLenOption = Annotated[
    int | None, typer.Option(min=1, help="Frames per window (default: the model's training clip length).")
]
BatchOption = Annotated[int, typer.Option(min=1, help="Windows per forward pass.")]
FlipOption = Annotated[bool, typer.Option(help="Flip test-time augmentation.")]


def register(root: typer.Typer) -> None:
    """Add ``eval`` (h36m, mocap) to the root app."""
    root.add_typer(app, name="eval")


def _load_lifter(name: str | None, device: Any):
    from mocli.api import load_model
    from mocli.models.registry import default_weights, resolve_weights

    path = resolve_weights(name) if name else default_weights()
    lifter = load_model(path, device=str(device))
    info = getattr(lifter, "checkpoint_info", {}) or {}
    return lifter, {"path": str(path), "arch": (info.get("arch") or {}).get("name"), "meta": info.get("meta", {})}


def _clip_len(lifter, requested: int | None) -> int:
    from mocli.evaluation.runner import model_clip_len

    clip = requested or model_clip_len(lifter)
    if clip > lifter.cfg.maxlen:
        raise MocliError(f"--clip-len {clip} exceeds the model's maximum of {lifter.cfg.maxlen} frames")
    return clip


def _finish(report, json_path: Path | None, quiet: bool) -> None:
    from mocli.evaluation.report import render_report, write_report

    render_report(report, console)
    if json_path is not None:
        write_report(report, json_path)
        if not quiet:
            err_console.print(f"wrote {json_path}", highlight=False)


@app.command("h36m", help=H36M_HELP)
def h36m(
    ctx: typer.Context,
    data: DataOption,
    model: Annotated[str, typer.Option(help="Weights name (`mocli weights list`) or checkpoint path.")],
    protocol: Annotated[Protocol, typer.Option(help="1 (MPJPE), 2 (PA-MPJPE) or all.")] = Protocol.all,
    gt_2d: Annotated[bool, typer.Option("--gt-2d", help="Ground-truth 2D input (confidence 1).")] = False,
    flip: FlipOption = True,
    json_path: JsonOption = None,
    clip_len: ClipLenOption = None,
    batch_size: BatchOption = 8,
) -> None:
    from mocli.cli.batch import progress_bar
    from mocli.evaluation.h36m import load_test_set, resolve_paths, score_h36m
    from mocli.evaluation.runner import RunOptions, predict_sequence
    from mocli.utils.device import resolve_device
    from mocli.utils.seed import seed_everything

    settings = get_settings(ctx)
    resolve_paths(data)  # bad paths fail before the model loads
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    lifter, model_info = _load_lifter(model, device)
    opts = RunOptions(clip_len=_clip_len(lifter, clip_len), flip=flip, batch_size=batch_size, device=str(device))
    test_set = load_test_set(data)
    protocols = [1, 2] if protocol == Protocol.all else [int(protocol.value)]
    info = {"model": model_info, "flip": flip, "gt_2d": gt_2d, "clip_len": opts.clip_len, "device": str(device)}
    with progress_bar(settings.quiet) as progress:
        task = progress.add_task("h36m", total=sum(v.num_frames for v in test_set.scored))
        report = score_h36m(
            test_set,
            lambda video: predict_sequence(lifter, video.model_input(gt_2d), opts),
            protocols,
            info=info,
            on_video=lambda video: progress.advance(task, video.num_frames),
        )
    _finish(report, json_path, settings.quiet)


@app.command("mocap", help=MOCAP_HELP)
def mocap(
    ctx: typer.Context,
    data: DataOption,
    model: Annotated[
        str | None, typer.Option(help="Weights name or checkpoint path. Default: the shipped lifter.")
    ] = None,
    noise: Annotated[bool, typer.Option(help="Score inputs with MotionBERT's detection noise.")] = True,
    clean: Annotated[bool, typer.Option(help="Score clean 2D inputs.")] = True,
    split: Annotated[str, typer.Option(help="Split to score: val, test or train.")] = "val",
    flip: FlipOption = True,
    json_path: JsonOption = None,
    clip_len: ClipLenOption = None,
    batch_size: BatchOption = 8,
) -> None:
    from mocli.cli.batch import progress_bar
    from mocli.data.noise import load_noise_model
    from mocli.evaluation.mocap import data_config_of, load_mocap_sequences, options_from_data_config, score_mocap
    from mocli.evaluation.runner import RunOptions, predict_windows
    from mocli.utils.device import resolve_device
    from mocli.utils.seed import seed_everything

    settings = get_settings(ctx)
    if not (noise or clean):
        raise MocliError("--no-noise and --no-clean leave nothing to score")
    missing = [p for p in data if not p.is_file()]
    if missing:
        raise MocliError(f"no such dataset file: {missing[0]}")
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    lifter, model_info = _load_lifter(model, device)
    data_cfg = data_config_of(getattr(lifter, "checkpoint_info", {}) or {})
    opts = replace(options_from_data_config(data_cfg, _clip_len(lifter, clip_len), seed=settings.seed), split=split)
    sequences = load_mocap_sequences(data, split=split, fps=opts.fps)
    variants = {}
    if clean:
        variants["clean"] = None
    if noise:
        variants["noisy"] = load_noise_model(data_cfg.noise_file or None)
    run = RunOptions(clip_len=opts.clip_len, flip=flip, batch_size=batch_size, device=str(device))
    info = {"model": model_info, "data": [str(p) for p in data], "flip": flip, "device": str(device),
            "noise_file": data_cfg.noise_file or "motionbert_noise.json (shipped)"}  # fmt: skip
    with progress_bar(settings.quiet) as progress:
        task = progress.add_task("mocap", total=sum(s.num_frames for s in sequences))
        report = score_mocap(
            sequences,
            lambda windows: predict_windows(lifter, windows.inputs, run),
            opts,
            variants,
            info=info,
            on_sequence=lambda seq: progress.advance(task, seq.num_frames),
        )
    _finish(report, json_path, settings.quiet)
