"""The one training loop, for pretraining now and for every finetune task later.

A *task* turns a batch into a loss (and validation sums); the loop owns everything else: AdamW with a backbone and
a head learning rate, the schedule (MotionBERT's lr * 0.99 per epoch, or warm-up + cosine), gradient clipping,
autocast (bf16 on CUDA by default, fp32 on CPU unless asked), an optional compiled forward (``train.compile``),
checkpoints, exact resume, logs and plots, and torch.distributed DDP when launched by torchrun (RANK / WORLD_SIZE /
LOCAL_RANK set; gloo on CPU, nccl on CUDA).

Run folder ``runs/pretrain/<name>``:

    config.json   the resolved RunConfig (plus a "_resolved" block: device, precision, processes, data counts)
    log.jsonl     one JSON object per row: {"kind": "train", "step", "epoch", "lr", "loss", terms, "samples_per_s"}
                  every ``log_every`` steps, {"kind": "val", "step", "epoch", "val_loss", "val_mpjpe_mm", ...}
                  after each epoch
    log.csv       the same rows as CSV; curves.png: loss, validation MPJPE and learning rate against steps
    last.pt       training state: a mocli checkpoint (loadable by ``mocli.load_model``) plus optimizer, scheduler,
                  RNG states and data position, every ``save_every`` steps and at the end of each epoch and run
    best.pt       plain model checkpoint of the epoch with the lowest validation MPJPE (lowest train loss if there
                  is no validation split)
    model.pt      plain model checkpoint at the end of the run

Exact resume: every random choice of a sample is keyed by (seed, epoch, clip), the epoch's order by (seed, epoch),
and the checkpoint stores the position (epoch, step within the epoch), so a resumed run repeats the uninterrupted
one step for step (same losses, same parameters). Global RNG states (python, numpy, torch) are saved and restored
as well, for tasks that use them.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mocli.config import RunConfig, TrainConfig, config_from_dict, config_to_dict
from mocli.data.clips import LiftClipDataset, MotionSource, StepBatchSampler, epoch_order, load_sources
from mocli.errors import MocliError
from mocli.losses import LiftLossWeights, lift_loss
from mocli.metrics import procrustes_align
from mocli.models.checkpoint import build_checkpoint, load_checkpoint, model_from_checkpoint, save_checkpoint
from mocli.models.registry import arch_config, arch_kind, create_model, resolve_weights
from mocli.models.stmo import STMO
from mocli.utils.device import autocast, resolve_device
from mocli.utils.io import atomic_path
from mocli.utils.seed import seed_everything

__all__ = [
    "Task",
    "LiftTask",
    "StmoLiftTask",
    "Reporter",
    "LogReporter",
    "DistInfo",
    "init_distributed",
    "resolve_precision",
    "lr_factor",
    "param_groups",
    "Trainer",
    "FitResult",
    "fit",
    "run_pretrain",
    "check_config",
    "build_lift_data",
    "resume_config",
    "load_init",
    "rng_state",
    "set_rng_state",
    "RunLog",
]

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]


# ----------------------------------------------------------------------------------------------------------------------
# Tasks: batch -> loss, batch -> validation sums
# ----------------------------------------------------------------------------------------------------------------------


class Task(Protocol):
    """What the loop needs from a pretext or finetune task."""

    name: str
    head_prefixes: tuple[str, ...]  # parameter-name prefixes trained with the head learning rate
    best_metric: str  # key of ``summarise`` output to minimise for best.pt

    def loss(self, module: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss (0-dim, differentiable) and detached terms to log."""
        ...

    def eval_sums(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Sums over the batch (0-dim tensors), added over batches and processes, then ``summarise``d."""
        ...

    def summarise(self, sums: dict[str, float]) -> dict[str, float]:
        """Validation metrics from the summed values."""
        ...


@dataclass
class LiftTask:
    """MotionBERT's lift pretext: noisy masked 2D -> 3D. Validation MPJPE is in millimetres, root-relative.

    Validation millimetres: the normalised prediction and target are made root-relative per frame and multiplied by
    the sample's ``factor`` (metres per normalised unit at the root depth), as MotionBERT scales its 2.5D H36M labels
    to millimetres. PA-MPJPE aligns each frame by a similarity transform first.
    """

    weights: LiftLossWeights = field(default_factory=LiftLossWeights)
    name: str = "lift"
    head_prefixes: tuple[str, ...] = ("head.",)
    best_metric: str = "mpjpe_mm"

    def loss(self, module: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pred = module(batch["input"])
        return lift_loss(pred, batch["target"], batch["weight_2d"], batch["has_3d"], self.weights)

    def eval_sums(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        return _lift_eval_sums(model(batch["input"]).float(), batch, self.weights)

    def summarise(self, sums: dict[str, float]) -> dict[str, float]:
        out = {"loss": sums["loss"] / max(sums["samples"], 1.0)}
        if sums["joints_3d"] > 0:
            out["mpjpe_mm"] = sums["mpjpe_mm"] / sums["joints_3d"]
            out["pa_mpjpe_mm"] = sums["pa_mpjpe_mm"] / sums["joints_3d"]
        return out


def _lift_eval_sums(pred: torch.Tensor, batch: Batch, weights: LiftLossWeights) -> dict[str, torch.Tensor]:
    """LiftTask's validation sums of a prediction (B,T,J,3) for ``batch`` (target, weight_2d, factor over T)."""
    loss, _ = lift_loss(pred, batch["target"], batch["weight_2d"], batch["has_3d"], weights)
    is_3d = batch["has_3d"] > 0.5
    scale = 1000.0 * batch["factor"][is_3d][..., None, None]  # (B3, T, 1, 1) mm per normalised unit
    pred_mm = _root_relative(pred[is_3d]) * scale
    gt_mm = _root_relative(batch["target"][is_3d].float()) * scale
    err = torch.linalg.vector_norm(pred_mm - gt_mm, dim=-1)
    pa_err = torch.linalg.vector_norm(procrustes_align(pred_mm, gt_mm) - gt_mm, dim=-1)
    n = float(pred.shape[0])
    return {
        "loss": loss.detach() * n,
        "samples": torch.tensor(n),
        "mpjpe_mm": err.sum(),
        "pa_mpjpe_mm": pa_err.sum(),
        "joints_3d": torch.tensor(float(err.numel())),
    }


@dataclass
class StmoLiftTask(LiftTask):
    """The lift pretext for an STMO many-to-one lifter (P-STMO's loss): MPJPE of the centre frame plus MPJPE of
    every frame from the auxiliary per-frame head, in normalised units, weighted by ``loss.mpjpe`` (2D-only clips:
    the confidence-weighted 2D error of both, by ``loss.proj_2d``; ``loss.n_mpjpe`` and ``loss.velocity`` are not
    used). Validation: LiftTask's millimetres on the centre frame (frame T // 2) of each clip.
    """

    head_prefixes: tuple[str, ...] = ("head.", "head_frames.")

    def _weights(self) -> LiftLossWeights:
        return LiftLossWeights(mpjpe=self.weights.mpjpe, n_mpjpe=0.0, velocity=0.0, proj_2d=self.weights.proj_2d)

    def loss(self, module: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        centre, frames = module(batch["input"], aux=True)  # (B,1,J,3), (B,T,J,3)
        mid = _centre_batch(batch)
        w = self._weights()
        loss_c, terms_c = lift_loss(centre, mid["target"], mid["weight_2d"], batch["has_3d"], w)
        loss_f, terms_f = lift_loss(frames, batch["target"], batch["weight_2d"], batch["has_3d"], w)
        terms = {"mpjpe": terms_c["mpjpe"], "mpjpe_frames": terms_f["mpjpe"]}
        terms.update(proj_2d=terms_c["proj_2d"], proj_2d_frames=terms_f["proj_2d"])
        return loss_c + loss_f, terms

    def eval_sums(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        return _lift_eval_sums(model(batch["input"]).float(), _centre_batch(batch), self._weights())


def _centre_batch(batch: Batch) -> Batch:
    """The batch's per-frame entries (target, weight_2d, factor) at the centre frame T // 2 only (T kept as 1)."""
    c = batch["target"].shape[1] // 2
    out = dict(batch)
    for key in ("target", "weight_2d", "factor"):
        out[key] = batch[key][:, c : c + 1]
    return out


def _lift_task(model: nn.Module, cfg: RunConfig) -> LiftTask:
    """LiftTask for a DSTformer, StmoLiftTask for an STMO (whose clips must be exactly its maxlen frames)."""
    weights = LiftLossWeights(**config_to_dict(cfg.loss))
    if not isinstance(model, STMO):
        return LiftTask(weights)
    if cfg.data.clip_len != model.cfg.maxlen:
        raise MocliError(f"{cfg.model} takes exactly {model.cfg.maxlen} frames: use --clip-len {model.cfg.maxlen}")
    return StmoLiftTask(weights)


def _root_relative(joints: torch.Tensor) -> torch.Tensor:
    return joints - joints[..., :1, :]


# ----------------------------------------------------------------------------------------------------------------------
# Progress reporting (the CLI supplies a rich one)
# ----------------------------------------------------------------------------------------------------------------------


class Reporter(Protocol):
    def start(self, total_steps: int, done_steps: int) -> None: ...

    def update(self, step: int, info: dict[str, float] | None) -> None:
        """Called after every step; ``info`` (loss, lr, samples/s, epoch) on logging steps only."""
        ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class LogReporter:
    """Progress through ``logging`` (the library default)."""

    def start(self, total_steps: int, done_steps: int) -> None:
        log.info("training: %d steps (%d done)", total_steps, done_steps)

    def update(self, step: int, info: dict[str, float] | None) -> None:
        if info:
            log.info("step %d  loss %.4f  %.1f samples/s", step, info["loss"], info["samples_per_s"])

    def message(self, text: str) -> None:
        log.info("%s", text)

    def close(self) -> None:
        return None


class _Silent:
    """The reporter of every process but the first."""

    def start(self, total_steps: int, done_steps: int) -> None: ...

    def update(self, step: int, info: dict[str, float] | None) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


# ----------------------------------------------------------------------------------------------------------------------
# Devices, processes, precision, schedule
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistInfo:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_spec: str) -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA); pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_spec)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> 'bf16' on CUDA with bf16 support, else 'fp32'. Warns about bf16 on a CPU without native bf16."""
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise MocliError(f"unknown precision {precision!r}: expected auto, fp32, bf16 or fp16")
    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise MocliError("fp16 needs CUDA; use --precision bf16 (or fp32) on CPU")
    if precision == "bf16" and device.type == "cpu" and not _cpu_has_bf16():
        log.warning("this CPU has no native bf16 (AVX512-BF16/AMX): bf16 autocast will be slow; fp32 may be faster")
    return precision


def _cpu_has_bf16() -> bool:
    checks = [getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None)]
    return any(bool(f()) for f in checks if f is not None)


def lr_factor(cfg_train: TrainConfig, epoch: int, step: int, total_steps: int) -> float:
    """Learning-rate multiplier at a global ``step`` (0-based) in ``epoch``: warm-up, then the schedule.

    'exp': ``lr_decay ** epoch`` (MotionBERT); 'cosine': from 1 down to ``min_lr_ratio`` over ``total_steps``;
    'constant': 1.
    """
    if cfg_train.schedule == "exp":
        factor = cfg_train.lr_decay**epoch
    elif cfg_train.schedule == "cosine":
        progress = min(1.0, step / max(1, total_steps))
        floor = cfg_train.min_lr_ratio
        factor = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    elif cfg_train.schedule == "constant":
        factor = 1.0
    else:
        raise MocliError(f"unknown schedule {cfg_train.schedule!r}: expected exp, cosine or constant")
    if cfg_train.warmup_steps > 0:
        factor *= min(1.0, (step + 1) / cfg_train.warmup_steps)
    return factor


def param_groups(model: nn.Module, lr: float, lr_head: float, head_prefixes: Iterable[str]) -> list[dict[str, Any]]:
    """AdamW parameter groups: 'backbone' at ``lr`` and 'head' (names starting with a head prefix) at ``lr_head``."""
    prefixes = tuple(head_prefixes)
    backbone, head = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (head if name.startswith(prefixes) else backbone).append(p)
    groups = [{"name": "backbone", "params": backbone, "base_lr": lr, "lr": lr}]
    if head:
        groups.append({"name": "head", "params": head, "base_lr": lr_head, "lr": lr_head})
    return groups


# ----------------------------------------------------------------------------------------------------------------------
# RNG state as tensors and lists (checkpoints load with weights_only=True)
# ----------------------------------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """The python, numpy and torch (CPU and CUDA) global RNG states, as tensors and plain values."""
    py_version, py_state, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached": float(np_cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------------------------------
# Logs: JSONL (truth), CSV and PNG (views of it)
# ----------------------------------------------------------------------------------------------------------------------


class RunLog:
    """log.jsonl of a run folder, with CSV and plot views. Only the main process writes."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.dir = run_dir
        self.path = run_dir / "log.jsonl"
        self.enabled = enabled
        self.lines = 0

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate(self, lines: int) -> None:
        """Keep the first ``lines`` rows (rows written after a checkpoint are dropped on resume)."""
        if self.enabled and self.path.is_file():
            kept = self.path.read_text().splitlines()[:lines]
            self.path.write_text("".join(f"{line}\n" for line in kept))
        self.lines = lines

    def append(self, row: dict[str, Any]) -> None:
        self.lines += 1
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")

    def write_views(self) -> None:
        """Rewrite log.csv and curves.png from log.jsonl."""
        if not self.enabled:
            return
        rows = self.rows()
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        with atomic_path(self.dir / "log.csv") as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        plot_curves(rows, self.dir / "curves.png")


