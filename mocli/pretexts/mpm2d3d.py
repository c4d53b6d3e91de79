"""The ``mpm2d3d`` pretext (MPM): masked 2D modelling, masked 3D modelling and masked 2D -> 3D lifting in turn.

Data: ``LiftClipDataset`` clips of real mocap through random virtual cameras (its own MotionBERT masks off, and
its 3D target kept absolute so that the clean 2D is its x, y), wrapped by ``MpmClipDataset``, which adds

    target_2d (T, J, 2) clean normalised x, y (the 2D task's target; the input carries the detection noise)
    target    (T, J, 3) normalised 3D, root-relative per frame when data.root_relative (the 3D and lift target)
    mask      (T, J) bool, True = masked (``sample_mpm_mask``; keyed by (seed, stream, epoch, clip))
    task      () int64, index into ``MPM_TASKS`` ('2d', '3d', 'lift') of the training step

Masking (per sample, exact counts): of the T frames, ``round(drop_frame_ratio * T)`` are masked whole; of the
other frames, ``round(frame_ratio * T)`` (at most all of them) each get ``round(joint_ratio * J)`` joints masked
(joints drawn without replacement, independently per frame). Defaults 5/16 and 0.6 (MPM's best ratios): with
17 joints and 243 frames, 146 frames with 5 masked joints each.

Tasks (``model(x, mask, task)``, see ``mocli.models.mpm2d3d``), losses in normalised units:

    2d    noisy 2D input, masked -> 2D;  mean Euclidean error over masked joints, weighted by weight_2d
    3d    clean 3D target, masked -> 3D; mean Euclidean error (MPJPE) over masked joints of 3D clips
    lift  noisy 2D input, masked -> 3D;  MPJPE over all joints of 3D clips

The task of global step s is ``task_for_step(seed, s)``: round-robin ``tasks[s % n]`` or a draw keyed by (seed, s).
The step travels with the samples: ``MpmClipDataset.epoch_order`` returns keys ``step * N + clip`` (N clips) and
``__getitem__`` splits them, so the task never depends on state outside the data position (exact resume).
2D-only clips only count in the 2D task.

Validation (every batch through all three tasks, masks keyed by the validation stream): ``mpjpe_mm`` and
``pa_mpjpe_mm`` of the unmasked lifting (the DSTformer as a plain lifter; the best-checkpoint metric),
``lift_masked_mpjpe_mm`` (masked input), ``complete3d_mpjpe_mm`` (3D task, masked joints), ``complete2d_mm``
(2D task, masked joints, millimetres in the image plane at the root depth) and ``complete2d_norm`` (normalised
units, all clips); millimetres as in ``mocli.training.lift_task.LiftTask`` (normalised units times the sample's factor).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from mocli.config import Mpm2d3dConfig, RunConfig
from mocli.data.clips import LiftClipDataset, epoch_order
from mocli.data.sources import MotionSource
from mocli.errors import MocliError
from mocli.metrics import procrustes_align
from mocli.models.dstformer import DSTformer
from mocli.models.mpm2d3d import MPM_HEAD, MPM_TASKS, Mpm2d3dModel, mpm_model_from_checkpoint, new_mpm_model
from mocli.training.lift_task import build_lift_data
from mocli.training.lift_task import check_config as check_lift
from mocli.training.runs import load_init

__all__ = [
    "mask_counts",
    "sample_mpm_mask",
    "parse_tasks",
    "task_for_step",
    "masked_mpjpe",
    "mpm_losses",
    "MpmClipDataset",
    "Mpm2d3dTask",
    "check_config",
    "build",
]

MASK_STREAM = 10  # rng stream of the MPM masks (+ the dataset's stream: 0 train, 1 validation)
SCHEDULES = ("round-robin", "random")


# ----------------------------------------------------------------------------------------------------------------------
# Pure maths: masks, schedule, losses
# ----------------------------------------------------------------------------------------------------------------------


def _round(x: float) -> int:
    return int(np.floor(x + 0.5))


def mask_counts(num_frames: int, num_joints: int, cfg: Mpm2d3dConfig) -> tuple[int, int, int]:
    """(whole frames masked, frames with masked joints, joints masked in each of those) for a clip."""
    dropped = min(num_frames, _round(cfg.drop_frame_ratio * num_frames))
    partial = min(num_frames - dropped, _round(cfg.frame_ratio * num_frames))
    return dropped, partial, min(num_joints, _round(cfg.joint_ratio * num_joints))


def sample_mpm_mask(rng: np.random.Generator, num_frames: int, num_joints: int, cfg: Mpm2d3dConfig) -> np.ndarray:
    """(T, J) bool spatio-temporal mask, True = masked; exact counts as ``mask_counts`` says (module docstring)."""
    dropped, partial, joints = mask_counts(num_frames, num_joints, cfg)
    order = rng.permutation(num_frames)
    mask = np.zeros((num_frames, num_joints), dtype=bool)
    mask[order[:dropped]] = True
    for t in order[dropped : dropped + partial]:
        mask[t, rng.choice(num_joints, size=joints, replace=False)] = True
    return mask


def parse_tasks(text: str) -> tuple[str, ...]:
    """'2d,3d,lift' -> ('2d', '3d', 'lift'), checked (MocliError for unknown or repeated names)."""
    tasks = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in tasks if t not in MPM_TASKS]
    if not tasks or unknown or len(set(tasks)) != len(tasks):
        raise MocliError(f"mpm2d3d.tasks {text!r}: give distinct names from {', '.join(MPM_TASKS)}, e.g. 2d,3d,lift")
    return tasks


def task_for_step(cfg: Mpm2d3dConfig, seed: int, step: int) -> str:
    """The task of global step ``step`` (0-based): a function of (config, seed, step) only."""
    tasks = parse_tasks(cfg.tasks)
    if cfg.schedule == "round-robin":
        return tasks[step % len(tasks)]
    if cfg.schedule == "random":
        return tasks[int(np.random.default_rng([seed, 5, step]).integers(len(tasks)))]
    raise MocliError(f"mpm2d3d.schedule must be {' or '.join(SCHEDULES)}, not {cfg.schedule!r}")


def masked_mpjpe(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean Euclidean error: sum(w * |pred - target|) / sum(w); 0 (with a graph) when sum(w) is 0.

    Args:
        pred, target: (B, T, J, C), any units (the result is in the same units).
        weight: (B, T, J) non-negative weights (e.g. the mask times a confidence).
    """
    assert pred.shape == target.shape and weight.shape == pred.shape[:-1], (pred.shape, target.shape, weight.shape)
    err = torch.linalg.vector_norm(pred.float() - target.float(), dim=-1)
    w = weight.float()
    return (err * w).sum() / w.sum().clamp(min=1e-8)


