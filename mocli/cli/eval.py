"""``mocli eval``: benchmarks. Here the 3D pose ones: ``h36m`` (Human3.6M, the papers' protocols), ``mocap`` and
``generalisation`` (mocli's own: training actors, and people, motions and cameras held out of training); the task
heads' (``ntu``, ``ntu120-oneshot``, ``mesh``) are in ``mocli.cli.eval_tasks``. The options and helpers below are
shared by both modules."""

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
    help="Benchmarks: Human3.6M as the papers evaluate it, mocli's mocap and generalisation benchmarks, NTU RGB+D.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


class Cameras(str, Enum):
    model = "model"
    standard = "standard"


class Protocol(str, Enum):
    p1 = "1"
    p2 = "2"
    all = "all"


class Frames(str, Enum):
    reference = "reference"
    all = "all"


class Input2D(str, Enum):
    detected = "detected"
    gt = "gt"


H36M_HELP = """Human3.6M 3D pose: P1 MPJPE and P2 PA-MPJPE (mm) per action, as MotionBERT evaluates.

--data: MotionBERT's [b]h36m_sh_conf_cam_source_final.pkl[/b], VideoPose3D's [b]data_2d_h36m_cpn_ft_h36m_dbb.npz[/b]
(with data_3d_h36m.npz beside it, or both paths), a folder holding either, or a mocli .h5 from
`mocli prepare dataset h36m`. Test subjects S9 and S11; the three broken S9 recordings excluded as the reference
does. The paper's number is the mean over the 15 actions.

--frames reference (default) is MotionBERT's protocol: clips of the model's clip length (243 for MotionBERT) at
multiples of it, the tail after the last whole clip not scored, a shorter video resampled to one clip (evenly
spaced frames); --frames all scores every frame once (mocli's option). The model's convention (rootrel, gt_2d,
flip) comes from the checkpoint: recorded by `mocli weights import motionbert --config`, or a mocli model's
training config; the options override it.

[b]Examples[/b]

  mocli eval h36m --data h36m_sh_conf_cam_source_final.pkl --model mb-h36m.pt
  mocli --device cuda eval h36m --data h36m.h5 --model mb-h36m.pt --protocol 1
  mocli eval h36m --data h36m.h5 --model mb-h36m.pt --frames all --no-rootrel
  mocli eval h36m --data data_2d_h36m_cpn_ft_h36m_dbb.npz --model mb-h36m.pt
  mocli eval h36m --data h36m.h5 --model mb-h36m.pt --input-2d gt --json p1
"""

MOCAP_HELP = """mocli's benchmark: lifting on the validation split of real motion capture (mocli .h5 files).

Each validation sequence is seen through one fixed virtual camera (seeded by --seed and the sequence name), from
the ranges the model was trained with; inputs are made exactly as in training (no flip, no masks), clean and with
MotionBERT's detection-noise model. MPJPE, PA-MPJPE (mm) and acceleration error (mm/frame²) per source and action.
--action-model adds action recognition: top-1/top-5 (%) per source on the labelled sequences, made exactly as the
finetuning validation makes them (the checkpoint's label key, data settings and seed; one fixed camera each).

[b]Examples[/b]

  mocli eval mocap --data bandai.h5 --data cmu_dance.h5 --data reactidle.h5
  mocli eval mocap --data bandai.h5 --action-model runs/finetune/bandai
  mocli --seed 1 eval mocap --data bandai.h5 --model runs/pretrain/s --no-flip
"""

GENERALISATION_HELP = """mocli's generalisation benchmark: people, motions and cameras that training never saw.

Scores only held-out sequences (HDM05 actors mm and tr, HDM05 lieDownFloor and throwBasketball, ReActIdle person
012; a lifter trained with data.holdout=true never sees them) in eight groups: people, motions, idle (cameras of
the first lifters' training range), high (pitch 45-60 deg), low (pitch -20 to -5 deg), tele (FOV 10-20 deg), wide
(FOV 90-110 deg) and 60fps. Cameras are the benchmark's own, whatever the model was trained with. MPJPE and
PA-MPJPE (mm), clean and with MotionBERT's detection noise, per group; the headline is the mean over groups.
Run `mocli eval mocap` beside it for the training actors (docs/eval.md).

[b]Examples[/b]

  mocli eval generalisation --data hdm05.h5 --data reactidle.h5
  mocli eval generalisation --data hdm05.h5 --model v7.pt --json gen.json
"""

