"""Running a lifter over whole sequences for evaluation: windows covering every frame, each frame scored once.

A sequence of T frames is cut into windows of the model's clip length (``plan_windows``, stride = clip length, the
last window shifted back to end on the last frame); each frame is taken from exactly one window
(``assign_frames``: the window whose centre is nearest). Windows shorter than the clip length (a sequence shorter
than it) are padded with copies of their last frame; only real frames are scored. Nothing is random.

A many-to-one lifter (an STMO wrapped in ``ManyToOne``) needs no windows: ``predict_sequence`` gives it the whole
sequence, so every frame is the centre of its own receptive field and only the sequence's ends are padded (P-STMO's
protocol), where cutting into windows would pad the context at every window edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mocli.api import model_clip_len
from mocli.models.stmo import ManyToOne
from mocli.models.tta import flip_average
from mocli.utils.device import autocast
from mocli.windows import assign_frames, plan_windows

__all__ = ["RunOptions", "WindowPlan", "plan_sequence", "model_clip_len", "pad_window", "predict_windows",
           "predict_sequence", "gather_frames"]  # fmt: skip


@dataclass(frozen=True)
class RunOptions:
    """How the model runs: clip length (frames per window), flip TTA, windows per forward pass, device, precision."""

    clip_len: int
    flip: bool = True
    batch_size: int = 8
    device: str = "cpu"
    precision: str = "fp32"


@dataclass(frozen=True)
class WindowPlan:
    """Windows [(start, end)] over T frames and, per window, the window-local frames it scores (each frame once)."""

    num_frames: int
    windows: list[tuple[int, int]]
    owned: list[np.ndarray]


def plan_sequence(num_frames: int, clip_len: int) -> WindowPlan:
    """The evaluation windows of a sequence of ``num_frames`` frames."""
    windows = plan_windows(num_frames, clip_len, clip_len)
    return WindowPlan(num_frames, windows, assign_frames(windows, num_frames))


def pad_window(x: np.ndarray, length: int) -> np.ndarray:
    """(t, ...) -> (length, ...) with the last frame repeated (t <= length)."""
    if len(x) >= length:
        return x
    return np.concatenate([x, np.repeat(x[-1:], length - len(x), axis=0)], axis=0)


@torch.inference_mode()
def predict_windows(model: torch.nn.Module, inputs: np.ndarray, opts: RunOptions) -> np.ndarray:
    """Model outputs for a stack of windows.

    Args:
        model: maps (B,L,17,3) normalised 2D + confidence to (B,L,17,3) normalised 3D.
        inputs: (N,L,17,3) float normalised x, y + confidence.
    Returns:
        (N,L,17,3) float64 normalised 3D (flip-averaged when ``opts.flip``).
    """
    device = torch.device(opts.device)
    outputs = []
    for i in range(0, len(inputs), opts.batch_size):
        x = torch.from_numpy(np.ascontiguousarray(inputs[i : i + opts.batch_size], dtype=np.float32)).to(device)
        with autocast(device, opts.precision):
            y = flip_average(model, x) if opts.flip else model(x)
        if tuple(y.shape) != tuple(x.shape):
            raise ValueError(f"model returned shape {tuple(y.shape)} for input {tuple(x.shape)}")
        outputs.append(y.float().cpu().numpy().astype(np.float64))
    return np.concatenate(outputs) if outputs else np.zeros((0, *inputs.shape[1:]))


def gather_frames(per_window: list[np.ndarray], plan: WindowPlan) -> np.ndarray:
    """(T, ...) from per-window arrays (each (L >= window length, ...)): frame t from the window that owns it."""
    first = per_window[0]
    out = np.empty((plan.num_frames, *first.shape[1:]), dtype=first.dtype)
    for values, (s, _), owned in zip(per_window, plan.windows, plan.owned, strict=True):
        out[s + owned] = values[owned]
    return out


def predict_sequence(model: torch.nn.Module, x: np.ndarray, opts: RunOptions) -> np.ndarray:
    """Model output for a whole sequence whose normalisation does not depend on the window (e.g. Human3.6M's).

    Args:
        x: (T,17,3) normalised x, y + confidence.
    Returns:
        (T,17,3) float64 normalised 3D; frame t from the one window that scores it (a ``ManyToOne`` lifter: from
        its own receptive field centred on t, the whole sequence as one clip).
    """
    if isinstance(model, ManyToOne):
        return predict_windows(model, x[None], opts)[0]
    plan = plan_sequence(len(x), opts.clip_len)
    inputs = np.stack([pad_window(x[s:e], opts.clip_len) for s, e in plan.windows])
    return gather_frames(list(predict_windows(model, inputs, opts)), plan)