def mpm_losses(task: str, pred: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss of one task, normalised units (module docstring). ``pred``: the model's output for ``task``."""
    mask = batch["mask"].float()
    has_3d = batch["has_3d"].float()[:, None, None].expand_as(mask)
    if task == "2d":
        return masked_mpjpe(pred, batch["target_2d"], mask * batch["weight_2d"])
    if task == "3d":
        return masked_mpjpe(pred, batch["target"], mask * has_3d)
    return masked_mpjpe(pred, batch["target"], has_3d)


# ----------------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------------


class MpmClipDataset(torch.utils.data.Dataset):
    """``LiftClipDataset`` samples plus the MPM fields (module docstring); indexed like it by ``(epoch, key)``.

    ``base`` must be built with masks off and ``root_relative=False`` (``build_data`` does this); ``root_relative``
    says whether this dataset's ``target`` is made root-relative per frame.
    """

    def __init__(self, base: LiftClipDataset, cfg: Mpm2d3dConfig, *, seed: int, root_relative: bool) -> None:
        self.base, self.cfg, self.seed, self.root_relative = base, cfg, int(seed), bool(root_relative)

    @property
    def index(self):
        return self.base.index

    def __len__(self) -> int:
        return len(self.base)

    def active_clips(self, epoch: int) -> np.ndarray:
        return self.base.active_clips(epoch)

    def steps_before(self, epoch: int, global_batch: int) -> int:
        """Global steps of the epochs before ``epoch`` (as the training loop counts them)."""
        return sum(-(-len(self.active_clips(e)) // global_batch) for e in range(epoch))

    def epoch_order(self, seed: int, epoch: int, global_batch: int) -> np.ndarray:
        """The epoch's shuffled clips (``mocli.data.clips.epoch_order``) as keys ``global_step * N + clip``."""
        order = epoch_order(self.active_clips(epoch), seed, epoch, global_batch)
        steps = self.steps_before(epoch, global_batch) + np.arange(len(order)) // global_batch
        return steps * len(self) + order

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, k = key if isinstance(key, tuple) else (0, key)
        step, clip = divmod(int(k), len(self))
        sample = self.base[(epoch, clip)]
        target = sample["target"]
        T, J = target.shape[:2]
        rng = np.random.default_rng([self.seed, MASK_STREAM + self.base.stream, int(epoch), clip])
        mask = sample_mpm_mask(rng, T, J, self.cfg)
        task = MPM_TASKS.index(task_for_step(self.cfg, self.seed, step)) if self.base.train else 0
        sample["target_2d"] = target[..., :2].clone()
        if self.root_relative:
            sample["target"] = target - target[..., :1, :]
        sample["mask"] = torch.from_numpy(mask)
        sample["task"] = torch.tensor(task, dtype=torch.int64)
        return sample


def build_data(cfg: RunConfig, sources: list[MotionSource] | None) -> tuple[MpmClipDataset, MpmClipDataset | None]:
    """Training and validation MpmClipDatasets from the config's files (or the given sources)."""
    base_data = dataclasses.replace(cfg.data, mask_joint_ratio=0.0, mask_frame_ratio=0.0, root_relative=False)
    train, val = build_lift_data(dataclasses.replace(cfg, data=base_data), sources)
    wrap = dict(cfg=cfg.mpm2d3d, seed=cfg.seed, root_relative=cfg.data.root_relative)
    return MpmClipDataset(train, **wrap), (MpmClipDataset(val, **wrap) if val is not None else None)


# ----------------------------------------------------------------------------------------------------------------------
# The task
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class Mpm2d3dTask:
    """Training loss of the step's task; validation of all three (module docstring)."""

    cfg: Mpm2d3dConfig = field(default_factory=Mpm2d3dConfig)
    name: str = "mpm2d3d"
    head_prefixes: tuple[str, ...] = ("head.", "encoder.head.")  # MPM parts and the lifting head
    best_metric: str = "mpjpe_mm"

    def weight(self, task: str) -> float:
        return {"2d": self.cfg.w_2d, "3d": self.cfg.w_3d, "lift": self.cfg.w_lift}[task]

    def loss(self, module: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The step's task (``batch['task']``, equal over the batch). Terms: loss_2d, loss_3d, loss_lift (0 on steps
        of the other tasks, so a logged window mean is the task's mean times its share of the steps)."""
        task = MPM_TASKS[int(batch["task"][0])]
        x = batch["target"] if task == "3d" else batch["input"]
        loss = mpm_losses(task, module(x, batch["mask"], task=task), batch)
        zero = torch.zeros((), device=loss.device)
        terms = {f"loss_{t}": (loss.detach() if t == task else zero) for t in MPM_TASKS}
        return self.weight(task) * loss, terms

    def eval_sums(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, mask, target = batch["input"], batch["mask"], batch["target"].float()
        pred = {
            "2d": model(x, mask, task="2d").float(),
            "3d": model(target, mask, task="3d").float(),
            "lift": model(x, mask, task="lift").float(),
        }
        loss = sum(self.weight(t) * mpm_losses(t, pred[t], batch) for t in MPM_TASKS)
        plain = model(x).float()  # the unmasked lifting: the DSTformer alone
        is_3d = batch["has_3d"] > 0.5
        scale = 1000.0 * batch["factor"][is_3d].float()[..., None]  # (B3, T, 1) mm per normalised unit
        m3 = mask[is_3d].float()

        def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # (B3, T, J) millimetres
            return torch.linalg.vector_norm(a - b, dim=-1) * scale

        rel = _root_relative(plain[is_3d]) * scale[..., None]
        gt_rel = _root_relative(target[is_3d]) * scale[..., None]
        pa = torch.linalg.vector_norm(procrustes_align(rel, gt_rel) - gt_rel, dim=-1)
        w2 = mask.float() * batch["weight_2d"].float()
        err2 = torch.linalg.vector_norm(pred["2d"] - batch["target_2d"].float(), dim=-1)
        n = float(x.shape[0])
        return {
            "loss": loss.detach() * n,
            "samples": torch.tensor(n),
            "mpjpe_mm": torch.linalg.vector_norm(rel - gt_rel, dim=-1).sum(),
            "pa_mpjpe_mm": pa.sum(),
            "joints_3d": torch.tensor(float(rel.shape[0] * rel.shape[1] * rel.shape[2])),
            "lift_masked_mpjpe_mm": mm(_root_relative(pred["lift"][is_3d]), _root_relative(target[is_3d])).sum(),
            "complete3d_mpjpe_mm": (mm(pred["3d"][is_3d], target[is_3d]) * m3).sum(),
            "complete2d_mm": (mm(pred["2d"][is_3d], batch["target_2d"][is_3d].float()) * m3).sum(),
            "masked_3d": m3.sum(),
            "complete2d_norm": (err2 * w2).sum(),
            "masked_2d": w2.sum(),
        }

    def summarise(self, sums: dict[str, float]) -> dict[str, float]:
        out = {"loss": sums["loss"] / max(sums["samples"], 1.0)}
        if sums["joints_3d"] > 0:
            for k in ("mpjpe_mm", "pa_mpjpe_mm", "lift_masked_mpjpe_mm"):
                out[k] = sums[k] / sums["joints_3d"]
        if sums["masked_3d"] > 0:
            out["complete3d_mpjpe_mm"] = sums["complete3d_mpjpe_mm"] / sums["masked_3d"]
            out["complete2d_mm"] = sums["complete2d_mm"] / sums["masked_3d"]
        if sums["masked_2d"] > 0:
            out["complete2d_norm"] = sums["complete2d_norm"] / sums["masked_2d"]
        return out


def _root_relative(joints: torch.Tensor) -> torch.Tensor:
    return joints - joints[..., :1, :]


# ----------------------------------------------------------------------------------------------------------------------
# The pretext interface (mocli.pretexts.Pretext)
# ----------------------------------------------------------------------------------------------------------------------


def check_config(cfg: RunConfig, world: int = 1, ckpt: dict[str, Any] | None = None) -> None:
    """One-line MocliErrors for settings that cannot work: the lift checks, then the mpm2d3d section."""
    check_lift(cfg, world, ckpt)
    m = cfg.mpm2d3d
    parse_tasks(m.tasks)
    if m.schedule not in SCHEDULES:
        raise MocliError(f"mpm2d3d.schedule must be {' or '.join(SCHEDULES)}, not {m.schedule!r}")
    for key in ("joint_ratio", "frame_ratio", "drop_frame_ratio"):
        if not 0.0 <= getattr(m, key) <= 1.0:
            raise MocliError(f"mpm2d3d.{key} must be in [0, 1], not {getattr(m, key)}")
    for key in ("w_2d", "w_3d", "w_lift"):
        if getattr(m, key) < 0:
            raise MocliError(f"mpm2d3d.{key} must be >= 0, not {getattr(m, key)}")
    if m.hidden_dim < 0:
        raise MocliError(f"mpm2d3d.hidden_dim must be >= 0, not {m.hidden_dim}")
    if ckpt is not None and MPM_HEAD not in ckpt.get("heads", {}):
        raise MocliError(f"cannot resume mpm2d3d: the checkpoint has no {MPM_HEAD} head")


def build(
    cfg: RunConfig, sources: list[MotionSource] | None, resume: dict[str, Any] | None
) -> tuple[Mpm2d3dModel, Mpm2d3dTask, MpmClipDataset, MpmClipDataset | None]:
    """(model, task, train_set, val_set). The model: the resumed last.pt; else ``cfg.init``'s encoder (and its MPM
    head when it has one); else a fresh ``cfg.model`` DSTformer with fresh MPM parts."""
    from mocli.models.checkpoint import model_from_checkpoint
    from mocli.models.registry import create_model
    from mocli.utils.seed import seed_everything

    train_set, val_set = build_data(cfg, sources)
    seed_everything(cfg.seed)
    if resume is not None:
        model = mpm_model_from_checkpoint(resume, "last.pt")
    else:
        init = load_init(cfg.init) if cfg.init else None
        if init is not None and MPM_HEAD in init.get("heads", {}):
            model = mpm_model_from_checkpoint(init, f"--init {cfg.init}")
        else:
            encoder = model_from_checkpoint(init, f"--init {cfg.init}") if init else create_model(cfg.model)
            if not isinstance(encoder, DSTformer):
                name = init["arch"]["name"] if init else cfg.model
                raise MocliError(f"--pretext mpm2d3d trains a DSTformer; {name} is a {type(encoder).__name__}")
            model = new_mpm_model(
                encoder, hidden_dim=cfg.mpm2d3d.hidden_dim, root_relative=cfg.data.root_relative,
                clip_len=cfg.data.clip_len,
            )  # fmt: skip
        if init is not None:
            cfg.model = init["arch"]["name"]
    return model, Mpm2d3dTask(cfg.mpm2d3d), train_set, val_set
