"""Pretraining: ``run_pretrain`` turns a RunConfig into a run folder, with the pretext chosen from the registry
``mocli.pretexts.PRETEXTS`` (MotionBERT's lift by default). Finetuning (``mocli.finetune``) runs the same loop.

The machinery lives in ``mocli.training``: the ``Trainer`` (AdamW with a backbone and a head learning rate, the
schedule, gradient clipping, autocast, an optional compiled forward, DDP under torchrun), ``fit`` (epochs,
validation, checkpoints, exact resume), the logs and plots, and the lift task.

Run folder ``runs/pretrain/<name>``:

    config.json   the resolved RunConfig (plus a "_resolved" block: device, precision, processes, data counts)
    log.jsonl     one JSON object per row: {"kind": "train", "step", "epoch", "lr", "loss", terms, "samples_per_s"}
                  every ``log_every`` steps, {"kind": "val", "step", "epoch", "val_loss", "val_mpjpe_mm", ...}
                  after each epoch
    log.csv       the same rows as CSV; curves.png: loss, validation MPJPE and learning rate against steps
    last.pt       training state, every ``train.save_every`` steps, ``train.save_minutes`` after the last write,
                  and at the end of each epoch and run (``mocli.training.loop``)
    best.pt       plain model checkpoint of the epoch with the lowest validation MPJPE (lowest train loss if there
                  is no validation split)
    model.pt      plain model checkpoint at the end of the run
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mocli.config import RunConfig, config_from_dict
from mocli.data.sources import MotionSource
from mocli.pretexts import PRETEXTS, get_pretext
from mocli.training.lift_task import LiftTask, StmoLiftTask
from mocli.training.logs import Reporter
from mocli.training.loop import FitResult, fit
from mocli.training.runs import check_common, load_training_state, new_run_dir, write_config
from mocli.training.trainer import Trainer, init_distributed, leave_distributed

__all__ = ["PRETEXTS", "check_config", "resume_config", "run_pretrain"]
__all__ += ["FitResult", "LiftTask", "StmoLiftTask", "Trainer"]  # from mocli.training, for scripts and tests


def check_config(cfg: RunConfig, world: int = 1, ckpt: dict[str, Any] | None = None) -> None:
    """Raise a one-line MocliError for settings that cannot work (before any data is read): the checks every run
    shares, then the pretext's own (``ckpt``: the loaded last.pt of a resumed run)."""
    pretext = get_pretext(cfg.pretext)
    check_common(cfg, world)
    pretext.check_config(cfg, world, ckpt)


def resume_config(path: str | os.PathLike) -> tuple[RunConfig, dict[str, Any], Path]:
    """The saved RunConfig, the loaded last.pt and the run folder, from a run folder or a last.pt path."""
    ckpt, ckpt_path = load_training_state(path)
    return config_from_dict(ckpt["train_config"]), ckpt, ckpt_path.parent


def run_pretrain(
    cfg: RunConfig,
    *,
    resume: dict[str, Any] | None = None,
    run_dir: Path | None = None,
    reporter: Reporter | None = None,
    sources: list[MotionSource] | None = None,
) -> FitResult:
    """Pretrain a DSTformer (or an STMO) as ``cfg`` says and write the run folder.

    Args:
        cfg: the resolved config (``cfg.pretext`` one of ``PRETEXTS``).
        resume: a loaded last.pt (see ``resume_config``) to continue from, with ``run_dir`` its folder.
        reporter: progress display (default: logging).
        sources: in-memory sequences instead of ``cfg.data.paths`` (tests, scripts).
    """
    info, device = init_distributed(cfg.device)
    owns_group, completed = info.world > 1, False
    try:
        check_config(cfg, info.world, resume)
        model, task, train_set, val_set = get_pretext(cfg.pretext).build(cfg, sources, resume)
        run_dir = run_dir or new_run_dir(cfg, info)
        trainer = Trainer(model, task, cfg, device, info)
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_config(
                run_dir, cfg, trainer, train_clips=len(train_set), train_clips_2d=int(train_set.index.is_2d.sum()),
                val_clips=len(val_set) if val_set is not None else 0,
            )  # fmt: skip
        result = fit(trainer, train_set, val_set, run_dir, arch=cfg.model, reporter=reporter, resume_from=resume)
        completed = True
        return result
    finally:
        if owns_group:
            leave_distributed(completed)