def plot_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """curves.png: training loss (log scale), validation MPJPE (mm) and learning rate against the step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train = [r for r in rows if r.get("kind") == "train"]
    val = [r for r in rows if r.get("kind") == "val"]
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_val, ax_lr = fig.subplots(1, 3)
    if train:
        steps = [r["step"] for r in train]
        ax_loss.plot(steps, [r["loss"] for r in train], label="train loss")
        if val and "val_loss" in val[0]:
            ax_loss.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="val loss")
        if min(r["loss"] for r in train) > 0:
            ax_loss.set_yscale("log")
        ax_lr.plot(steps, [r["lr"] for r in train])
    metric = [(r["step"], r["val_mpjpe_mm"]) for r in val if "val_mpjpe_mm" in r]
    if metric:
        ax_val.plot(*zip(*metric, strict=True), "o-")
    ax_loss.set(xlabel="step", title="loss")
    if train:
        ax_loss.legend(loc="upper right")
    ax_val.set(xlabel="step", ylabel="mm", title="val MPJPE (root-relative)")
    ax_lr.set(xlabel="step", title="learning rate (backbone)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)


# ----------------------------------------------------------------------------------------------------------------------
# The trainer: one optimisation step, evaluation, state
# ----------------------------------------------------------------------------------------------------------------------


class Trainer:
    """Model (DDP-wrapped when several processes), AdamW, autocast, clipping; one step at a time."""

    def __init__(
        self, model: nn.Module, task: Task, cfg: RunConfig, device: torch.device, info: DistInfo = DistInfo()
    ) -> None:
        self.model = model.to(device)
        self.task, self.cfg, self.device, self.info = task, cfg, device, info
        self.precision = resolve_precision(cfg.train.precision, device)
        if info.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.module: nn.Module = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.module = self.model
        if cfg.train.compile:
            # the training forward as one compiled graph (the first step compiles: a minute or two on a small CPU);
            # self.model stays the plain module, so checkpoints, evaluation and parameters are those of eager mode
            self.module = torch.compile(self.module)
        t = cfg.train
        groups = param_groups(self.model, t.lr, t.lr_head or t.lr, task.head_prefixes)
        self.optimizer = torch.optim.AdamW(groups, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None

    def set_lr(self, factor: float) -> float:
        """Set every group's lr to its base lr times ``factor``; returns the backbone lr."""
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        return self.optimizer.param_groups[0]["lr"]

    def to_device(self, batch: Batch) -> Batch:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One optimisation step on this process's share of the global batch. Returns detached loss terms."""
        self.module.train()
        batch = self.to_device(batch)
        with autocast(self.device, self.precision):
            loss, terms = self.task.loss(self.module, batch)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.cfg.train.grad_clip > 0:
            terms["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return {"loss": loss.detach(), **terms}

    @torch.no_grad()
    def evaluate(self, loader: Iterable[Batch]) -> dict[str, float]:
        """Task metrics over every batch of ``loader`` (this process's shard), summed over processes."""
        self.model.eval()
        sums: dict[str, torch.Tensor] = {}
        for batch in loader:
            with autocast(self.device, self.precision):
                part = self.task.eval_sums(self.model, self.to_device(batch))
            for k, v in part.items():
                sums[k] = sums.get(k, torch.zeros((), device=self.device)) + v.to(self.device).double()
        keys = sorted(sums) if self.info.world == 1 else _agree_keys(sums)
        vec = torch.stack([sums.get(k, torch.zeros((), device=self.device)).double() for k in keys])
        if self.info.world > 1:
            dist.all_reduce(vec)
        return self.task.summarise(dict(zip(keys, vec.tolist(), strict=True))) if keys else {}


def _agree_keys(sums: dict[str, torch.Tensor]) -> list[str]:
    """The union of the metric keys of every process (a process with no validation batch has none)."""
    gathered: list[list[str] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, sorted(sums))
    return sorted({k for keys in gathered for k in (keys or [])})


def _window_state(window: _Window) -> dict[str, Any]:
    return {"sums": {k: v.detach().cpu() for k, v in window.sums.items()}, "count": window.count}


def _window_from_state(state: dict[str, Any], device: torch.device) -> _Window:
    return _Window({k: v.to(device) for k, v in state["sums"].items()}, int(state["count"]))


def _all_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.world > 1:
        values = values.clone()
        dist.all_reduce(values)
        values /= info.world
    return values


# ----------------------------------------------------------------------------------------------------------------------
# fit: epochs, steps, validation, checkpoints, logs
# ----------------------------------------------------------------------------------------------------------------------


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
        values = _all_mean(torch.stack([self.sums[k] for k in names]), info)
        return _Window(dict(zip(names, values.unbind(0), strict=True)), self.count, self.seconds)


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
                    "window": _window_state(self.window),
                    "epoch_window": _window_state(self.epoch_window),
                },
                "best": dict(self.best),
            }
        )
        save_checkpoint(ckpt, self.run_dir / "last.pt")

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
        self.window = _window_from_state(state["window"], self.trainer.device)
        self.epoch_window = _window_from_state(state["epoch_window"], self.trainer.device)
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
            if t.save_every and self.pos.global_step % t.save_every == 0:
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
    reporter = (reporter or LogReporter()) if trainer.info.is_main else _Silent()
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