DataOption = Annotated[list[Path], typer.Option("--data", help="Data file (repeat for several).", show_default=False)]
JsonOption = Annotated[Path | None, typer.Option("--json", help="Also write every figure to this JSON file.")]
ClipLenOption = Annotated[
    int | None, typer.Option(min=1, help="Frames per window (default: the model's training clip length).")
]
BatchOption = Annotated[int, typer.Option(min=1, help="Windows per forward pass.")]
FlipOption = Annotated[bool, typer.Option(help="Flip test-time augmentation.")]
UprightOption = Annotated[
    bool, typer.Option(help="Lift a body lying across the image rolled upright, as `mocli infer` does.")
]
LimbDepthOption = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=1.0,
        help="Set each window's limb depths as `mocli infer --limb-depth` does, with this strength (0: the model's).",
    ),
]
RootrelOption = Annotated[
    bool | None, typer.Option("--rootrel/--no-rootrel", help="Set the predicted root to 0 (default: the checkpoint's).")
]
Gt2dOption = Annotated[
    bool | None, typer.Option("--gt-2d/--no-gt-2d", help="Predicted x, y := the input's (default: the checkpoint's).")
]


def register(root: typer.Typer) -> None:
    """Add ``eval`` to the root app: the pose benchmarks here, then the task heads' (``mocli.cli.eval_tasks``)."""
    from mocli.cli import eval_tasks

    eval_tasks.add_commands(app)
    root.add_typer(app, name="eval")


def load_lifter_info(name: str | None, device: Any):
    """The lifter ``name`` names (default: ``dstformer-small.mocap``, the lifter for exact 2D) and its report info
    (path, arch, meta)."""
    from mocli.api import load_lifter
    from mocli.models.registry import default_weights, resolve_weights

    path = resolve_weights(name) if name else default_weights()
    lifter = load_lifter(path, device=str(device))
    info = getattr(lifter, "checkpoint_info", {}) or {}
    return lifter, {"path": str(path), "arch": (info.get("arch") or {}).get("name"), "meta": info.get("meta", {})}


def clip_len_of(lifter, requested: int | None) -> int:
    """The window length to evaluate with: ``requested``, else the model's training clip length."""
    from mocli.evaluation.runner import model_clip_len

    clip = requested or model_clip_len(lifter)
    if clip > lifter.cfg.maxlen:
        raise MocliError(f"--clip-len {clip} exceeds the model's maximum of {lifter.cfg.maxlen} frames")
    return clip


def finish(report, json_path: Path | None, quiet: bool) -> None:
    """Print a report, and write it as JSON when asked."""
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
    frames: Annotated[
        Frames, typer.Option(help="reference: MotionBERT's whole clips (tails not scored); all: every frame once.")
    ] = Frames.reference,
    rootrel: RootrelOption = None,
    gt_2d: Gt2dOption = None,
    input_2d: Annotated[
        Input2D, typer.Option(help="Model input: detected 2D, or the label's 2D with confidence 1.")
    ] = Input2D.detected,
    flip: Annotated[
        bool | None, typer.Option("--flip/--no-flip", help="Flip TTA (default: the checkpoint's, else on).")
    ] = None,
    json_path: JsonOption = None,
    clip_len: ClipLenOption = None,
    batch_size: BatchOption = 8,
) -> None:
    from mocli.cli.batch import progress_bar
    from mocli.evaluation.h36m import evaluate_h36m, load_test_set, resolve_paths
    from mocli.evaluation.h36m_protocol import convention_of
    from mocli.evaluation.runner import RunOptions
    from mocli.utils.device import resolve_device
    from mocli.utils.seed import seed_everything

    settings = get_settings(ctx)
    resolve_paths(data)  # bad paths fail before the model loads
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    lifter, model_info = load_lifter_info(model, device)
    convention = convention_of(getattr(lifter, "checkpoint_info", {})).override(rootrel=rootrel, gt_2d=gt_2d, flip=flip)
    if rootrel is None and convention.origin.startswith("assumed") and not settings.quiet:
        note = f"{model}: no evaluation convention recorded, rootrel {convention.rootrel} assumed (--rootrel to change)"
        err_console.print(note, highlight=False, soft_wrap=True)
    opts = RunOptions(clip_len_of(lifter, clip_len), flip=convention.flip, batch_size=batch_size, device=str(device))
    test_set = load_test_set(data)
    protocols = [1, 2] if protocol == Protocol.all else [int(protocol.value)]
    info = {"model": model_info, "device": str(device)}
    with progress_bar(settings.quiet) as progress:
        task = progress.add_task("h36m", total=sum(v.num_frames for v in test_set.scored))
        report = evaluate_h36m(
            test_set, lifter, convention, opts, frames.value, protocols, gt_input=input_2d == Input2D.gt, info=info,
            on_video=lambda video: progress.advance(task, video.num_frames),
        )  # fmt: skip
    finish(report, json_path, settings.quiet)


