"""Per-frame and per-sequence errors of root-relative poses, in the input's units (mm in every benchmark).

``mocli.metrics`` gives means; a benchmark needs per-frame values to group frames by action or source and to keep
each frame's weight. The maths is the same (Procrustes from ``mocli.metrics``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mocli.metrics import acceleration_error, procrustes_align
from mocli.skeleton import H36M_17, H36M_LIMBS

__all__ = ["frame_errors", "acceleration_sum"]


def frame_errors(
    pred: np.ndarray, gt: np.ndarray, keys: Iterable[str] = ("mpjpe", "pa_mpjpe")
) -> dict[str, np.ndarray]:
    """Per-frame errors of poses (T,J,3): 'mpjpe' (mean joint distance), 'pa_mpjpe' (after a similarity
    Procrustes per frame) and/or 'pa_limbs' (H36M-17 only: Procrustes fitted to and scored on the 12 limb joints
    ``H36M_LIMBS``, blind to where a rig puts the trunk), each (T,) in the input's units."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ")
    keys = set(keys)
    out = {}
    if "mpjpe" in keys:
        out["mpjpe"] = np.linalg.norm(pred - gt, axis=-1).mean(axis=-1)
    if "pa_mpjpe" in keys:
        out["pa_mpjpe"] = np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean(axis=-1)
    if "pa_limbs" in keys:
        if pred.shape[-2] != H36M_17.num_joints:
            raise ValueError(f"limb errors need H36M-17 poses, got {pred.shape[-2]} joints")
        p, g = pred[..., H36M_LIMBS, :], gt[..., H36M_LIMBS, :]
        out["pa_limbs"] = np.linalg.norm(procrustes_align(p, g) - g, axis=-1).mean(axis=-1)
    return out


def acceleration_sum(pred: np.ndarray, gt: np.ndarray) -> tuple[float, int]:
    """(sum, count) of the per-joint acceleration errors of a sequence (T,J,3) (units per frame^2).

    ``count`` = (T - 2) * J terms; (0.0, 0) for fewer than 3 frames.
    """
    if pred.shape[0] < 3:
        return 0.0, 0
    count = (pred.shape[0] - 2) * pred.shape[1]
    return float(acceleration_error(pred, gt)) * count, count
