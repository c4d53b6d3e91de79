"""``mocli finetune TASK``: finetune the motion encoder with a task head (MotionBERT's downstream recipes).

Wired into the root app by ``register(app)``, which adds the single command ``finetune``.
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
    get_settings,
)
from mocli.cli.pretrain import RichReporter, _given

__all__ = ["register", "finetune", "FinetuneTask"]

HELP = """Finetune the motion encoder with a task head: 3D pose, actions, one-shot actions or SMPL meshes.

TASK is pose3d (the lift head on 3D data, clean 2D input), action (classes; NTU style, 2 persons; labelled
3D-only mocap is seen through random virtual cameras), action-oneshot (an embedding; novel classes held out and
recognised from one exemplar each) or mesh (SMPL; needs --smpl-dir or MOCLI_SMPL_DIR with SMPL_NEUTRAL.pkl/.npz,
smpl_mean_params.npz and J_regressor_h36m.npy).

--init starts from a pretrain run folder, a mocli checkpoint, a weights name (`mocli weights list`, e.g. an
imported MotionBERT file) or 'scratch' (the default; --model picks the architecture).

Writes runs/finetune/NAME/: config.json, log.jsonl, log.csv, curves.png, last.pt (training state; also written
every train.save_minutes, default 10), best.pt and model.pt (the encoder under 'model', the head under heads[TASK];
pose3d keeps its head in 'model').

Config: defaults < the task's preset finetune_TASK (MotionBERT's recipe) < --preset < options < --set section.key=value
(sections data, train, loss, head, mesh_loss; the pretexts' sections do not apply).

[b]Examples[/b]

  mocli finetune pose3d --data h36m.h5 --init runs/pretrain/lite1 --name h36m

  mocli finetune action --data ntu60.h5 --init mb-ntu60 --freeze-backbone

  mocli finetune action --data bandai.h5 --set head.label_key=content_label

  mocli finetune mesh --data pw3d.h5 --init runs/pretrain/a --smpl-dir ~/smpl

  mocli finetune --resume runs/finetune/h36m
"""


class FinetuneTask(str, Enum):
    pose3d = "pose3d"
    action = "action"
    action_oneshot = "action-oneshot"
    mesh = "mesh"


def register(app: typer.Typer) -> None:
    """Add the ``finetune`` command to ``app``."""
    app.command("finetune", help=HELP, no_args_is_help=True)(finetune)


Opt = typer.Option


def finetune(
    ctx: typer.Context,
    task: Annotated[FinetuneTask | None, typer.Argument(help="Task (not needed with --resume).")] = None,
    data: DataFilesOpt = None,
    init: Annotated[str | None, Opt(help="Pretrain run folder, checkpoint, weights name, or 'scratch'.")] = None,
    freeze_backbone: Annotated[bool, Opt("--freeze-backbone", help="Train the head only.")] = False,
    model: Annotated[str | None, Opt(help="Architecture when --init scratch (e.g. dstformer-lite).")] = None,
    smpl_dir: Annotated[Path | None, Opt(help="mesh: folder of the SMPL files (else $MOCLI_SMPL_DIR).")] = None,
    clip_len: Annotated[int | None, Opt(help="Frames per clip (the task's preset: 243; mesh 16).")] = None,
    stride: Annotated[int | None, Opt(help="Frames between clip starts (pose3d, mesh).")] = None,
    batch: Annotated[int | None, Opt(help="Global batch size.")] = None,
    epochs: Annotated[int | None, Opt(help="Epochs.")] = None,
    lr: Annotated[float | None, Opt(help="Encoder learning rate.")] = None,
    lr_head: Annotated[float | None, Opt(help="Head learning rate (0: the encoder's).")] = None,
    precision: TrainPrecisionOpt = None,
    name: Annotated[str | None, Opt(help="Run folder name under runs/finetune.")] = None,
    out_dir: Annotated[Path | None, Opt(help="Parent of run folders (default runs/finetune).")] = None,
    resume: ResumeOpt = None,
    save_every: SaveEveryOpt = None,
    max_steps: MaxStepsOpt = None,
    preset: Annotated[str | None, Opt(help="Preset name (mocli/presets) or JSON file, over the task's.")] = None,
    set_: SetOpt = None,
) -> None:
    from mocli.config import apply_dict, apply_overrides, load_preset
    from mocli.errors import MocliError
    from mocli.finetune import default_config, resume_finetune_config, run_finetune

    settings = get_settings(ctx)
    options: dict[str, Any] = {
        "init": init, "model": model, "name": name, "out_dir": str(out_dir) if out_dir else None,
        "max_steps": max_steps, "freeze_backbone": True if freeze_backbone else None,
        "data": {"paths": [str(p.resolve()) for p in data] if data else None, "clip_len": clip_len,
                 "stride": stride},
        "train": {"batch_size": batch, "epochs": epochs, "lr": lr, "lr_head": lr_head, "precision": precision,
                  "save_every": save_every},
        "head": {"smpl_dir": str(smpl_dir.expanduser()) if smpl_dir else None},
    }  # fmt: skip
    ckpt, run_dir = None, None
    if resume is not None:
        cfg, ckpt, run_dir = resume_finetune_config(resume)
        cfg.max_steps = 0  # a per-invocation limit, not part of the recipe
        if task is not None and task.value != cfg.task:
            raise MocliError(f"--resume {resume} is a {cfg.task} run, not {task.value}")
    else:
        if task is None:
            raise MocliError("give a TASK (pose3d, action, action-oneshot or mesh), or --resume RUN")
        if model and init and init.strip().lower() != "scratch":
            raise MocliError("--model applies to --init scratch only: the architecture comes from the checkpoint")
        cfg = default_config(task.value, seed=settings.seed)
        if preset:
            apply_dict(cfg, load_preset(preset))
    cfg.device = settings.device
    apply_dict(cfg, _given(options))
    apply_overrides(cfg, set_ or [])
    reporter = _Reporter() if not settings.quiet and os.environ.get("RANK", "0") == "0" else None
    result = run_finetune(cfg, resume=ckpt, run_dir=run_dir, reporter=reporter)
    if os.environ.get("RANK", "0") == "0":
        state = "finished" if result.finished else f"stopped at step {result.global_step} (continue with --resume)"
        best = result.best
        best_text = f"; best {best['metric']} {best['value']:.4g} (epoch {best['epoch'] + 1})" if best["metric"] else ""
        console.print(f"{result.run_dir}: {state}{best_text}", highlight=False, soft_wrap=True)


class _Reporter(RichReporter):
    """The pretrain progress bar, labelled 'finetune'."""

    def __init__(self) -> None:
        from rich.progress import TextColumn

        super().__init__()
        self.progress.columns = (TextColumn("[bold]finetune"), *self.progress.columns[1:])
