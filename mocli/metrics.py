"""Evaluation metrics for 3D human pose and mesh sequences.

Every metric takes ``pred`` and ``gt`` of the same shape ``(..., J, 3)``: any number of leading dimensions
(``(J, 3)``, ``(T, J, 3)``, ``(B, T, J, 3)``, ...), ``J`` joints (or ``V`` vertices) and xyz coordinates. Errors are
reported in the units of the input (millimetres for the usual Human3.6M protocols with root-relative poses in mm).

Each metric is written once, in torch. The return type follows the input:

* numpy (or array-like) in -> computed in float64 on the CPU, returned as a Python ``float``
  (``procrustes_align`` returns a numpy array of the input's floating dtype);
* torch in -> computed in the input's floating dtype on its device, returned as a 0-dim tensor
  (``procrustes_align``: a tensor of the input's shape) that is differentiable with respect to ``pred`` and ``gt``.

If one argument is a tensor and the other is not, the other is converted to the tensor's dtype and device.

Protocols implemented:

* :func:`mpjpe` -- MPJPE, Human3.6M Protocol 1.
* :func:`pa_mpjpe` -- PA-MPJPE, Human3.6M Protocol 2 (per-pose similarity Procrustes, no reflections).
* :func:`n_mpjpe` -- N-MPJPE (per-pose scale-only alignment; Rhodin et al. 2018, VideoPose3D, MotionBERT).
* :func:`mpve` -- MPVE / PVE, mean per-vertex error of meshes.
* :func:`velocity_error` -- MPJVE, mean per-joint velocity error (VideoPose3D).
* :func:`acceleration_error` -- acceleration error of HMMR / VIBE.

Without ground truth, :func:`skeleton_plausibility` measures properties every true 3D skeleton sequence has (bones of
constant length, left/right symmetry) and how much it moves; numpy in, Python floats out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

from mocli.bones import bone_lengths
from mocli.skeleton import H36M_17

__all__ = [
    "mpjpe",
    "pa_mpjpe",
    "procrustes_align",
    "n_mpjpe",
    "mpve",
    "velocity_error",
    "acceleration_error",
    "skeleton_plausibility",
    "nearest_exemplar",
]

ArrayLike = np.ndarray | torch.Tensor
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


# ----------------------------------------------------------------------------------------------------------------------
# Backend handling: numpy <-> torch conversion, done once for every metric.
# ----------------------------------------------------------------------------------------------------------------------


def _check_shapes(pred: torch.Tensor, gt: torch.Tensor, min_ndim: int = 2) -> None:
    if tuple(pred.shape) != tuple(gt.shape):
        raise ValueError(f"pred and gt must have the same shape, got pred {tuple(pred.shape)} and gt {tuple(gt.shape)}")
    if pred.ndim < min_ndim:
        raise ValueError(f"expected inputs of shape (..., J, 3) with at least {min_ndim} dims, got {tuple(pred.shape)}")


def _as_tensors(pred: Any, gt: Any) -> tuple[torch.Tensor, torch.Tensor, np.dtype | None]:
    """Convert ``pred`` and ``gt`` to tensors of one floating dtype on one device.

    Returns the two tensors and, for numpy input, the numpy dtype to give array results (``None`` for torch input).
    """
    if isinstance(pred, torch.Tensor) or isinstance(gt, torch.Tensor):
        ref = pred if isinstance(pred, torch.Tensor) else gt
        both = isinstance(pred, torch.Tensor) and isinstance(gt, torch.Tensor)
        dtype = torch.promote_types(pred.dtype, gt.dtype) if both else ref.dtype
        p = torch.as_tensor(pred, device=ref.device)
        g = torch.as_tensor(gt, device=ref.device)
        if not dtype.is_floating_point:
            dtype = torch.get_default_dtype()
        return p.to(dtype), g.to(dtype), None
    p_np, g_np = np.asarray(pred), np.asarray(gt)
    out_dtype = np.result_type(p_np, g_np)
    if not np.issubdtype(out_dtype, np.floating):
        out_dtype = np.dtype(np.float64)
    p = torch.from_numpy(np.ascontiguousarray(p_np, dtype=np.float64))
    g = torch.from_numpy(np.ascontiguousarray(g_np, dtype=np.float64))
    return p, g, out_dtype


def _scalar_metric(fn: Callable[..., torch.Tensor], pred: Any, gt: Any, min_ndim: int = 2, **kwargs: Any) -> Any:
    """Run the torch metric ``fn`` on ``pred``/``gt``; return a Python float for numpy input, a tensor otherwise."""
    p, g, np_dtype = _as_tensors(pred, gt)
    _check_shapes(p, g, min_ndim)
    out = fn(p, g, **kwargs)
    return out if np_dtype is None else float(out)


# ----------------------------------------------------------------------------------------------------------------------
# Torch implementations (the maths, written once).
# ----------------------------------------------------------------------------------------------------------------------


def _mean_dist(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(pred - gt, dim=-1).mean()


def _procrustes(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Batched similarity Procrustes (Umeyama 1991) of ``pred`` onto ``gt``, both (..., J, D); proper rotations only.

    Computed in at least float32 with autocast off (an SVD has no bf16/fp16 kernel, and a validation pass inside
    bf16 autocast hands in bf16 tensors); the result has that dtype."""
    dtype = torch.promote_types(torch.promote_types(pred.dtype, gt.dtype), torch.float32)
    with torch.autocast(pred.device.type, enabled=False):
        return _procrustes_exact(pred.to(dtype), gt.to(dtype))


