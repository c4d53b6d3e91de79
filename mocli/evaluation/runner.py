"""Running a lifter over whole sequences for evaluation: windows covering every frame, each frame scored once.

A sequence of T frames is cut into windows of the model's clip length (``plan_windows``, stride = clip length, the
last window shifted back to end on the last frame); each frame is taken from exactly one window
(``assign_frames``: the window whose centre is nearest). Windows shorter than the clip length (a sequence shorter
than it) are padded with copies of their last frame; only real frames are scored. Nothing is random.

A many-to-one lifter (an STMO wrapped in ``ManyToOne``) needs no windows: ``predict_sequence`` gives it the whole
sequence, so every frame is the centre of its own receptive field and only the sequence's ends are padded (P-STMO's
protocol), where cutting into windows would pad the context at every window edge.

The reference's protocol (MotionBERT's Human3.6M evaluation) is ``plan_reference_clips`` + ``predict_clips``: whole
clips of the clip length starting at multiples of it, the tail after the last whole clip left out, and a sequence
shorter than one clip resampled to the clip length (``resample_indices``, deterministic).
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
           "predict_sequence", "gather_frames", "ClipPlan", "resample_indices", "plan_reference_clips",
           "predict_clips"]  # fmt: skip


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
        inputs: (N,L,17,C) float normalised x, y + confidence (C = 3), or x, y only (C = 2).
    Returns:
        (N,L,17,3) float64 normalised 3D (flip-averaged when ``opts.flip``).
    """
    device = torch.device(opts.device)
    outputs = []
    for i in range(0, len(inputs), opts.batch_size):
        x = torch.from_numpy(np.ascontiguousarray(inputs[i : i + opts.batch_size], dtype=np.float32)).to(device)
        with autocast(device, opts.precision):
            y = flip_average(model, x) if opts.flip else model(x)
        if tuple(y.shape[:-1]) != tuple(x.shape[:-1]) or y.shape[-1] != 3:
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


@dataclass(frozen=True)
class ClipPlan:
    """Clips as frame indices, and the one clip position that scores each scored frame.

    clips (N,L) int: frame indices of each clip; frames (M,) int: the scored frames, ascending, each once;
    positions (M,2) int: (clip, position in the clip) whose output scores frame ``frames[m]``.
    """

    num_frames: int
    clips: np.ndarray
    frames: np.ndarray
    positions: np.ndarray

    @property
    def left_out(self) -> int:
        """Frames of the sequence that no clip scores (the tail after the last whole clip)."""
        return self.num_frames - len(self.frames)


def resample_indices(num_frames: int, length: int) -> np.ndarray:
    """(length,) frame indices floor(k * num_frames / length), k = 0..length-1: evenly spaced, ascending; for
    num_frames < length every frame appears once or more (MotionBERT's resampling without its random offsets)."""
    return (np.arange(length) * num_frames) // length


def plan_reference_clips(num_frames: int, clip_len: int) -> ClipPlan:
    """The reference's clips of a sequence: [k L, (k+1) L) for every whole clip, each frame scored from its own clip;
    the tail after the last whole clip is not scored. A sequence shorter than L is one clip resampled to L frames
    (``resample_indices``), each frame scored once, from its last position in that clip."""
    if num_frames < 1 or clip_len < 1:
        raise ValueError(f"need num_frames >= 1 and clip_len >= 1, got {num_frames}, {clip_len}")
    if num_frames < clip_len:
        clip = resample_indices(num_frames, clip_len)
        last = np.flatnonzero(np.append(clip[1:] != clip[:-1], True))  # last position of each frame
        positions = np.stack([np.zeros_like(last), last], axis=1)
        return ClipPlan(num_frames, clip[None], clip[last], positions)
    n = num_frames // clip_len
    clips = np.arange(n * clip_len).reshape(n, clip_len)
    positions = np.stack(np.divmod(np.arange(n * clip_len), clip_len), axis=1)
    return ClipPlan(num_frames, clips, clips.reshape(-1), positions)


def predict_clips(model: torch.nn.Module, x: np.ndarray, plan: ClipPlan, opts: RunOptions) -> np.ndarray:
    """Model output for the scored frames of a ``ClipPlan``.

    Args:
        x: (T,17,C) normalised x, y [+ confidence].
    Returns:
        (M,17,3) float64 normalised 3D of ``plan.frames``, each from the clip position that scores it (a
        ``ManyToOne`` lifter: from its own receptive field over the whole sequence, as ``predict_sequence``).
    """
    if isinstance(model, ManyToOne):
        return predict_windows(model, x[None], opts)[0][plan.frames]
    out = predict_windows(model, x[plan.clips], opts)  # (N,L,17,3)
    return out[plan.positions[:, 0], plan.positions[:, 1]]
