"""One optimisation step at a time: the ``Task`` protocol, the ``Trainer`` (AdamW with a backbone and a head
learning rate, autocast, gradient clipping, an optional compiled forward, DDP), the learning-rate schedule, the
training processes (torchrun: RANK / WORLD_SIZE / LOCAL_RANK; gloo on CPU, nccl on CUDA) and the global RNG state.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mocli.config import TrainConfig, TrainingConfig
from mocli.errors import MocliError
from mocli.utils.device import autocast, resolve_device, resolve_precision

__all__ = [
    "Batch",
    "Task",
    "DistInfo",
    "init_distributed",
    "lr_factor",
    "param_groups",
    "Trainer",
    "all_mean",
    "rng_state",
    "set_rng_state",
]

Batch = dict[str, torch.Tensor]


class Task(Protocol):
    """What the loop needs from a pretext or finetune task: batch -> loss, batch -> validation sums."""

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


def leave_distributed(completed: bool) -> None:
    """Leave the process group joined by ``init_distributed``. After a completed run every process first waits for the
    others (a barrier), so no process tears down its connections while another still finishes its last step;
    after an error it leaves at once (the others are stopped by torchrun)."""
    if not dist.is_initialized():
        return
    if completed:
        dist.barrier()
    dist.destroy_process_group()


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


class Trainer:
    """Model (DDP-wrapped when several processes), AdamW, autocast, clipping; one step at a time."""

    def __init__(
        self, model: nn.Module, task: Task, cfg: TrainingConfig, device: torch.device, info: DistInfo = DistInfo()
    ) -> None:
        self.model = model.to(device)
        self.task, self.cfg, self.device, self.info = task, cfg, device, info
        self.precision = resolve_precision(device, cfg.train.precision)
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


def all_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """``values`` averaged over the training processes (unchanged in a single process)."""
    if info.world > 1:
        values = values.clone()
        dist.all_reduce(values)
        values /= info.world
    return values


# RNG state as tensors and plain values: checkpoints load with weights_only=True


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
