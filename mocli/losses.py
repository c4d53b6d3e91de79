"""Training losses (torch, differentiable). MotionBERT's pretraining objective:

- 3D data: MPJPE + 0.5 * N-MPJPE (per-pose scale-aligned) + 20 * velocity loss (MPJVE), on normalised 3D;
- 2D-only data: the confidence-weighted 2D error of the orthographic projection (x, y) of the prediction.

The metric definitions are those of ``mocli.metrics`` (reused, not rewritten). All inputs are (B, T, J, C) with
T the time axis; losses are computed in float32 whatever the autocast precision of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mocli.metrics import mpjpe, n_mpjpe, velocity_error

__all__ = ["loss_mpjpe", "loss_n_mpjpe", "loss_velocity", "loss_2d_weighted", "LiftLossWeights", "lift_loss"]


def loss_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean joint error. pred, target (..., J, 3) -> 0-dim tensor in their units."""
    return mpjpe(pred.float(), target.float())


def loss_n_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MPJPE after the per-pose least-squares scale of pred onto target. (..., J, 3) -> 0-dim tensor."""
    return n_mpjpe(pred.float(), target.float())


def loss_velocity(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean error of frame-to-frame displacements. (B, T, J, 3) with T >= 2 -> 0-dim tensor."""
    return velocity_error(pred.float(), target.float(), axis=-3)


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
        total loss (0-dim) and the detached unweighted terms {'mpjpe', 'n_mpjpe', 'velocity', 'proj_2d'} (a term is 0
        when the batch has no sample of its kind).
    """
    is_3d = has_3d > 0.5
    total = pred.float().sum() * 0.0  # keeps every parameter in the graph when a kind of sample is absent
    zero = total.detach()
    terms = {"mpjpe": zero, "n_mpjpe": zero, "velocity": zero, "proj_2d": zero}
    if is_3d.any():
        p3, t3 = pred[is_3d], target[is_3d]
        terms["mpjpe"] = loss_mpjpe(p3, t3)
        terms["n_mpjpe"] = loss_n_mpjpe(p3, t3)
        terms["velocity"] = loss_velocity(p3, t3) if p3.shape[1] > 1 else zero
    if (~is_3d).any():
        terms["proj_2d"] = loss_2d_weighted(pred[~is_3d], target[~is_3d], weight_2d[~is_3d])
    for name, value in terms.items():
        total = total + getattr(weights, name) * value
    return total, {k: v.detach() for k, v in terms.items()}