# ----------------------------------------------------------------------------------------------------------------------
# run_pretrain: config -> data, model, task, run folder -> fit
# ----------------------------------------------------------------------------------------------------------------------


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
    path = Path(init).expanduser()
    if path.is_dir():
        found = [path / f for f in ("model.pt", "best.pt", "last.pt") if (path / f).is_file()]
        if not found:
            raise MocliError(f"--init {init}: the folder holds no model.pt, best.pt or last.pt")
        path = found[0]
    else:
        path = resolve_weights(init)
    log.info("initialising from %s", path)
    return load_checkpoint(path)


def resume_config(path: str | os.PathLike) -> tuple[RunConfig, dict[str, Any], Path]:
    """The saved RunConfig, the loaded last.pt and the run folder, from a run folder or a last.pt path."""
    ckpt, ckpt_path = load_training_state(path)
    return config_from_dict(ckpt["train_config"]), ckpt, ckpt_path.parent


def _run_dir(cfg: RunConfig, info: DistInfo) -> Path:
    """runs/pretrain/<name>: a new folder (an unused 'run', 'run2', ... without a name); agreed by all processes."""
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


def _split_sources(sources: list[MotionSource], paths: list[str]) -> tuple[list[MotionSource], list[MotionSource]]:
    train = [s for s in sources if s.split == "train"]
    val = [s for s in sources if s.split == "val"]
    if not train:
        raise MocliError(f"no training sequences (split 'train') with 3D joints or 2D keypoints in {', '.join(paths)}")
    return train, val


