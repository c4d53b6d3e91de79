"""Running a lifter over whole sequences for evaluation: windows covering every frame, each frame scored once.

The windows, batching, device and precision are ``mocli.predict``'s; this module gives them the evaluation's
names. A sequence of T frames is cut into windows of the model's clip length (policy 'every-frame': stride = clip
length, the last window shifted back to end on the last frame); each frame is taken from exactly one window (the
window whose centre is nearest). Windows shorter than the clip length (a sequence shorter than it) are padded with
copies of their last frame; only real frames are scored. Nothing is random.

A many-to-one lifter (an STMO wrapped in ``ManyToOne``) needs no windows: ``predict_sequence`` gives it the whole
sequence, so every frame is the centre of its own receptive field and only the sequence's ends are padded (P-STMO's
protocol), where cutting into windows would pad the context at every window edge.

The reference's protocol (MotionBERT's Human3.6M evaluation, policy 'reference') is ``plan_reference_clips`` +
``predict_clips``: whole clips of the clip length starting at multiples of it, the tail after the last whole clip
left out, and a sequence shorter than one clip resampled to the clip length (``resample_indices``, deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mocli.api import model_clip_len
from mocli.limb_depth import limb_depths
from mocli.models.stmo import ManyToOne
from mocli.predict import Runtime, SequencePlan, pad_window, plan_reference, read_frames, resample_indices, run_batches
from mocli.predict import plan_sequence as plan_policy
from mocli.predict import predict as predict_plan

__all__ = ["RunOptions", "WindowPlan", "plan_sequence", "model_clip_len", "pad_window", "predict_windows",
           "predict_sequence", "gather_frames", "ClipPlan", "resample_indices", "plan_reference_clips",
           "predict_clips"]  # fmt: skip

# A plan of windows and the frames read from them (``mocli.predict.SequencePlan``): 'every-frame' plans
# (``plan_sequence``) and the reference's clips (``plan_reference_clips``).
WindowPlan = ClipPlan = SequencePlan
plan_reference_clips = plan_reference


@dataclass(frozen=True)
class RunOptions:
    """How the model runs: clip length (frames per window), flip TTA, windows per forward pass, device, precision,
    upright rolling of lying bodies (``models.tta.upright``; off for the reference protocols), and infer's limb
    depths (``mocli.limb_depth.limb_depths`` of each window, this strength; 0: the model's own output)."""

    clip_len: int
    flip: bool = True
    batch_size: int = 8
    device: str = "cpu"
    precision: str = "fp32"
    upright: bool = False
    limb_depth: float = 0.0

    @property
    def runtime(self) -> Runtime:
        return Runtime(self.batch_size, self.device, self.precision, self.flip, self.upright)


def plan_sequence(num_frames: int, clip_len: int) -> SequencePlan:
    """The evaluation windows of a sequence of ``num_frames`` frames: every frame read once (policy 'every-frame')."""
    return plan_policy(num_frames, clip_len, "every-frame")


def predict_windows(model: torch.nn.Module, inputs: np.ndarray, opts: RunOptions) -> np.ndarray:
    """Model outputs for a stack of windows.

    Args:
        model: maps (B,L,17,3) normalised 2D + confidence to (B,L,17,3) normalised 3D.
        inputs: (N,L,17,C) float normalised x, y + confidence (C = 3), or x, y only (C = 2).
    Returns:
        (N,L,17,3) float64 normalised 3D (flip-averaged when ``opts.flip``; with ``opts.limb_depth``, each window's
        limb depths set as infer's, its bone lengths from the whole window, a padded tail included).
    """
    if len(inputs) == 0:
        return np.zeros((0, *inputs.shape[1:]))
    out = run_batches(model, inputs, opts.runtime)
    if tuple(out.shape[:-1]) != tuple(inputs.shape[:-1]) or out.shape[-1] != 3:
        raise ValueError(f"model returned shape {tuple(out.shape)} for input {tuple(inputs.shape)}")
    out = out.astype(np.float64)
    if opts.limb_depth > 0:
        out = np.stack([limb_depths(window, opts.limb_depth) for window in out])
    return out


def gather_frames(per_window: list[np.ndarray], plan: SequencePlan) -> np.ndarray:
    """(T, ...) from per-window arrays (each (L >= window length, ...)): frame t from the window that owns it."""
    return read_frames(plan, per_window)


def predict_sequence(model: torch.nn.Module, x: np.ndarray, opts: RunOptions) -> np.ndarray:
    """Model output for a whole sequence whose normalisation does not depend on the window (e.g. Human3.6M's).

    Args:
        x: (T,17,3) normalised x, y + confidence.
    Returns:
        (T,17,3) float64 normalised 3D; frame t from the one window that scores it (a ``ManyToOne`` lifter: from
        its own receptive field centred on t, the whole sequence as one clip).
    """
    plan = plan_policy(len(x), opts.clip_len, "every-frame", many_to_one=isinstance(model, ManyToOne))
    return predict_plan(model, plan, opts.runtime, x=x).astype(np.float64)


def predict_clips(model: torch.nn.Module, x: np.ndarray, plan: SequencePlan, opts: RunOptions) -> np.ndarray:
    """Model output for the scored frames of a reference plan (``plan_reference_clips``).

    Args:
        x: (T,17,C) normalised x, y [+ confidence].
    Returns:
        (M,17,3) float64 normalised 3D of ``plan.frames``, each from the clip position that scores it (a
        ``ManyToOne`` lifter: from its own receptive field over the whole sequence, as ``predict_sequence``).
    """
    if isinstance(model, ManyToOne):
        plan = plan_policy(plan.num_frames, plan.clip_len, plan.policy, many_to_one=True)
    return predict_plan(model, plan, opts.runtime, x=x).astype(np.float64)
