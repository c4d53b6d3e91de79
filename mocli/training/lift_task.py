"""MotionBERT's lift pretext (noisy, masked 2D -> 3D) as a pretext of ``mocli.pretexts``: its tasks (``LiftTask``
for a DSTformer, ``StmoLiftTask`` for P-STMO's many-to-one lifter), its data (``build_lift_data``) and its checks.
Finetuning's pose3d task and the mpm2d3d and action-text pretexts reuse these pieces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mocli.config import RunConfig, TrainingConfig, config_to_dict
from mocli.data.clips import LiftClipDataset
from mocli.data.sources import MotionSource
from mocli.errors import MocliError
from mocli.losses import LiftLossWeights, lift_loss
from mocli.metrics import procrustes_align
from mocli.models.checkpoint import model_from_checkpoint
from mocli.models.registry import arch_config, arch_kind, create_model
from mocli.models.stmo import STMO
from mocli.training.runs import build_datasets, init_encoder
from mocli.training.trainer import Batch
from mocli.utils.seed import seed_everything

__all__ = ["LiftTask", "StmoLiftTask", "lift_task", "build_lift_data", "check_config", "build"]


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
    """LiftTask's validation sums of a prediction (B,T,J,3) for ``batch`` (target, weight_2d, factor over T); in
    float32 whatever the autocast precision of the forward pass (a bf16 run's metrics are not rounded to bf16)."""
    pred = pred.float()
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


def _root_relative(joints: torch.Tensor) -> torch.Tensor:
    return joints - joints[..., :1, :]


def lift_task(model: nn.Module, cfg: TrainingConfig) -> LiftTask:
    """LiftTask for a DSTformer, StmoLiftTask for an STMO (whose clips must be exactly its maxlen frames)."""
    weights = LiftLossWeights(**config_to_dict(cfg.loss))
    if not isinstance(model, STMO):
        return LiftTask(weights)
    if cfg.data.clip_len != model.cfg.maxlen:
        raise MocliError(f"{cfg.model} takes exactly {model.cfg.maxlen} frames: use --clip-len {model.cfg.maxlen}")
    return StmoLiftTask(weights)


def build_lift_data(cfg: TrainingConfig, sources: list[MotionSource] | None = None):
    """Training and validation LiftClipDatasets from the config's files (or from given sources)."""
    return build_datasets(
        cfg.data,
        sources,
        lambda s, train, stride: LiftClipDataset(s, cfg.data, seed=cfg.seed, train=train, stride=stride),
    )


# ----------------------------------------------------------------------------------------------------------------------
# The pretext interface (mocli.pretexts.Pretext)
# ----------------------------------------------------------------------------------------------------------------------


def check_config(cfg: TrainingConfig, world: int = 1, ckpt: dict[str, Any] | None = None) -> None:
    """One-line MocliErrors for a clip length the model cannot take (the architecture of ``ckpt``, a loaded
    last.pt, else of ``cfg.model``), before any data is read."""
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


def build(cfg: RunConfig, sources: list[MotionSource] | None, resume: dict[str, Any] | None):
    """(model, task, train_set, val_set) of a lift run: the resumed last.pt's model, else ``cfg.init``'s encoder
    (its architecture replaces ``cfg.model``), else a fresh ``cfg.model``."""
    train_set, val_set = build_lift_data(cfg, sources)
    seed_everything(cfg.seed)
    if resume is not None:
        model = model_from_checkpoint(resume, "last.pt")
    elif cfg.init:
        model = init_encoder(cfg)
    else:
        model = create_model(cfg.model)
    return model, lift_task(model, cfg), train_set, val_set