def build_lift_data(cfg: RunConfig, sources: list[MotionSource] | None = None):
    """Training and validation LiftClipDatasets from the config's files (or from given sources)."""
    d = cfg.data
    if sources is None:
        if not d.paths:
            raise MocliError("no training data: give --data FILE.h5 (see `mocli prepare dataset --help`)")
        sources = load_sources(d.paths, fps=d.fps, holdout=d.holdout)
    train, val = _split_sources(sources, d.paths or ["the given sources"])
    train_set = LiftClipDataset(train, d, seed=cfg.seed, train=True)
    if len(train_set) == 0:
        longest = max(s.num_frames for s in train)
        raise MocliError(
            f"no training clips: the longest training sequence has {longest} frames < clip_len {d.clip_len}"
        )
    val_set = LiftClipDataset(val, d, seed=cfg.seed, train=False, stride=d.val_stride or d.clip_len) if val else None
    return train_set, val_set


PRETEXTS = ("lift", "mpm2d3d", "action-text", "mpm")
"""Pretext names. 'lift' lives here; each other one is a module ``mocli.pretexts.<name with _ for ->`` offering
``check_config(cfg, world, ckpt)`` (one-line MocliErrors for its own settings, before any data is read; the common
checks of ``_check_common`` run first for every pretext) and
``build(cfg, sources, resume) -> (model, task, train_set, val_set)`` (``resume``: a loaded last.pt or None)."""


