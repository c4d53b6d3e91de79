"""What every training run shares around the loop: its folder, the checkpoints it starts from (``--init``) or
continues (``--resume``), config.json, and the checks of settings every run has."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from mocli.config import DataConfig, TrainingConfig, config_to_dict
from mocli.data.sources import MotionSource, load_sources
from mocli.errors import MocliError
from mocli.models.checkpoint import load_checkpoint, model_from_checkpoint
from mocli.models.registry import resolve_weights
from mocli.training.trainer import DistInfo, Trainer, lr_factor
from mocli.utils.device import PRECISIONS
from mocli.utils.io import atomic_path

__all__ = [
    "load_training_state",
    "load_init",
    "init_encoder",
    "new_run_dir",
    "split_sources",
    "check_common",
    "write_config",
]

log = logging.getLogger(__name__)


def load_training_state(path: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """The loaded last.pt (with optimizer and data position) and its path, from a run folder or a last.pt path."""
    path = Path(path)
    ckpt_path = path / "last.pt" if path.is_dir() else path
    if not ckpt_path.is_file():
        raise MocliError(f"--resume {path}: no last.pt there (nothing to resume)")
    ckpt = load_checkpoint(ckpt_path)
    if "data_position" not in ckpt or "optimizer" not in ckpt:
        raise MocliError(f"--resume {ckpt_path}: a model checkpoint without training state (use last.pt)")
    return ckpt, ckpt_path


def load_init(init: str) -> dict[str, Any] | None:
    """The checkpoint to start from: None for 'scratch'; a pretrain/finetune run folder (its model.pt, else best.pt,
    else last.pt); a mocli checkpoint file; or a weights name (``mocli weights list``, e.g. imported MotionBERT)."""
    if init.strip().lower() in ("", "scratch"):
        return None
    log.info("initialising from %s", resolve_weights(init))
    return load_checkpoint(init)


def init_encoder(cfg: TrainingConfig) -> nn.Module:
    """The encoder of ``cfg.init`` (continued pretraining); its architecture replaces ``cfg.model``."""
    ckpt = load_init(cfg.init)
    model = model_from_checkpoint(ckpt, f"--init {cfg.init}")
    arch = ckpt["arch"]["name"]
    if cfg.model != arch:
        log.info("--init: architecture %s (from the checkpoint) replaces %s", arch, cfg.model)
        cfg.model = arch
    return model


def new_run_dir(cfg: TrainingConfig, info: DistInfo) -> Path:
    """``out_dir/<name>``: a new folder (an unused 'run', 'run2', ... without a name); agreed by all processes."""
    base = Path(cfg.out_dir)
    if cfg.name:
        run_dir = base / cfg.name
        if (run_dir / "last.pt").exists():
            raise MocliError(f"{run_dir} already holds a run: add --resume {run_dir}, or choose another --name")
    else:
        k = 1
        while (base / ("run" if k == 1 else f"run{k}")).exists():
            k += 1
        run_dir = base / ("run" if k == 1 else f"run{k}")
    if info.world > 1:
        shared = [str(run_dir)]
        dist.broadcast_object_list(shared, src=0)
        run_dir = Path(shared[0])
    return run_dir


def split_sources(sources: list[MotionSource], paths: list[str]) -> tuple[list[MotionSource], list[MotionSource]]:
    """(training sources (split 'train'), validation sources (split 'val')); no training source is an error that
    names ``paths``."""
    train = [s for s in sources if s.split == "train"]
    val = [s for s in sources if s.split == "val"]
    if not train:
        raise MocliError(f"no training sequences (split 'train') with 3D joints or 2D keypoints in {', '.join(paths)}")
    return train, val


def check_repeat(paths: list[str], repeat: tuple[int, ...]) -> None:
    """A one-line MocliError unless ``repeat`` is empty or gives one count >= 1 per data file."""
    if repeat and (len(repeat) != len(paths) or min(repeat) < 1):
        raise MocliError(f"data.repeat needs one count >= 1 per data file ({len(paths)}), got {list(repeat)}")


def repeat_sources(sources: list[MotionSource], paths: list[str], repeat: tuple[int, ...]) -> list[MotionSource]:
    """The training sources with those of ``paths[i]`` listed ``repeat[i]`` times (``data.repeat``): a small file
    weighs more in every epoch, each copy of a clip with its own random augmentation. Empty ``repeat``: unchanged.

    Raises:
        MocliError: ``repeat`` does not give one count >= 1 per file, or two files of one name get other counts.
    """
    if not repeat:
        return sources
    check_repeat(paths, repeat)
    counts: dict[str, int] = {}
    for path, count in zip(paths, repeat, strict=True):
        if counts.setdefault(Path(path).name, count) != count:
            raise MocliError(f"data.repeat: two data files named {Path(path).name} with other counts")
    return [s for s in sources for _ in range(counts.get(s.origin, 1))]


def build_datasets(data: DataConfig, sources: list[MotionSource] | None, make: Callable[..., Any]) -> tuple[Any, Any]:
    """(training set, validation set or None) of a clip dataset: ``make(sources, train=..., stride=...)`` over the
    config's files (or the given sources), split by their 'train'/'val' split; validation clips every
    ``data.val_stride`` frames (else ``data.clip_len``). One-line MocliErrors: no files, no training sequence, no
    training sequence as long as a clip."""
    if sources is None:
        if not data.paths:
            raise MocliError("no training data: give --data FILE.h5 (see `mocli prepare dataset --help`)")
        sources = load_sources(data.paths, fps=data.fps, holdout=data.holdout)
    train, val = split_sources(sources, data.paths or ["the given sources"])
    train = repeat_sources(train, data.paths, data.repeat)
    train_set = make(train, train=True, stride=None)
    if len(train_set) == 0:
        longest = max(s.num_frames for s in train)
        raise MocliError(
            f"no training clips: the longest training sequence has {longest} frames < clip_len {data.clip_len}"
        )
    val_set = make(val, train=False, stride=data.val_stride or data.clip_len) if val else None
    return train_set, val_set


def check_common(cfg: TrainingConfig, world: int) -> None:
    """One-line MocliErrors for the settings every run has: projection, batch split over processes, precision,
    schedule, save interval, N-MPJPE scale bound, per-file repeat counts (before any data is read)."""
    if cfg.data.projection not in ("perspective", "orthographic"):
        raise MocliError(f"data.projection must be perspective or orthographic, not {cfg.data.projection!r}")
    if cfg.train.batch_size < 1 or cfg.train.batch_size % world:
        raise MocliError(f"batch {cfg.train.batch_size} does not split evenly over {world} process(es)")
    if cfg.train.precision not in PRECISIONS:
        raise MocliError(f"unknown precision {cfg.train.precision!r}: expected auto, fp32, bf16 or fp16")
    if cfg.train.save_minutes < 0 or cfg.train.save_every < 0:
        raise MocliError("train.save_every and train.save_minutes must be >= 0 (0: off)")
    lr_factor(cfg.train, 0, 0, 1)  # unknown schedule
    bound = cfg.loss.n_mpjpe_max_scale
    if bound != 0.0 and not bound > 1.0:
        raise MocliError(f"loss.n_mpjpe_max_scale must be 0 (unbounded) or above 1, got {bound}")
    if not cfg.loss.bone_length >= 0:
        raise MocliError(f"loss.bone_length must be >= 0 (0: off), got {cfg.loss.bone_length}")
    if cfg.data.paths:
        check_repeat(list(cfg.data.paths), tuple(cfg.data.repeat))


def write_config(run_dir: Path, cfg: TrainingConfig, trainer: Trainer, **resolved: Any) -> None:
    """config.json: the config plus a "_resolved" block (device, precision, processes, model config, parameter
    count, then ``resolved``, then the torch version)."""
    block = {
        "device": str(trainer.device),
        "precision": trainer.precision,
        "processes": trainer.info.world,
        "model_config": trainer.model.cfg.to_dict(),
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        **resolved,
        "torch": torch.__version__,
    }
    text = json.dumps({**config_to_dict(cfg), "_resolved": block}, indent=2)
    with atomic_path(run_dir / "config.json") as tmp:
        tmp.write_text(text + "\n")
