"""3D pose completion with an MPM model: fill missing joints (and frames) of partial 2D keypoints or partial 3D joints.

Needs a checkpoint written by ``mocli pretrain --pretext mpm2d3d`` (its ``heads["mpm2d3d"]`` holds the 3D input
encoder, the mask tokens and the 2D/3D decoders; see ``mocli.models.mpm2d3d``). Example::

    from mocli.completion import complete_pose, load_mpm_model

    model = load_mpm_model("runs/pretrain/mpm1/model.pt")
    done = complete_pose(model, keypoints2d=kp)  # kp (T,17,3) pixels + conf; conf 0 or NaN = missing
    done.keypoints2d  # (T,17,3) the given keypoints with the missing x, y filled in (pixels)
    done.joints3d     # (T,17,3) 3D of every joint, metres, root-relative, camera axes
    done = complete_pose(model, joints3d=j3d)     # j3d (T,17,3) metres, camera axes; NaN = missing
    done.joints3d     # (T,17,3) the given joints with the missing ones filled in, same frame and units

Sequences longer than the model's clip length go through consecutive windows (the last one ending on the last
frame; overlapping frames averaged), each normalised on its own. Entries not marked missing are returned
bit-for-bit unchanged. Pure orchestration around the model: no file I/O apart from ``load_mpm_model``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from mocli.data.transforms import crop_box, denormalise_xy, normalise_xy
from mocli.errors import InputError
from mocli.lift import CANONICAL_BODY_SIZE_M, body_size
from mocli.models.mpm2d3d import Mpm2d3dModel
from mocli.windows import merge_windows, plan_windows

__all__ = ["CompletedPose", "load_mpm_model", "complete_pose"]

NUM_JOINTS = 17


@dataclass
class CompletedPose:
    """The result of ``complete_pose``.

    Attributes:
        joints3d: (T, 17, 3) float32 metres. From 3D input: the input's frame and origin, missing joints filled.
            From 2D input: the lifted 3D of every joint, root-relative, camera axes (x right, y down, z forward),
            scaled to an average adult's body size (monocular 2D cannot observe scale).
        filled: (T, 17) bool, True for the entries that were filled in (the missing ones).
        keypoints2d: (T, 17, 3) float32 pixels + confidence from 2D input (None from 3D input): the given keypoints
            with the missing x, y filled in; confidences are returned as given.
    """

    joints3d: np.ndarray
    filled: np.ndarray
    keypoints2d: np.ndarray | None = None


def load_mpm_model(path_or_name: str | os.PathLike, device: str = "cpu") -> Mpm2d3dModel:
    """An Mpm2d3dModel in eval mode from an mpm2d3d checkpoint (file, or a weights name of ``mocli weights list``)."""
    from mocli.models.checkpoint import load_checkpoint
    from mocli.models.mpm2d3d import mpm_model_from_checkpoint
    from mocli.models.registry import resolve_weights

    path = resolve_weights(path_or_name)
    return mpm_model_from_checkpoint(load_checkpoint(path), str(path)).to(device).eval()


def complete_pose(
    model: Mpm2d3dModel | str | os.PathLike,
    keypoints2d: np.ndarray | None = None,
    joints3d: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> CompletedPose:
    """Fill in the missing joints of a partial 2D or 3D pose sequence (give exactly one of the two).

    Args:
        model: an ``Mpm2d3dModel`` (``load_mpm_model``) or a path / weights name to load one from.
        keypoints2d: (T, 17, 3) H36M-17 x, y pixels + confidence.
        joints3d: (T, 17, 3) H36M-17 joints, metres, camera axes (x right, y down, z forward; a y-up world frame
            shows the model an upside-down body).
        mask: (T, 17) bool, True = missing. Default: non-finite entries, and for 2D also confidence <= 0.
    Returns:
        ``CompletedPose``; entries with ``mask`` False are returned unchanged.
    """
    if (keypoints2d is None) == (joints3d is None):
        raise InputError("complete_pose: give keypoints2d or joints3d (exactly one of them)")
    if not isinstance(model, Mpm2d3dModel):
        model = load_mpm_model(model)
    data = np.asarray(keypoints2d if keypoints2d is not None else joints3d, dtype=np.float32)
    what = "keypoints2d" if keypoints2d is not None else "joints3d"
    if data.ndim != 3 or data.shape[1:] != (NUM_JOINTS, 3) or data.shape[0] < 1:
        raise InputError(f"complete_pose: {what} must be (T, 17, 3), got {data.shape}")
    coords = data[..., :2] if keypoints2d is not None else data
    missing = ~np.isfinite(coords).all(axis=-1)
    if keypoints2d is not None:
        missing |= ~(data[..., 2] > 0)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape[:2]:
            raise InputError(f"complete_pose: mask must be {data.shape[:2]} (T, 17), got {mask.shape}")
        if (~mask & missing).any():
            t, j = np.argwhere(~mask & missing)[0]
            raise InputError(f"complete_pose: frame {t} joint {j} is not finite (or has confidence 0) but not masked")
        missing = mask
    windows = plan_windows(data.shape[0], model.parts.clip_len)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if keypoints2d is not None:
                parts = [_complete_2d(model, data[s:e], missing[s:e]) for s, e in windows]
                xy = merge_windows([p[0] for p in parts], windows, data.shape[0], ramp=0)
                j3d = merge_windows([p[1] for p in parts], windows, data.shape[0], ramp=0)
                out2d = data.copy()
                out2d[..., :2] = np.where(missing[..., None], xy, data[..., :2])
                return CompletedPose(j3d.astype(np.float32), missing, out2d)
            parts = [_complete_3d(model, data[s:e], missing[s:e]) for s, e in windows]
            j3d = merge_windows(parts, windows, data.shape[0], ramp=0)
            return CompletedPose(np.where(missing[..., None], j3d, data).astype(np.float32), missing)
    finally:
        model.train(was_training)


def _run(model: Mpm2d3dModel, x: np.ndarray, missing: np.ndarray, task: str) -> np.ndarray:
    """One window through the model: (t, 17, 3) normalised input, (t, 17) mask -> (t, 17, C) normalised output."""
    device = next(model.parameters()).device
    xt = torch.from_numpy(np.nan_to_num(x).astype(np.float32))[None].to(device)
    mt = torch.from_numpy(missing)[None].to(device)
    return model(xt, mt, task=task)[0].float().cpu().numpy().astype(np.float64)


def _complete_2d(model: Mpm2d3dModel, kp: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t, 17, 3) px + conf window -> filled x, y (t, 17, 2) pixels and lifted 3D (t, 17, 3) metres."""
    box = crop_box(np.nan_to_num(kp[..., :2]), ~missing)
    if box is None:
        raise InputError("complete_pose: a window of the sequence has fewer than two visible keypoints")
    x = np.zeros(kp.shape, dtype=np.float64)
    x[..., :2] = normalise_xy(np.nan_to_num(kp[..., :2]).astype(np.float64), box)
    x[..., 2] = np.clip(np.nan_to_num(kp[..., 2]), 0.0, 1.0)
    xy = denormalise_xy(_run(model, x, missing, "2d"), box)
    pose = _run(model, x, missing, "lift")
    pose = pose - pose[:, :1]
    size = float(np.median(body_size(pose)))
    return xy, pose * (CANONICAL_BODY_SIZE_M / size if size > 1e-6 else 0.0)


