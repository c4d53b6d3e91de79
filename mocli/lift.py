"""2D keypoint sequences of any length -> 3D joints: windows, normalisation, the encoder, blending, metric scale.

Pure orchestration around a model: no file I/O. The data flow per sequence:

    keypoints (T,17,3) px + conf
      -> windows of the model's clip length (overlapping, the last one ending at the last frame)
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
from mocli.models.tta import flip_average
from mocli.skeleton import H36M_17, median_bone_lengths, set_bone_lengths
from mocli.utils.device import autocast
from mocli.windows import merge_windows, plan_windows

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


def _to_metres(pose: np.ndarray) -> np.ndarray:
    """(T,17,3) normalised, root-relative -> metres, with one scale per window (the median over its frames)."""
    size = float(np.median(body_size(pose)))
    return pose * (CANONICAL_BODY_SIZE_M / size) if size > 1e-6 else pose * 0.0


def _window_input(keypoints: np.ndarray, s: int, e: int, clip_len: int, min_conf: float) -> np.ndarray:
    """Normalised model input (clip_len,17,3) for frames [s, e); shorter windows are padded with their edge frames."""
    window = keypoints[s:e].copy()
    missing = ~np.isfinite(window[..., :2]).all(-1) | (window[..., 2] <= min_conf)
    window[missing] = 0.0  # missing keypoints look like MotionBERT's masked joints: x = y = conf = 0
    norm, _ = crop_scale(window)
    if len(norm) < clip_len:
        pad = clip_len - len(norm)
        norm = np.concatenate([norm, np.repeat(norm[-1:], pad, axis=0)], axis=0)
    return norm.astype(np.float32)


@torch.inference_mode()
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
    stride = opts.stride or max(1, opts.clip_len * 2 // 3)
    windows = plan_windows(T, opts.clip_len, min(stride, opts.clip_len))
    inputs = np.stack([_window_input(keypoints, s, e, opts.clip_len, opts.min_conf) for s, e in windows])
    outputs = []
    for i in range(0, len(inputs), opts.batch_size):
        x = torch.from_numpy(inputs[i : i + opts.batch_size]).to(device)
        with autocast(device, opts.precision):
            y = flip_average(model, x) if opts.flip else model(x)
        outputs.append(y.float().cpu().numpy())
    pred = np.concatenate(outputs)
    pred = pred - pred[:, :, :1]  # root-relative
    per_window = [_to_metres(p[: e - s]) for p, (s, e) in zip(pred, windows, strict=True)]
    joints = merge_windows(per_window, windows, T, ramp=max(1, (opts.clip_len - stride) // 2))
    if opts.bones == "fixed":
        seen = (np.isfinite(keypoints[..., :2]).all(-1) & (keypoints[..., 2] > opts.min_conf)).any(-1)
        if seen.any():
            joints = set_bone_lengths(joints, median_bone_lengths(joints[seen], symmetric=True))
    return joints.astype(np.float32)
