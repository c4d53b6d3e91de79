"""Sliding windows over long sequences: every frame covered, deterministically, and overlaps blended smoothly.

The planning and merging primitives of ``mocli.predict`` (the one windowed predictor: ``infer``'s blended windows,
``eval``'s every frame evaluated exactly once with the last window shifted back to end at the last frame instead of
dropping the tail, and the reference's whole clips).
"""

from __future__ import annotations

import numpy as np

__all__ = ["plan_windows", "blend_weights", "merge_windows", "assign_frames"]


def plan_windows(num_frames: int, clip_len: int, stride: int | None = None) -> list[tuple[int, int]]:
    """Window (start, end) pairs of ``clip_len`` frames every ``stride`` frames covering ``range(num_frames)``.

    The last window ends at ``num_frames`` (it overlaps its neighbour more when the length does not divide evenly).
    A sequence shorter than ``clip_len`` gives one window (0, num_frames).

    Args:
        num_frames: T >= 1.
        clip_len: window length (the model's clip length).
        stride: step between window starts; default ``clip_len`` (no overlap except the last window).
    """
    if num_frames < 1 or clip_len < 1:
        raise ValueError(f"need num_frames >= 1 and clip_len >= 1, got {num_frames}, {clip_len}")
    stride = clip_len if stride is None else stride
    if not 1 <= stride <= clip_len:
        raise ValueError(f"stride must be in [1, clip_len={clip_len}], got {stride}")
    if num_frames <= clip_len:
        return [(0, num_frames)]
    starts = list(range(0, num_frames - clip_len + 1, stride))
    if starts[-1] + clip_len < num_frames:
        starts.append(num_frames - clip_len)
    return [(s, s + clip_len) for s in starts]


def blend_weights(length: int, ramp: int) -> np.ndarray:
    """(length,) weights: a raised-cosine ramp of ``ramp`` frames at each end (never exactly 0), 1 in between."""
    w = np.ones(length)
    ramp = min(ramp, length // 2)
    if ramp > 0:
        edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        w[:ramp] = edge
        w[length - ramp :] = edge[::-1]
    return w


def merge_windows(outputs: list[np.ndarray], windows: list[tuple[int, int]], num_frames: int, ramp: int) -> np.ndarray:
    """Blend per-window outputs (each (t_i, ...)) into one (num_frames, ...) array.

    Each frame is the weighted mean of every window covering it, with ``blend_weights`` so that a window's
    influence fades in and out across an overlap (no jump at window boundaries). Frames covered by only one
    window take that window's values exactly.
    """
    if len(outputs) != len(windows):
        raise ValueError(f"{len(outputs)} outputs for {len(windows)} windows")
    acc = np.zeros((num_frames, *outputs[0].shape[1:]), dtype=np.float64)
    total = np.zeros(num_frames)
    for out, (s, e) in zip(outputs, windows, strict=True):
        if out.shape[0] != e - s:
            raise ValueError(f"window ({s},{e}) has {out.shape[0]} frames of output")
        w = blend_weights(e - s, ramp)  # where only this window covers a frame, the weight cancels out
        acc[s:e] += out * w.reshape(-1, *([1] * (out.ndim - 1)))
        total[s:e] += w
    if np.any(total == 0):
        raise ValueError("windows do not cover every frame")
    return (acc / total.reshape(-1, *([1] * (acc.ndim - 1)))).astype(outputs[0].dtype)


def assign_frames(windows: list[tuple[int, int]], num_frames: int) -> list[np.ndarray]:
    """For evaluation: which frames of each window to score so that every frame is scored exactly once.

    Returns one array of window-local frame indices per window. Each frame goes to the window whose centre is
    nearest (so frames are scored with the most temporal context on both sides).
    """
    centres = np.array([(s + e - 1) / 2 for s, e in windows])
    owner = np.full(num_frames, -1)
    best = np.full(num_frames, np.inf)
    for i, (s, e) in enumerate(windows):
        frames = np.arange(s, e)
        dist = np.abs(frames - centres[i])
        better = dist < best[s:e]
        owner[s:e][better] = i
        best[s:e][better] = dist[better]
    if np.any(owner < 0):
        raise ValueError("windows do not cover every frame")
    return [np.flatnonzero(owner[s:e] == i) for i, (s, e) in enumerate(windows)]