def _pretext_module(name: str):
    import importlib

    return importlib.import_module(f"mocli.pretexts.{name.replace('-', '_')}")


def _check_common(cfg: RunConfig, world: int) -> None:
    """The checks of every pretext: projection, batch split over processes, precision, schedule."""
    if cfg.data.projection not in ("perspective", "orthographic"):
        raise MocliError(f"data.projection must be perspective or orthographic, not {cfg.data.projection!r}")
    if cfg.train.batch_size < 1 or cfg.train.batch_size % world:
        raise MocliError(f"batch {cfg.train.batch_size} does not split evenly over {world} process(es)")
    if cfg.train.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise MocliError(f"unknown precision {cfg.train.precision!r}: expected auto, fp32, bf16 or fp16")
    lr_factor(cfg.train, 0, 0, 1)  # unknown schedule


def check_config(cfg: RunConfig, world: int = 1, ckpt: dict[str, Any] | None = None) -> None:
    """Raise a one-line MocliError for settings that cannot work (before any data is read): the common checks,
    then the lift pretext's own (clip length) or the pretext module's ``check_config``."""
    if cfg.pretext not in PRETEXTS:
        raise MocliError(f"unknown pretext {cfg.pretext!r}; available: {', '.join(PRETEXTS)}")
    _check_common(cfg, world)
    if cfg.pretext != "lift":
        _pretext_module(cfg.pretext).check_config(cfg, world, ckpt)
        return
    maxlen = ckpt["arch"]["config"]["maxlen"] if ckpt is not None else arch_config(cfg.model).maxlen
    kind = ckpt["arch"].get("kind", "dstformer") if ckpt is not None else arch_kind(arch_config(cfg.model))
    if kind == "stmo" and not cfg.init and cfg.data.clip_len != maxlen:
        raise MocliError(f"{cfg.model} takes exactly {maxlen} frames: use --clip-len {maxlen}")
    if cfg.data.clip_len > maxlen:
        raise MocliError(
            f"clip length {cfg.data.clip_len} is longer than {cfg.model}'s maxlen {maxlen}: use --clip-len {maxlen} "
            "or less"
        )
    if cfg.data.clip_len < 2:
        raise MocliError(f"clip length must be at least 2 frames, not {cfg.data.clip_len}")