@app.command("mocap", help=MOCAP_HELP)
def mocap(
    ctx: typer.Context,
    data: DataOption,
    model: Annotated[
        str | None, typer.Option(help="Weights name or checkpoint path. Default: dstformer-small.mocap.")
    ] = None,
    noise: Annotated[bool, typer.Option(help="Score inputs with MotionBERT's detection noise.")] = True,
    clean: Annotated[bool, typer.Option(help="Score clean 2D inputs.")] = True,
    split: Annotated[str, typer.Option(help="Split to score: val, test or train.")] = "val",
    cameras: Annotated[
        Cameras, typer.Option(help="model: the model's training ranges; standard: the first lifters' (to compare).")
    ] = Cameras.model,
    flip: FlipOption = True,
    upright: UprightOption = True,
    limb_depth: LimbDepthOption = 0.0,
    json_path: JsonOption = None,
    clip_len: ClipLenOption = None,
    batch_size: BatchOption = 8,
    action_model: Annotated[
        str | None,
        typer.Option(help="Also score this action checkpoint: top-1/top-5 per source on the labelled sequences."),
    ] = None,
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
    if action_model is not None:  # a wrong action model fails now, not after the whole lifter evaluation
        from mocli.actions import load_action_model

        load_action_model(action_model, "cpu")
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    lifter, model_info = load_lifter_info(model, device)
    data_cfg = data_config_of(getattr(lifter, "checkpoint_info", {}) or {})
    opts = replace(options_from_data_config(data_cfg, clip_len_of(lifter, clip_len), seed=settings.seed), split=split)
    if cameras is Cameras.standard:
        from mocli.evaluation.generalisation import STANDARD_VIEW

        opts = replace(opts, view=STANDARD_VIEW)
    sequences = load_mocap_sequences(data, split=split, fps=opts.fps)
    variants = {}
    if clean:
        variants["clean"] = None
    if noise:
        variants["noisy"] = load_noise_model(data_cfg.noise_file or None)
    run = RunOptions(clip_len=opts.clip_len, flip=flip, batch_size=batch_size, device=str(device), upright=upright,
                     limb_depth=limb_depth)  # fmt: skip
    info = {"model": model_info, "data": [str(p) for p in data], "flip": flip, "upright": upright,
            "limb_depth": limb_depth,
            "device": str(device), "cameras": cameras.value,
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
    if action_model is not None:
        from mocli.evaluation.mocap import score_mocap_actions

        table = score_mocap_actions(data, action_model, split=split, batch_size=batch_size, device=str(device))
        report.tables.append(table)
        overall = table.summary_row("mean over frames").values
        report.headline.update({f"action {k} (%)": overall[k] for k in ("top1", "top5")})
        report.info["action_model"] = str(action_model)
    finish(report, json_path, settings.quiet)


@app.command("generalisation", help=GENERALISATION_HELP)
def generalisation(
    ctx: typer.Context,
    data: DataOption,
    model: Annotated[
        str | None, typer.Option(help="Weights name or checkpoint path. Default: dstformer-small.mocap.")
    ] = None,
    noise: Annotated[bool, typer.Option(help="Also score inputs with MotionBERT's detection noise.")] = True,
    flip: FlipOption = True,
    upright: UprightOption = True,
    limb_depth: LimbDepthOption = 0.0,
    json_path: JsonOption = None,
    batch_size: BatchOption = 8,
) -> None:
    from mocli.cli.batch import progress_bar
    from mocli.data.noise import load_noise_model
    from mocli.evaluation.generalisation import GROUPS, score_generalisation
    from mocli.evaluation.mocap import load_mocap_sequences
    from mocli.evaluation.runner import RunOptions, predict_windows
    from mocli.utils.device import resolve_device
    from mocli.utils.seed import seed_everything

    settings = get_settings(ctx)
    missing = [p for p in data if not p.is_file()]
    if missing:
        raise MocliError(f"no such dataset file: {missing[0]}")
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    lifter, model_info = load_lifter_info(model, device)
    clip_len = clip_len_of(lifter, None)
    sequences = load_mocap_sequences(data, split=None)
    variants = {"clean": None}
    if noise:
        variants["noisy"] = load_noise_model()
    run = RunOptions(clip_len=clip_len, flip=flip, batch_size=batch_size, device=str(device), upright=upright,
                     limb_depth=limb_depth)  # fmt: skip
    info = {"model": model_info, "data": [str(p) for p in data], "flip": flip, "upright": upright,
            "limb_depth": limb_depth,
            "device": str(device)}  # fmt: skip
    with progress_bar(settings.quiet) as progress:
        task = progress.add_task("groups", total=len(GROUPS))
        report = score_generalisation(
            sequences,
            lambda windows: predict_windows(lifter, windows.inputs, run),
            clip_len,
            variants,
            seed=settings.seed,
            info=info,
            on_group=lambda group, frames: progress.advance(task),
        )
    finish(report, json_path, settings.quiet)
