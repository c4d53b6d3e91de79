"""Training losses (torch, differentiable). MotionBERT's pretraining objective (``lift_loss``):

- 3D data: MPJPE + 0.5 * N-MPJPE (per-pose scale-aligned) + 20 * velocity loss (MPJVE), on normalised 3D; the
  N-MPJPE scale may be bounded (``n_mpjpe_max_scale``) so that a shrinking output cannot hide from it;
- 2D-only data: the confidence-weighted 2D error of the orthographic projection (x, y) of the prediction.

Finetuning's: ``supcon_loss`` (one-shot action embeddings) and ``mesh_loss`` (SMPL).

The metric definitions are those of ``mocli.metrics`` (reused, not rewritten). All inputs are (B, T, J, C) with
T the time axis; losses are computed in float32 whatever the autocast precision of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mocli.config import MeshLossConfig
from mocli.metrics import mpjpe, n_mpjpe, n_scale, velocity_error
from mocli.models.rotations import matrix_to_axis_angle
from mocli.skeleton import H36M_17

__all__ = [
    "loss_mpjpe", "loss_n_mpjpe", "loss_velocity", "loss_bone_length", "loss_2d_weighted", "LiftLossWeights",
    "lift_loss", "supcon_loss", "mesh_loss",
]  # fmt: skip


def loss_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean joint error. pred, target (..., J, 3) -> 0-dim tensor in their units."""
    return mpjpe(pred.float(), target.float())


def loss_n_mpjpe(pred: torch.Tensor, target: torch.Tensor, max_scale: float = 0.0) -> torch.Tensor:
    """MPJPE after the per-pose least-squares scale of pred onto target. (..., J, 3) -> 0-dim tensor.

    ``max_scale`` > 1 clamps that scale to [1 / max_scale, max_scale]. Unbounded (0, MotionBERT's loss) the term cannot
    see the size of the prediction and its gradient grows as 1 / |pred| when the prediction shrinks (the collapse of
    docs/pretrain.md); bounded, a prediction smaller than the target by more than ``max_scale`` is scored as
    ``max_scale * pred``, whose gradient is that of an MPJPE and grows it back. Within the bounds both are the same.
    """
    if max_scale == 0.0:
        return n_mpjpe(pred.float(), target.float())
    if not max_scale > 1.0:
        raise ValueError(f"max_scale must be 0 (unbounded) or above 1, got {max_scale}")
    p, t = pred.float(), target.float()
    scale = n_scale(p, t).clamp(1.0 / max_scale, max_scale)
    return mpjpe(scale * p, t)


