"""``fit``: the one training loop, for pretraining and every finetune task.

A *task* (``mocli.training.trainer.Task``) turns a batch into a loss and validation sums; the loop owns epochs,
validation, checkpoints, logs and exact resume. Files written to the run folder:

    log.jsonl     training rows every ``train.log_every`` steps and a validation row after each epoch
                  (``mocli.training.logs.RunLog``); log.csv and curves.png are views of it
    last.pt       training state: a mocli checkpoint (loadable by ``mocli.load_model``) plus optimizer, scaler,
                  RNG states and data position; written at the end of each epoch and run, every
                  ``train.save_every`` steps, and once ``train.save_minutes`` passed since the last write (so a
                  run killed inside its first epoch keeps its progress)
    best.pt       plain model checkpoint of the epoch with the lowest validation metric (``task.best_metric``;
                  the lowest train loss if there is no validation split)
    model.pt      plain model checkpoint at the end of the run

Exact resume: every random choice of a sample is keyed by (seed, epoch, clip), the epoch's order by (seed, epoch),
and the checkpoint stores the position (epoch, step within the epoch), so a resumed run repeats the uninterrupted
one step for step (same losses, same parameters). Global RNG states (python, numpy, torch) are saved and restored
as well, for tasks that use them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mocli.config import config_to_dict
from mocli.data.clips import StepBatchSampler, epoch_order
from mocli.errors import MocliError
from mocli.models.checkpoint import build_checkpoint, save_checkpoint
from mocli.training.logs import LogReporter, Reporter, RunLog, SilentReporter
from mocli.training.trainer import DistInfo, Trainer, all_mean, lr_factor, rng_state, set_rng_state

__all__ = ["FitResult", "fit"]

_now = time.monotonic  # seconds, for the time-based save of last.pt (tests replace it with a fake clock)


@dataclass
class FitResult:
    run_dir: Path
    global_step: int
    epoch: int
    best: dict[str, Any]
    last_val: dict[str, float]
    finished: bool


@dataclass
class _Position:
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0


@dataclass
class _Window:
    """Running sums (0-dim float64 tensors, this process's) of the logged terms since the last train row."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    count: int = 0
    seconds: float = 0.0

    def add(self, terms: dict[str, torch.Tensor], seconds: float) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.detach().double().reshape(())
        self.count += 1
        self.seconds += seconds

    def synced(self, info: DistInfo) -> _Window:
        """The window with every sum replaced by its mean over processes (the global value of the sums)."""
        if info.world == 1 or not self.sums:
            return self
        names = sorted(self.sums)
        values = all_mean(torch.stack([self.sums[k] for k in names]), info)
        return _Window(dict(zip(names, values.unbind(0), strict=True)), self.count, self.seconds)

    def state(self) -> dict[str, Any]:
        return {"sums": {k: v.detach().cpu() for k, v in self.sums.items()}, "count": self.count}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> _Window:
        return cls({k: v.to(device) for k, v in state["sums"].items()}, int(state["count"]))


def _model_parts(model: nn.Module) -> tuple[nn.Module, dict[str, Any]]:
    """(DSTformer, heads) to checkpoint: a model with a task head (``HeadModel``) splits itself by
    ``checkpoint_parts()``; a plain DSTformer is the encoder with no extra head."""
    return model.checkpoint_parts() if hasattr(model, "checkpoint_parts") else (model, {})


def _load_model_parts(model: nn.Module, ckpt: dict[str, Any]) -> None:
    """The inverse of ``_model_parts``: load a checkpoint's 'model' (and heads) into the trained model."""
    if hasattr(model, "load_checkpoint_parts"):
        model.load_checkpoint_parts(ckpt)
    else:
        model.load_state_dict(ckpt["model"])


class _Loop:
    """State and helpers of one ``fit`` call."""

    def __init__(self, trainer: Trainer, train_set, val_set, run_dir: Path, arch: str, reporter: Reporter):
        self.trainer, self.train_set, self.val_set = trainer, train_set, val_set
        self.cfg, self.info = trainer.cfg, trainer.info
        self.run_dir, self.arch, self.reporter = run_dir, arch, reporter
        self.log = RunLog(run_dir, enabled=self.info.is_main)
        self.pos = _Position()
        self.window = _Window()
        self.best: dict[str, Any] = {"metric": "", "value": None, "epoch": -1, "step": 0}
        self.last_val: dict[str, float] = {}
        self.epoch_window = _Window()  # the loss over the epoch so far, for the epoch's train_loss
        self.saved_at = _now()  # when last.pt was last written (or the loop started)

    # --- sizes -------------------------------------------------------------------------------------------------------
    def steps_in_epoch(self, epoch: int) -> int:
        return -(-len(self.train_set.active_clips(epoch)) // self.cfg.train.batch_size)

    def total_steps(self) -> int:
        return sum(self.steps_in_epoch(e) for e in range(self.cfg.train.epochs))

    # --- checkpoints -------------------------------------------------------------------------------------------------
    def model_checkpoint(self, meta: dict[str, Any]) -> dict[str, Any]:
        stage = getattr(self.trainer.task, "stage", "pretrain")  # finetune tasks say "finetune"
        info = {"task": f"{stage}-{self.trainer.task.name}", "source": f"mocli {stage}", **meta}
        encoder, heads = _model_parts(self.trainer.model)
        return build_checkpoint(encoder, self.arch, heads=heads, train_config=config_to_dict(self.cfg), meta=info)

    def save_last(self) -> None:
        """Write last.pt (every process must call this: the logged sums are first agreed over processes)."""
        self.window = self.window.synced(self.info)
        self.epoch_window = self.epoch_window.synced(self.info)
        self.saved_at = _now()
        if not self.info.is_main:
            return
        p = self.pos
        ckpt = self.model_checkpoint({"step": p.global_step, "epoch": p.epoch})
        ckpt.update(
            {
                "optimizer": self.trainer.optimizer.state_dict(),
                "scheduler": {"schedule": self.cfg.train.schedule, "epoch": p.epoch, "global_step": p.global_step},
                "scaler": self.trainer.scaler.state_dict() if self.trainer.scaler is not None else {},
                "rng": rng_state(),
                "data_position": {"epoch": p.epoch, "step_in_epoch": p.step_in_epoch, "global_step": p.global_step},
                "log_state": {
                    "lines": self.log.lines,
                    "window": self.window.state(),
                    "epoch_window": self.epoch_window.state(),
                },
                "best": dict(self.best),
            }
        )
        save_checkpoint(ckpt, self.run_dir / "last.pt")

    def save_due(self) -> bool:
        """Whether last.pt is due after this step: every ``save_every`` steps, or ``save_minutes`` after the last
        write. Several processes agree on the main process's clock, on logging steps only (one small broadcast)."""
        t = self.cfg.train
        if t.save_every and self.pos.global_step % t.save_every == 0:
            return True
        if t.save_minutes <= 0:
            return False
        if self.info.world == 1:
            return _now() - self.saved_at >= 60.0 * t.save_minutes
        if self.pos.global_step % max(1, t.log_every):
            return False
        due = torch.tensor([float(_now() - self.saved_at >= 60.0 * t.save_minutes)], device=self.trainer.device)
        dist.broadcast(due, src=0)
        return bool(due.item())

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Continue from a last.pt: model, optimizer, scaler, RNG, data position, log position, best so far."""
        _load_model_parts(self.trainer.model, ckpt)
        self.trainer.optimizer.load_state_dict(ckpt["optimizer"])
        if self.trainer.scaler is not None and ckpt.get("scaler"):
            self.trainer.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        pos = ckpt["data_position"]
        self.pos = _Position(int(pos["epoch"]), int(pos["step_in_epoch"]), int(pos["global_step"]))
        state = ckpt["log_state"]
        self.log.truncate(int(state["lines"]))
        self.window = _Window.from_state(state["window"], self.trainer.device)
        self.epoch_window = _Window.from_state(state["epoch_window"], self.trainer.device)
        self.best = dict(ckpt["best"])

    # --- steps -------------------------------------------------------------------------------------------------------
    def loader(self, dataset, keys_sampler) -> torch.utils.data.DataLoader:
        workers = self.cfg.data.num_workers
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=keys_sampler, num_workers=workers, pin_memory=self.trainer.device.type == "cuda",
            persistent_workers=False,
        )  # fmt: skip

    def train_epoch(self, epoch: int, total: int) -> bool:
        """Train from the current position to the end of ``epoch`` (or max_steps). Returns True when stopped early."""
        t = self.cfg.train
        arrange = getattr(self.train_set, "epoch_order", None)  # a dataset may form its own batches (one-shot)
        if arrange is not None:
            order = arrange(self.cfg.seed, epoch, t.batch_size)
        else:
            order = epoch_order(self.train_set.active_clips(epoch), self.cfg.seed, epoch, t.batch_size)
        sampler = StepBatchSampler(order, epoch, t.batch_size, self.info.rank, self.info.world, self.pos.step_in_epoch)
        tick = time.perf_counter()
        for batch in self.loader(self.train_set, sampler):
            lr = self.trainer.set_lr(lr_factor(t, epoch, self.pos.global_step, total))
            terms = self.trainer.step(batch)
            self.pos.step_in_epoch += 1
            self.pos.global_step += 1
            now = time.perf_counter()
            self.after_step(epoch, lr, terms, now - tick)
            tick = now
            if self.save_due():
                self.save_last()
            if self.cfg.max_steps and self.pos.global_step >= self.cfg.max_steps:
                return self.pos.step_in_epoch < self.steps_in_epoch(epoch)
        return False

    def after_step(self, epoch: int, lr: float, terms: dict[str, torch.Tensor], seconds: float) -> None:
        t = self.cfg.train
        self.window.add(terms, seconds)
        self.epoch_window.add({"loss": terms["loss"]}, seconds)
        info = None
        if self.pos.global_step % max(1, t.log_every) == 0:
            w = self.window.synced(self.info)
            means = {k: float(v) / w.count for k, v in w.sums.items()}
            rate = t.batch_size * w.count / w.seconds if w.seconds > 0 else 0.0
            row = {"kind": "train", "step": self.pos.global_step, "epoch": epoch, "lr": lr, **means}
            self.log.append({**row, "samples_per_s": rate})
            info = {**means, "lr": lr, "epoch": float(epoch), "samples_per_s": rate}
            self.window = _Window()
        self.reporter.update(self.pos.global_step, info)

    # --- validation and best -----------------------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        if self.val_set is None or len(self.val_set) == 0:
            return {}
        clips = np.arange(len(self.val_set))
        if self.cfg.data.val_max_clips and len(clips) > self.cfg.data.val_max_clips:
            clips = clips[np.linspace(0, len(clips) - 1, self.cfg.data.val_max_clips).round().astype(int)]
        mine = clips[self.info.rank :: self.info.world]
        local = max(1, self.cfg.train.batch_size // self.info.world)
        batches = [[(0, int(c)) for c in mine[k : k + local]] for k in range(0, len(mine), local)]
        return self.trainer.evaluate(self.loader(self.val_set, batches))

    def end_epoch(self, epoch: int) -> None:
        metrics = self.validate()
        self.last_val = metrics
        ew = self.epoch_window.synced(self.info)
        train_loss = float(ew.sums["loss"]) / ew.count if ew.count else float("nan")
        self.epoch_window = _Window()
        row = {"kind": "val", "step": self.pos.global_step, "epoch": epoch, "train_loss": train_loss}
        row.update({f"val_{k}": v for k, v in metrics.items()})
        self.log.append(row)
        key = self.trainer.task.best_metric
        name, value = (f"val_{key}", metrics[key]) if key in metrics else ("train_loss", train_loss)
        if self.best["value"] is None or value < self.best["value"]:
            self.best = {"metric": name, "value": value, "epoch": epoch, "step": self.pos.global_step}
            if self.info.is_main:
                save_checkpoint(self.model_checkpoint(dict(self.best)), self.run_dir / "best.pt")
        shown = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("kind", "step", "epoch"))
        self.reporter.message(f"epoch {epoch + 1}/{self.cfg.train.epochs}: {shown}")
        self.log.write_views()


def fit(
    trainer: Trainer,
    train_set,
    val_set,
    run_dir: Path,
    *,
    arch: str,
    reporter: Reporter | None = None,
    resume_from: dict[str, Any] | None = None,
) -> FitResult:
    """Train ``trainer``'s model on ``train_set`` and validate on ``val_set`` each epoch, writing ``run_dir``.

    ``train_set`` must offer ``active_clips(epoch) -> (N,) clip ids`` and ``__getitem__((epoch, clip))`` (like
    ``LiftClipDataset``); it may also offer ``epoch_order(seed, epoch, global_batch) -> clip ids`` (a whole number
    of global batches, ``ceil(N / global_batch)`` of them) to form its own batches. ``val_set`` is indexed by
    ``(0, clip)`` (or None). ``resume_from`` is a loaded last.pt. A model with task heads provides
    ``checkpoint_parts()`` and ``load_checkpoint_parts(ckpt)`` (see ``mocli.models.heads.HeadModel``).
    """
    reporter = (reporter or LogReporter()) if trainer.info.is_main else SilentReporter()
    loop = _Loop(trainer, train_set, val_set, run_dir, arch, reporter)
    if resume_from is not None:
        loop.restore(resume_from)
    total = loop.total_steps()
    if total == 0:
        raise MocliError("no training clips: every training sequence is shorter than the clip length")
    max_steps = trainer.cfg.max_steps
    reporter.start(min(total, max_steps) if max_steps else total, loop.pos.global_step)
    epochs = trainer.cfg.train.epochs
    stopped = bool(max_steps) and loop.pos.global_step >= max_steps and loop.pos.epoch < epochs  # nothing to do
    try:
        for epoch in range(loop.pos.epoch, loop.pos.epoch if stopped else epochs):
            loop.pos.epoch = epoch
            if loop.train_epoch(epoch, total):  # max_steps reached within the epoch
                loop.save_last()
                stopped = True
                break
            loop.end_epoch(epoch)
            loop.pos = _Position(epoch + 1, 0, loop.pos.global_step)
            loop.save_last()
            if max_steps and loop.pos.global_step >= max_steps and epoch + 1 < epochs:
                stopped = True
                break
    finally:
        reporter.close()
    if trainer.info.is_main:
        meta = {"step": loop.pos.global_step, "epoch": loop.pos.epoch, "finished": not stopped}
        save_checkpoint(loop.model_checkpoint(meta), run_dir / "model.pt")
        loop.log.write_views()
    return FitResult(run_dir, loop.pos.global_step, loop.pos.epoch, loop.best, loop.last_val, not stopped)