def run_pretrain(
    cfg: RunConfig,
    *,
    resume: dict[str, Any] | None = None,
    run_dir: Path | None = None,
    reporter: Reporter | None = None,
    sources: list[MotionSource] | None = None,
) -> FitResult:
    """Pretrain a DSTformer as ``cfg`` says and write the run folder.

    Args:
        cfg: the resolved config (``cfg.pretext`` one of ``PRETEXTS``).
        resume: a loaded last.pt (see ``resume_config``) to continue from, with ``run_dir`` its folder.
        reporter: progress display (default: logging).
        sources: in-memory sequences instead of ``cfg.data.paths`` (tests, scripts).
    """
    info, device = init_distributed(cfg.device)
    owns_group = info.world > 1
    try:
        check_config(cfg, info.world, resume)
        if cfg.pretext == "lift":
            train_set, val_set = build_lift_data(cfg, sources)
            seed_everything(cfg.seed)
            if resume is not None:
                model = model_from_checkpoint(resume, "last.pt")
            elif cfg.init:
                model = _init_model(cfg)
            else:
                model = create_model(cfg.model)
            task: Task = _lift_task(model, cfg)  # LiftTask, or StmoLiftTask for an STMO
        else:
            model, task, train_set, val_set = _pretext_module(cfg.pretext).build(cfg, sources, resume)
        run_dir = run_dir or _run_dir(cfg, info)
        trainer = Trainer(model, task, cfg, device, info)
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            _write_config(run_dir, cfg, trainer, train_set, val_set)
        return fit(trainer, train_set, val_set, run_dir, arch=cfg.model, reporter=reporter, resume_from=resume)
    finally:
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _init_model(cfg: RunConfig) -> nn.Module:
    """The encoder of ``cfg.init`` (continued pretraining); its architecture replaces ``cfg.model``."""
    ckpt = load_init(cfg.init)
    model = model_from_checkpoint(ckpt, f"--init {cfg.init}")
    arch = ckpt["arch"]["name"]
    if cfg.model != arch:
        log.info("--init: architecture %s (from the checkpoint) replaces %s", arch, cfg.model)
        cfg.model = arch
    return model


def _write_config(run_dir: Path, cfg: RunConfig, trainer: Trainer, train_set, val_set) -> None:
    resolved = {
        "device": str(trainer.device),
        "precision": trainer.precision,
        "processes": trainer.info.world,
        "model_config": trainer.model.cfg.to_dict(),
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "train_clips": len(train_set),
        "train_clips_2d": int(train_set.index.is_2d.sum()),
        "val_clips": len(val_set) if val_set is not None else 0,
        "torch": torch.__version__,
    }
    text = json.dumps({**config_to_dict(cfg), "_resolved": resolved}, indent=2)
    with atomic_path(run_dir / "config.json") as tmp:
        tmp.write_text(text + "\n")