def loss_velocity(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean error of frame-to-frame displacements. (B, T, J, 3) with T >= 2 -> 0-dim tensor."""
    return velocity_error(pred.float(), target.float(), axis=-3)


def loss_bone_length(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the 16 H36M-17 bone lengths, over bones and frames.

    A lifter trained on the joint errors alone hedges on the depth it cannot be sure of and comes out too flat,
    with limbs too short; this term asks for the target's lengths whatever the depth's sign.

    Args:
        pred, target: (..., 17, 3) in one unit (normalised).
    Returns:
        0-dim tensor, in that unit.
    """
    child = torch.arange(1, H36M_17.num_joints, device=pred.device)
    parent = torch.tensor(H36M_17.parents[1:], device=pred.device)
    p, t = pred.float(), target.float()
    length_p = torch.linalg.vector_norm(p[..., child, :] - p[..., parent, :], dim=-1)
    length_t = torch.linalg.vector_norm(t[..., child, :] - t[..., parent, :], dim=-1)
    return (length_p - length_t).abs().mean()


def loss_2d_weighted(pred: torch.Tensor, target: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
    """Confidence-weighted 2D error: ``mean(conf * ||pred_xy - target_xy||)`` over all joints (as MotionBERT).

    Args:
        pred: (..., J, C >= 2) prediction; only x, y are used (its orthographic projection).
        target: (..., J, C >= 2) 2D target in the same units.
        conf: (..., J) weights in [0, 1].
    Returns:
        0-dim tensor, in the units of the input.
    """
    if pred.shape[:-1] != target.shape[:-1] or pred.shape[:-1] != conf.shape:
        raise ValueError(f"shapes differ: pred {tuple(pred.shape)}, target {tuple(target.shape)}, conf {conf.shape}")
    dist = torch.linalg.vector_norm(pred[..., :2].float() - target[..., :2].float(), dim=-1)
    return (conf.float() * dist).mean()


@dataclass(frozen=True)
class LiftLossWeights:
    """Weights of the terms of ``lift_loss`` (MotionBERT's values)."""

    mpjpe: float = 1.0
    n_mpjpe: float = 0.5
    velocity: float = 20.0
    proj_2d: float = 1.0
    n_mpjpe_max_scale: float = 0.0  # 0: the least-squares scale unbounded (MotionBERT); > 1: clamped to [1/x, x]
    bone_length: float = 0.0  # loss_bone_length of 3D samples (0: off, and no such term)


def lift_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight_2d: torch.Tensor,
    has_3d: torch.Tensor,
    weights: LiftLossWeights = LiftLossWeights(),
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The lift pretext loss of a batch mixing 3D and 2D-only samples.

    Args:
        pred: (B, T, J, 3) model output, normalised units.
        target: (B, T, J, 3) normalised 3D target (2D-only samples: x, y valid, depth ignored).
        weight_2d: (B, T, J) confidences for the 2D loss.
        has_3d: (B,) 1 for samples with a 3D target, 0 for 2D-only samples.
        weights: term weights.
    Returns:
        total loss (0-dim) and the detached unweighted terms {'mpjpe', 'n_mpjpe', 'velocity', 'proj_2d'}, and
        'bone_length' when its weight is above 0 (a term is 0 when the batch has no sample of its kind).
    """
    is_3d = has_3d > 0.5
    total = pred.float().sum() * 0.0  # keeps every parameter in the graph when a kind of sample is absent
    zero = total.detach()
    terms = {"mpjpe": zero, "n_mpjpe": zero, "velocity": zero, "proj_2d": zero}
    if weights.bone_length > 0:
        terms["bone_length"] = loss_bone_length(pred[is_3d], target[is_3d]) if is_3d.any() else zero
    if is_3d.any():
        p3, t3 = pred[is_3d], target[is_3d]
        terms["mpjpe"] = loss_mpjpe(p3, t3)
        terms["n_mpjpe"] = loss_n_mpjpe(p3, t3, weights.n_mpjpe_max_scale)
        terms["velocity"] = loss_velocity(p3, t3) if p3.shape[1] > 1 else zero
    if (~is_3d).any():
        terms["proj_2d"] = loss_2d_weighted(pred[~is_3d], target[~is_3d], weight_2d[~is_3d])
    for name, value in terms.items():
        total = total + getattr(weights, name) * value
    return total, {k: v.detach() for k, v in terms.items()}


def supcon_loss(emb: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, "L_out"), as MotionBERT's one-shot training.

    For each anchor i with at least one positive (another sample of its class):
    ``-1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t) )``, averaged over anchors.

    Args:
        emb: (N, D) unit-length embeddings.
        labels: (N,) class ids.
        temperature: t.
    Returns:
        0-dim loss (0 when no sample has a positive).
    """
    n = emb.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=emb.device)
    logits = (emb @ emb.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    count = positives.sum(dim=1)
    mean_pos = log_prob.masked_fill(~positives, 0.0).sum(dim=1) / count.clamp_min(1)
    has = count > 0
    return -mean_pos[has].mean() if has.any() else emb.sum() * 0.0


def mesh_loss(
    pred_joints_mm: torch.Tensor,
    gt_joints_mm: torch.Tensor,
    pred_rotmats: torch.Tensor,
    gt_rotmats: torch.Tensor,
    pred_betas: torch.Tensor,
    gt_betas: torch.Tensor,
    weights: MeshLossConfig = MeshLossConfig(),
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """MotionBERT's mesh loss.

    Args:
        pred_joints_mm, gt_joints_mm: (B, T, 17, 3) H36M joints from the SMPL vertices, millimetres (made
            root-relative here, joint 0 = pelvis).
        pred_rotmats, gt_rotmats: (B, T, 24, 3, 3) SMPL joint rotations.
        pred_betas, gt_betas: (B, T, 10).
        weights: term weights.
    Returns:
        total (0-dim) and the detached unweighted terms {'mpjpe' (mm), 'velocity' (mm/frame), 'pose', 'shape',
        'norm'}; 'norm' is the mean L2 norm of the predicted theta = (72 axis-angle radians, 10 betas).
    """
    pred_rel = pred_joints_mm - pred_joints_mm[..., :1, :]
    gt_rel = gt_joints_mm - gt_joints_mm[..., :1, :]
    zero = pred_rel.sum() * 0.0
    B, T = pred_rotmats.shape[:2]
    theta = torch.cat([matrix_to_axis_angle(pred_rotmats).reshape(B, T, 72), pred_betas], dim=-1)
    terms = {
        "mpjpe": loss_mpjpe(pred_rel, gt_rel),
        "velocity": loss_velocity(pred_rel, gt_rel) if T > 1 else zero,
        "pose": (pred_rotmats.float() - gt_rotmats.float()).abs().mean(),
        "shape": (pred_betas.float() - gt_betas.float()).abs().mean(),
        "norm": torch.linalg.vector_norm(theta.float(), dim=-1).mean(),
    }
    total = sum(getattr(weights, k) * v for k, v in terms.items())
    return total, {k: v.detach() for k, v in terms.items()}