def _complete_3d(model: Mpm2d3dModel, joints: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """(t, 17, 3) metres window -> (t, 17, 3) metres with every joint predicted (in the window's frame).

    Normalisation like the training data's: a square box over the visible joints' x, y (metres here, pixels
    there) maps to [-1, 1], depth scaled alike. Root-relative models: each frame centred on its root; a frame whose
    root is missing is first predicted without its joints, its root placed where the prediction best fits its
    visible joints (mean offset), then predicted again with them; frames with nothing visible take a root
    interpolated in time. Other models: one centre for the window (box centre, first visible root depth).
    """
    joints = np.nan_to_num(joints.astype(np.float64))
    box = crop_box(joints[..., :2], ~missing)
    if box is None:
        raise InputError("complete_pose: a window of the sequence has fewer than two visible joints")
    half = box.size / 2.0  # metres per normalised unit
    T = joints.shape[0]
    if not model.parts.root_relative:
        roots = np.flatnonzero(~missing[:, 0])
        depth = joints[roots[0], 0, 2] if len(roots) else float(np.median(joints[..., 2][~missing]))
        centre = np.broadcast_to(np.array([*box.centre, depth]), (T, 3)).copy()
        return _run(model, (joints - centre[:, None]) / half, missing, "3d") * half + centre[:, None]
    known = ~missing[:, 0]
    centre = np.where(known[:, None], joints[:, 0], np.nan)
    work = missing | ~known[:, None]  # pass 1: frames without a root fully masked
    pred = _run(model, (joints - np.nan_to_num(centre)[:, None]) / half, work, "3d") * half
    partial = ~known & (~missing).any(axis=1)
    for t in np.flatnonzero(partial):
        vis = ~missing[t]
        centre[t] = (joints[t, vis] - pred[t, vis]).mean(axis=0)
    centre = _interpolate_rows(centre)
    if partial.any():  # pass 2: those frames with their visible joints, centred on the estimated root
        pred = _run(model, (joints - centre[:, None]) / half, missing, "3d") * half
    return pred + centre[:, None]


def _interpolate_rows(values: np.ndarray) -> np.ndarray:
    """(T, C) with NaN rows -> linear interpolation in time (edges hold the nearest known row)."""
    known = np.isfinite(values).all(axis=1)
    t = np.arange(len(values))
    return np.stack([np.interp(t, t[known], values[known, c]) for c in range(values.shape[1])], axis=1)