def _procrustes_exact(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    mu_p = pred.mean(dim=-2, keepdim=True)
    mu_g = gt.mean(dim=-2, keepdim=True)
    x, y = pred - mu_p, gt - mu_g
    # Cross-covariance H = X^T Y = U S V^T; the rotation maximising tr(R^T H) over SO(D) is R = U D V^T with
    # D = diag(1, ..., 1, sign(det(U V^T))) (flipping the axis of the smallest singular value removes a reflection).
    u, s, vh = torch.linalg.svd(x.transpose(-1, -2) @ y, full_matrices=False)
    flip = (torch.linalg.det(u @ vh).detach() < 0).to(s.dtype)
    d = torch.cat([torch.ones_like(s[..., :-1]), (1.0 - 2.0 * flip).unsqueeze(-1)], dim=-1)
    rot = (u * d.unsqueeze(-2)) @ vh  # (..., D, D), applied to row vectors: x @ rot
    var = x.pow(2).sum(dim=(-2, -1)).clamp_min(torch.finfo(x.dtype).tiny)
    scale = (s * d).sum(dim=-1) / var  # (...,)
    return scale[..., None, None] * (x @ rot) + mu_g


def _pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    return _mean_dist(_procrustes(pred, gt), gt)


def n_scale(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-pose least-squares scale of pred onto gt, <pred, gt> / <pred, pred>: (..., J, 3) -> (..., 1, 1)."""
    pp = pred.pow(2).sum(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(pred.dtype).tiny)
    return (pred * gt).sum(dim=(-2, -1), keepdim=True) / pp


def _n_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    return _mean_dist(n_scale(pred, gt) * pred, gt)


def _time_axis(ndim: int, axis: int) -> int:
    ax = axis + ndim if axis < 0 else axis
    if not 0 <= ax < ndim - 2:
        raise ValueError(f"time axis {axis} must be a leading dim of a (..., T, J, 3) input with {ndim} dims")
    return ax


def _velocity_error(pred: torch.Tensor, gt: torch.Tensor, axis: int) -> torch.Tensor:
    ax = _time_axis(pred.ndim, axis)
    if pred.shape[ax] < 2:
        raise ValueError(f"velocity error needs at least 2 frames along axis {axis}, got shape {tuple(pred.shape)}")
    return _mean_dist(torch.diff(pred, dim=ax), torch.diff(gt, dim=ax))


def _acceleration_error(pred: torch.Tensor, gt: torch.Tensor, axis: int) -> torch.Tensor:
    ax = _time_axis(pred.ndim, axis)
    if pred.shape[ax] < 3:
        raise ValueError(f"acceleration error needs at least 3 frames along axis {axis}, got shape {tuple(pred.shape)}")
    return _mean_dist(torch.diff(pred, n=2, dim=ax), torch.diff(gt, n=2, dim=ax))


# ----------------------------------------------------------------------------------------------------------------------
# Public API.
# ----------------------------------------------------------------------------------------------------------------------


def mpjpe(pred: ArrayLike, gt: ArrayLike) -> float | torch.Tensor:
    """Mean per-joint position error (MPJPE; Human3.6M Protocol 1).

    Args:
        pred: predicted joints, (..., J, 3).
        gt: ground-truth joints, same shape as ``pred``.

    Returns:
        Mean Euclidean distance over all poses and joints, in the input's units (mm for root-relative mm poses).
        Python float for numpy input, 0-dim tensor for torch input.
    """
    return _scalar_metric(_mean_dist, pred, gt)


def mpve(pred_verts: ArrayLike, gt_verts: ArrayLike) -> float | torch.Tensor:
    """Mean per-vertex error (MPVE, also called PVE / V2V) of meshes in corresponding topology.

    Args:
        pred_verts: predicted vertices, (..., V, 3).
        gt_verts: ground-truth vertices, same shape.

    Returns:
        Mean Euclidean vertex distance, in the input's units. Python float for numpy input, 0-dim tensor for torch.
    """
    return _scalar_metric(_mean_dist, pred_verts, gt_verts)


def procrustes_align(pred: ArrayT, gt: ArrayT) -> ArrayT:
    """Align each pose of ``pred`` onto ``gt`` with the optimal similarity transform (rotation, scale, translation).

    Solved per pose in closed form via SVD (Umeyama 1991), batched over the leading dims; the rotation is forced to be
    proper (det = +1), so a mirrored pose is not matched by a reflection.

    Args:
        pred: poses to align, (..., J, 3).
        gt: target poses, same shape.

    Returns:
        ``s * R pred + t`` for each pose, same shape as ``pred``, in ``gt``'s units. numpy in (computed in float64,
        returned in the input's floating dtype) -> numpy out; torch in -> differentiable tensor out.
    """
    p, g, np_dtype = _as_tensors(pred, gt)
    _check_shapes(p, g)
    out = _procrustes(p, g)
    return out if np_dtype is None else out.numpy().astype(np_dtype, copy=False)  # type: ignore[return-value]


def pa_mpjpe(pred: ArrayLike, gt: ArrayLike) -> float | torch.Tensor:
    """Procrustes-aligned MPJPE (PA-MPJPE, P-MPJPE; Human3.6M Protocol 2).

    Each pose of ``pred`` is aligned to the matching pose of ``gt`` by :func:`procrustes_align` (similarity transform,
    no reflections), then the MPJPE is taken.

    Args:
        pred: predicted joints, (..., J, 3).
        gt: ground-truth joints, same shape.

    Returns:
        Mean Euclidean error after alignment, in the input's units. Python float for numpy, 0-dim tensor for torch.
    """
    return _scalar_metric(_pa_mpjpe, pred, gt)


def n_mpjpe(pred: ArrayLike, gt: ArrayLike) -> float | torch.Tensor:
    """Scale-normalised MPJPE (N-MPJPE; Rhodin et al. 2018, as in VideoPose3D and MotionBERT).

    Each pose of ``pred`` is multiplied by its least-squares optimal scale ``s = <pred, gt> / <pred, pred>`` (sums over
    joints and coordinates of that pose; no rotation or translation), then the MPJPE is taken.

    Args:
        pred: predicted joints, (..., J, 3), normally root-relative.
        gt: ground-truth joints, same shape.

    Returns:
        Mean Euclidean error after scaling, in the input's units. Python float for numpy, 0-dim tensor for torch.
    """
    return _scalar_metric(_n_mpjpe, pred, gt)


def velocity_error(pred: ArrayLike, gt: ArrayLike, axis: int = -3) -> float | torch.Tensor:
    """Mean per-joint velocity error (MPJVE; VideoPose3D).

    Mean Euclidean distance between the first temporal differences ``x[t+1] - x[t]`` of ``pred`` and ``gt``.

    Args:
        pred: predicted joint sequences, (..., T, J, 3) with T >= 2.
        gt: ground-truth joint sequences, same shape.
        axis: the time axis; the default -3 is the dim before J (axis 0 of a (T, J, 3) sequence).

    Returns:
        Error in input units per frame. Python float for numpy input, 0-dim tensor for torch input.
    """
    return _scalar_metric(_velocity_error, pred, gt, min_ndim=3, axis=axis)


def acceleration_error(pred: ArrayLike, gt: ArrayLike, axis: int = -3) -> float | torch.Tensor:
    """Acceleration error (HMMR / VIBE "Accel Error").

    Mean Euclidean distance between the second temporal differences ``x[t+1] - 2 x[t] + x[t-1]`` of ``pred`` and
    ``gt`` (VIBE reports it in mm/frame^2).

    Args:
        pred: predicted joint sequences, (..., T, J, 3) with T >= 3.
        gt: ground-truth joint sequences, same shape.
        axis: the time axis; the default -3 is the dim before J (axis 0 of a (T, J, 3) sequence).

    Returns:
        Error in input units per frame^2. Python float for numpy input, 0-dim tensor for torch input.
    """
    return _scalar_metric(_acceleration_error, pred, gt, min_ndim=3, axis=axis)


# ----------------------------------------------------------------------------------------------------------------------
# Properties of one H36M-17 sequence, without ground truth.
# ----------------------------------------------------------------------------------------------------------------------

LIMB_PAIRS = {"thigh": (5, 2), "shin": (6, 3), "upper arm": (12, 15), "forearm": (13, 16)}
"""The limbs whose left/right symmetry ``skeleton_plausibility`` measures, each by the H36M-17 child joints of its left
and right bone."""


def skeleton_plausibility(joints: np.ndarray) -> dict[str, float | None]:
    """Properties of a (T,17,3) H36M-17 sequence in metres, T >= 1, every value finite.

    Returns:
        bone_length_cv_pct: the coefficient of variation (std / mean over frames) of each of the 16 bones, averaged,
            in % (0 for a rigid skeleton);
        asymmetry_pct: |left - right| / their mean for thigh, shin, upper arm and forearm, averaged over limbs and
            frames, in %;
        accel_mm_per_frame2: mean norm of the second difference of the root-relative joints, mm/frame^2 (jitter);
            None when T < 3;
        speed_mm_per_frame: mean norm of their first difference, mm/frame (read the jitter with it: a still pose
            has none of either); None when T < 2.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (17, 3) or len(joints) < 1:
        raise ValueError(f"expected (T>=1, 17, 3) joints, got shape {joints.shape}")
    lengths = bone_lengths(joints)
    bone_of = {c: i for i, (_, c) in enumerate(H36M_17.bones)}
    left = lengths[:, [bone_of[c] for c, _ in LIMB_PAIRS.values()]]
    right = lengths[:, [bone_of[c] for _, c in LIMB_PAIRS.values()]]
    rel = joints - joints[:, :1]
    speed = np.linalg.norm(np.diff(rel, axis=0), axis=-1).mean() * 1000 if len(rel) >= 2 else None
    accel = np.linalg.norm(rel[2:] - 2 * rel[1:-1] + rel[:-2], axis=-1).mean() * 1000 if len(rel) >= 3 else None
    return {
        "bone_length_cv_pct": float((lengths.std(0) / lengths.mean(0)).mean() * 100),
        "asymmetry_pct": float((np.abs(left - right) / ((left + right) / 2)).mean() * 100),
        "accel_mm_per_frame2": None if accel is None else float(accel),
        "speed_mm_per_frame": None if speed is None else float(speed),
    }


def nearest_exemplar(queries: torch.Tensor, exemplars: torch.Tensor, exemplar_labels: torch.Tensor) -> torch.Tensor:
    """(N, D) query and (K, D) exemplar embeddings, (K,) exemplar classes -> (N,) class of the most cosine-similar
    exemplar of each query (one-shot recognition; ties: the first exemplar)."""
    sim = (
        torch.nn.functional.normalize(queries.float(), dim=-1)
        @ torch.nn.functional.normalize(exemplars.float(), dim=-1).T
    )  # (N, K)
    return exemplar_labels[sim.argmax(dim=1)]
