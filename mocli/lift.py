"""2D keypoint sequences of any length -> 3D joints: windows, normalisation, the encoder, blending, metric scale.

Pure orchestration around a model: no file I/O. The data flow per sequence:

    keypoints (T,17,3) px + conf
      -> windows of the model's clip length (``mocli.predict``, policy 'blend': overlapping by a third, the last one
         ending at the last frame; a window shorter than the clip length padded with its last frame)
      -> per window: MotionBERT's crop-scale normalisation (T_w,17,3) in [-1,1] + conf
      -> the model (flip test-time augmentation), windows batched -> (T_w,17,3) normalised 3D, root-relative
      -> per window: scaled to metres with an average adult's body size (monocular 2D cannot observe scale)
      -> blended across overlaps -> (T,17,3) metres, root-relative, camera axes (x right, y down, z forward)
      -> (bones="fixed") every bone set to one length for the whole sequence, the same on the left and the right:
         the median of the lifter's own lengths over the frames with a person (a body is rigid between joints)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mocli.data.transforms import crop_scale
from mocli.predict import Runtime, plan_sequence, read_frames, run_batches, window_inputs
from mocli.skeleton import H36M_17, median_bone_lengths, set_bone_lengths

__all__ = ["LiftOptions", "lift_keypoints", "body_size", "CANONICAL_BODY_SIZE_M"]

# Metric scale of the output: mean leg length (hip-knee-ankle) plus the pelvis-spine-thorax chain of an average
# adult, in metres (0.80 + 0.49; the mean of mocli's mocap sources lies within 5 %).
CANONICAL_BODY_SIZE_M = 1.29
_LEGS = [(1, 2), (2, 3), (4, 5), (5, 6)]
_TORSO = [(0, 7), (7, 8)]


@dataclass
class LiftOptions:
    clip_len: int = 243  # frames per window (the model's training clip length)
    stride: int | None = None  # default: clip_len * 2 // 3 (a third of each window overlaps the next)
    flip: bool = True  # flip test-time augmentation
    batch_size: int = 8  # windows per forward pass
    precision: str = "fp32"  # fp32 | bf16
    min_conf: float = 0.0  # keypoints at or below this confidence are treated as missing
    bones: str = "fixed"  # fixed: one symmetric length per bone for the sequence | free: the lifter's own lengths


def body_size(joints: np.ndarray) -> np.ndarray:
    """(..., 17, 3) -> (...,) mean leg length + pelvis-to-thorax length, in the joints' units."""

    def length(pairs):
        return sum(np.linalg.norm(joints[..., a, :] - joints[..., b, :], axis=-1) for a, b in pairs)

    return length(_LEGS) / 2 + length(_TORSO)


def _to_metres(pose: np.ndarray, seen: np.ndarray | None = None) -> np.ndarray:
    """(T,17,3) normalised, root-relative -> metres, with one scale per window: the median over its frames with the
    person (``seen`` (T,) bool; all frames when None or when none is seen). Frames without anyone are lifted from
    an all-zero input and would pull the median down, blowing up a person seen in only part of the window."""
    if seen is not None and seen.any():
        size = float(np.median(body_size(pose[seen])))
    else:
        size = float(np.median(body_size(pose)))
    return pose * (CANONICAL_BODY_SIZE_M / size) if size > 1e-6 else pose * 0.0


def _window_input(keypoints: np.ndarray, frames: np.ndarray, min_conf: float) -> np.ndarray:
    """Normalised model input (n,17,3) of the window of ``frames`` (n,): crop-scale over its confident keypoints."""
    window = keypoints[frames].copy()
    missing = ~np.isfinite(window[..., :2]).all(-1) | (window[..., 2] <= min_conf)
    window[missing] = 0.0  # missing keypoints look like MotionBERT's masked joints: x = y = conf = 0
    norm, _ = crop_scale(window)
    return norm.astype(np.float32)


def lift_keypoints(
    model: torch.nn.Module,
    keypoints: np.ndarray,
    options: LiftOptions | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """3D joints for a whole sequence of 2D keypoints.

    Args:
        model: maps (B,T,17,3) normalised 2D + conf to (B,T,17,3) normalised 3D (a DSTformer, or an STMO in
            ``mocli.models.stmo.ManyToOne``: each frame the centre of its own window, within this lift window).
        keypoints: (T,17,3) pixels + confidence, H36M-17 order; NaN or conf 0 where a joint or frame is missing.
        options: windowing, flip TTA, batching, precision, bone lengths.
    Returns:
        (T,17,3) float32 metres, root-relative (pelvis at 0), camera axes (x right, y down, z forward).
        Frames are returned for every input frame; callers mark frames without a person.
    """
    opts = options or LiftOptions()
    if opts.bones not in ("fixed", "free"):
        raise ValueError(f"bones must be 'fixed' or 'free', got {opts.bones!r}")
    device = torch.device(device)
    T = len(keypoints)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (H36M_17.num_joints, 3):
        raise ValueError(f"expected (T,17,3) keypoints, got {keypoints.shape}")
    plan = plan_sequence(T, opts.clip_len, "blend", stride=opts.stride)
    inputs = window_inputs(plan, make=lambda frames: _window_input(keypoints, frames, opts.min_conf))
    pred = run_batches(model, inputs, Runtime(opts.batch_size, device, opts.precision, opts.flip))
    pred = pred - pred[:, :, :1]  # root-relative
    seen = (np.isfinite(keypoints[..., :2]).all(-1) & (keypoints[..., 2] > opts.min_conf)).any(-1)
    per_window = [_to_metres(p[: e - s], seen[s:e]) for p, (s, e) in zip(pred, plan.windows, strict=True)]
    joints = read_frames(plan, per_window)
    if opts.bones == "fixed":
        if seen.any():
            joints = set_bone_lengths(joints, median_bone_lengths(joints[seen], symmetric=True))
    return joints.astype(np.float32)
