"""One windowed predictor: a sequence cut into model windows, the windows batched through a model, the window
outputs turned back into per-frame outputs. Used by ``lift``, ``actions``, ``mesh.meshes`` and ``evaluation``.

A ``SequencePlan`` says which frames each window feeds the model and which window output each frame is read from.
The policies (``plan_sequence``):

    blend        windows of L frames every ``stride`` frames, the last ending on the last frame; each frame the
                 raised-cosine weighted mean of every window covering it (``windows.merge_windows``)   infer
    every-frame  windows of L frames every L frames, the last shifted back to end on the last frame; each frame
                 read from the one window whose centre is nearest (``windows.assign_frames``)          eval 'all'
    reference    MotionBERT's Human3.6M protocol: clips [k L, (k+1) L), each frame read from its own clip, the
                 tail after the last whole clip not read; a sequence shorter than L is one clip resampled to L
                 frames at indices floor(k T / L), each frame read from its last position               eval default
    windows      the windows of ``blend``, one whole output per window (nothing merged)           action labels
    whole        one window: the whole sequence (a many-to-one lifter such as STMO, whose every frame is the
                 centre of its own receptive field); ``many_to_one=True`` turns any policy into it, with the
                 same frames read

Windows shorter than L (a sequence shorter than L) are padded by repeating their last frame; only real frames are
read back. ``run_batches`` is the one place where a model meets a device: ``Runtime`` holds the windows per forward
pass, the device, the precision (autocast), flip test-time averaging and upright rolling. Nothing is random.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mocli.models.tta import flip_average, upright
from mocli.utils.device import autocast
from mocli.windows import assign_frames, merge_windows, plan_windows

__all__ = ["POLICIES", "Runtime", "SequencePlan", "plan_sequence", "plan_reference", "resample_indices",
           "pad_window", "window_inputs", "run_batches", "read_frames", "predict"]  # fmt: skip

POLICIES = ("blend", "every-frame", "reference", "windows", "whole")

ModelFn = Callable[[torch.Tensor], torch.Tensor | dict[str, torch.Tensor]]
Outputs = np.ndarray | dict[str, np.ndarray]


@dataclass(frozen=True)
class Runtime:
    """How a model runs: windows per forward pass, device, precision ('fp32', 'bf16', 'fp16': autocast), flip
    test-time averaging (``models.tta.flip_average``) and upright rolling of lying bodies (``models.tta.upright``,
    outside the flip); both for models mapping (B,T,J,C) 2D to (B,T,J,3) 3D."""

    batch_size: int = 8
    device: str | torch.device = "cpu"
    precision: str = "fp32"
    flip: bool = False
    upright: bool = False


@dataclass(frozen=True)
class SequencePlan:
    """The windows of one sequence and how its output frames are read from them.

    Attributes:
        policy: one of ``POLICIES``.
        num_frames: T.
        clip_len: L, frames per model window (T for 'whole').
        windows: N (start, end) of the real frames of each window (end exclusive).
        clips: (N, L) int frame indices fed to the model for each window (padding: the last real frame repeated;
            'reference' below L frames: the resampled indices).
        frames: (M,) int the output frames, ascending ('reference': without the tail; otherwise all T).
        positions: (M, 2) int (window, position in its clip) each output frame is read from ('blend' and
            'windows': empty, the frames are merged or not read).
        ramp: 'blend': frames of the raised-cosine ramp at each window end.
    """

    policy: str
    num_frames: int
    clip_len: int
    windows: list[tuple[int, int]]
    clips: np.ndarray
    frames: np.ndarray
    positions: np.ndarray
    ramp: int = 0

    @property
    def left_out(self) -> int:
        """Frames of the sequence no output is read for (the reference protocol's tail)."""
        return self.num_frames - len(self.frames)


def resample_indices(num_frames: int, length: int) -> np.ndarray:
    """(length,) frame indices floor(k * num_frames / length), k = 0..length-1: evenly spaced, ascending; for
    num_frames < length every frame appears once or more (MotionBERT's resampling without its random offsets)."""
    return (np.arange(length) * num_frames) // length


def _padded(windows: list[tuple[int, int]], clip_len: int) -> np.ndarray:
    """(N, clip_len) frame indices of each window, its last frame repeated up to clip_len."""
    return np.stack([np.minimum(np.arange(s, s + clip_len), e - 1) for s, e in windows])


def _no_positions() -> np.ndarray:
    return np.zeros((0, 2), dtype=np.int64)


def plan_reference(num_frames: int, clip_len: int) -> SequencePlan:
    """The reference's clips of a sequence (policy 'reference', see the module docstring)."""
    if num_frames < 1 or clip_len < 1:
        raise ValueError(f"need num_frames >= 1 and clip_len >= 1, got {num_frames}, {clip_len}")
    if num_frames < clip_len:
        clip = resample_indices(num_frames, clip_len)
        last = np.flatnonzero(np.append(clip[1:] != clip[:-1], True))  # last position of each frame
        positions = np.stack([np.zeros_like(last), last], axis=1)
        return SequencePlan("reference", num_frames, clip_len, [(0, num_frames)], clip[None], clip[last], positions)
    n = num_frames // clip_len
    clips = np.arange(n * clip_len).reshape(n, clip_len)
    positions = np.stack(np.divmod(np.arange(n * clip_len), clip_len), axis=1)
    windows = [(k * clip_len, (k + 1) * clip_len) for k in range(n)]
    return SequencePlan("reference", num_frames, clip_len, windows, clips, clips.reshape(-1), positions)


def plan_sequence(
    num_frames: int, clip_len: int, policy: str = "blend", stride: int | None = None, many_to_one: bool = False
) -> SequencePlan:
    """The plan of a sequence of ``num_frames`` frames under ``policy`` (``POLICIES``).

    Args:
        clip_len: L, the model's window length.
        stride: 'blend' and 'windows': frames between window starts (default L * 2 // 3 for 'blend', L // 2 for
            'windows'; at most L).
        many_to_one: run the whole sequence as one window, reading the frames ``policy`` reads.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    if num_frames < 1 or clip_len < 1:
        raise ValueError(f"need num_frames >= 1 and clip_len >= 1, got {num_frames}, {clip_len}")
    if many_to_one or policy == "whole":
        frames = plan_reference(num_frames, clip_len).frames if policy == "reference" else np.arange(num_frames)
        positions = np.stack([np.zeros_like(frames), frames], axis=1)
        return SequencePlan("whole", num_frames, num_frames, [(0, num_frames)], np.arange(num_frames)[None], frames,
                            positions)  # fmt: skip
    if policy == "reference":
        return plan_reference(num_frames, clip_len)
    if policy == "every-frame":
        windows = plan_windows(num_frames, clip_len, clip_len)
        owner = np.empty(num_frames, dtype=np.int64)
        for i, ((s, _), owned) in enumerate(zip(windows, assign_frames(windows, num_frames), strict=True)):
            owner[s + owned] = i
        starts = np.array([s for s, _ in windows])
        positions = np.stack([owner, np.arange(num_frames) - starts[owner]], axis=1)
        return SequencePlan(policy, num_frames, clip_len, windows, _padded(windows, clip_len), np.arange(num_frames),
                            positions)  # fmt: skip
    default = clip_len * 2 // 3 if policy == "blend" else clip_len // 2
    stride = min(stride or max(1, default), clip_len)
    windows = plan_windows(num_frames, clip_len, stride)
    return SequencePlan(policy, num_frames, clip_len, windows, _padded(windows, clip_len), np.arange(num_frames),
                        _no_positions(), ramp=max(1, (clip_len - stride) // 2))  # fmt: skip


def pad_window(x: np.ndarray, length: int) -> np.ndarray:
    """(t, ...) -> (length, ...) with the last frame repeated (t <= length)."""
    if len(x) >= length:
        return x
    return np.concatenate([x, np.repeat(x[-1:], length - len(x), axis=0)], axis=0)


def window_inputs(
    plan: SequencePlan, x: np.ndarray | None = None, make: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """(N, L, ...) model inputs of a plan's windows.

    Args:
        x: (T, ...) a sequence whose normalisation does not depend on the window: window i is ``x[plan.clips[i]]``.
        make: else, the input of one window from the (n,) indices of its real frames (normalised per window):
            (n, ...) frames, padded here to L with its last frame; policy 'windows': any shape, not padded.
    """
    if (x is None) == (make is None):
        raise ValueError("give exactly one of x and make")
    if x is not None:
        return np.stack([x[clip] for clip in plan.clips])
    if plan.policy == "windows":
        return np.stack([make(np.arange(s, e)) for s, e in plan.windows])
    if plan.policy == "reference" and plan.num_frames < plan.clip_len:
        return np.stack([make(plan.clips[0])])
    return np.stack([pad_window(make(np.arange(s, e)), plan.clip_len) for s, e in plan.windows])


def _to_numpy(y: torch.Tensor | dict[str, torch.Tensor]) -> np.ndarray | dict[str, np.ndarray]:
    if isinstance(y, dict):
        return {k: v.float().cpu().numpy() for k, v in y.items()}
    return y.float().cpu().numpy()


@torch.inference_mode()
def run_batches(fn: ModelFn, inputs: np.ndarray | torch.Tensor, runtime: Runtime = Runtime()) -> Outputs:
    """Model outputs of a stack of inputs, ``runtime.batch_size`` at a time on ``runtime.device``.

    Args:
        fn: a model or function: (B, ...) float32 tensor -> (B, ...) tensor, or a dict of them.
        inputs: (N, ...) array or tensor (any device; cast to float32).
    Returns:
        (N, ...) float32 numpy outputs on the CPU (a dict of them when ``fn`` returns a dict); with
        ``runtime.flip`` the mean of fn(x) and the flipped fn(flipped x); with ``runtime.upright`` lying windows
        rolled upright before and back after (``models.tta.upright``).
    """
    device = torch.device(runtime.device)
    size = max(1, int(runtime.batch_size))

    def lifted(x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        return flip_average(fn, x) if runtime.flip else fn(x)

    outputs = []
    for i in range(0, len(inputs), size):
        batch = inputs[i : i + size]
        if isinstance(batch, torch.Tensor):
            x = batch.to(device).float()
        else:
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
        with autocast(device, runtime.precision):
            y = upright(lifted, x) if runtime.upright else lifted(x)
        outputs.append(_to_numpy(y))
    if not outputs:
        return np.zeros((0,), dtype=np.float32)
    if isinstance(outputs[0], dict):
        return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
    return np.concatenate(outputs)


def read_frames(plan: SequencePlan, per_window: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """(M, ...) outputs of ``plan.frames`` from per-window outputs (each (>= its real frames, ...)): merged
    ('blend'), read from their one position (other policies), or the window outputs themselves ('windows')."""
    if len(per_window) != len(plan.windows):
        raise ValueError(f"{len(per_window)} window outputs for {len(plan.windows)} windows")
    if plan.policy == "windows":
        return np.stack(list(per_window))
    if plan.policy == "blend":
        parts = [values[: e - s] for values, (s, e) in zip(per_window, plan.windows, strict=True)]
        return merge_windows(parts, plan.windows, plan.num_frames, plan.ramp)
    first = per_window[0]
    out = np.empty((len(plan.frames), *first.shape[1:]), dtype=first.dtype)
    for i, values in enumerate(per_window):
        mine = plan.positions[:, 0] == i
        out[mine] = values[plan.positions[mine, 1]]
    return out


def predict(
    fn: ModelFn, plan: SequencePlan, runtime: Runtime = Runtime(), *, x: np.ndarray | None = None,
    make: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Outputs:  # fmt: skip
    """A model's outputs for the frames of a plan: ``window_inputs`` -> ``run_batches`` -> ``read_frames``.

    Returns:
        (M, ...) float32 outputs of ``plan.frames`` (a dict of them when ``fn`` returns a dict); policy 'windows':
        (N, ...) one per window.
    """
    out = run_batches(fn, window_inputs(plan, x, make), runtime)
    if isinstance(out, dict):
        return {k: read_frames(plan, v) for k, v in out.items()}
    return read_frames(plan, out)
