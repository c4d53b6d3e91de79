"""``mocli infer``'s steps as ``rendered_mocap.py`` runs them on a rendered video: MediaPipe's detection, then the
lifter with infer's options, and the weights of MediaPipe's own 3D that can be averaged in (``--detector-3d``,
``--sweep``). Joints are H36M-17: pixels + confidence in, metres out (root-relative, camera axes).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mocli.errors import InputError
from mocli.skeleton import to_h36m

# --- weights of MediaPipe's 3D ---------------------------------------------------------------------------------------


def parse_weight(text: str, option: str = "--sweep") -> float | str:
    """A weight of MediaPipe's 3D (``--detector-3d``, each of ``--sweep``): 'auto' or 0-1, as infer's, or 'auto@S':
    auto with half the weight at a flip spread of S metres (``LiftOptions.detector_3d_spread_m``; infer's is
    ``mocli.lift.DETECTOR_3D_SPREAD_M``).

    Raises:
        InputError: none of these, naming ``option``.
    """
    from mocli.lift import DETECTOR_3D_AUTO, parse_detector_3d
    from mocli.models.checkpoint import is_spread_m

    head, at, scale = str(text).partition("@")
    try:
        weight = parse_detector_3d(head)
        if not at:
            return weight
        spread = float(scale)
        if weight != DETECTOR_3D_AUTO or not is_spread_m(spread):
            raise ValueError(text)
        return f"{DETECTOR_3D_AUTO}@{spread:g}"
    except ValueError:
        raise InputError(f"{option} {text!r}: give 'auto', 'auto@S' (S: the flip spread at half weight, metres) "
                         "or weights from 0 to 1, e.g. auto,auto@0.08,0,0.3") from None  # fmt: skip


def mix_options(lift, weight: float | str):
    """``lift`` (LiftOptions) with ``weight`` of MediaPipe's 3D, as ``parse_weight`` gives it."""
    head, at, spread = weight.partition("@") if isinstance(weight, str) else (weight, "", "")
    if at:
        return replace(lift, detector_3d=head, detector_3d_spread_m=float(spread))
    return replace(lift, detector_3d=head)


def weight_label(weight: float | str) -> str:
    """A weight of MediaPipe's 3D as the sweep's tables and JSON name it: 'auto', '0.3', '1'."""
    return weight if isinstance(weight, str) else f"{weight:g}"


# --- detection and lifting -------------------------------------------------------------------------------------------


def detection_options(device: str = "auto", mediapipe_model: str = "full"):
    """``mocli infer``'s options (``mocli.pipeline.InferOptions``) with the MediaPipe detector and its landmark model
    ``mediapipe_model`` (full | heavy: infer's --mediapipe-model), the rest infer's defaults."""
    from mocli.keypoints import DetectorOptions
    from mocli.pipeline import InferOptions

    options = DetectorOptions(device=device, mediapipe_model=mediapipe_model)
    return InferOptions(detector="mediapipe", detector_options=options)


def detect_person(video: Path, options):
    """``mocli infer``'s detection step on one video (``mocli.pipeline.load_people``): the person's
    ``KeypointSequence`` (H36M-17 pixels + confidence, ``valid`` where detected), None when nobody is found."""
    from mocli.pipeline import InferInput, load_people

    try:
        found, _ = load_people(InferInput(video, "video"), options)
    except InputError:  # MediaPipe found nobody in any frame
        return None
    return found[0][1]


@dataclass
class Pipeline:
    """What ``mocli infer`` loads once: the lifter and its options (MediaPipe detector, flip TTA, fp32 on CPU)."""

    lifter: object
    options: object
    device: object
    weights: Path


def load_pipeline(
    model: str | None,
    device: str = "auto",
    seed: int = 0,
    bones: str = "fixed",
    upright: bool = True,
    detector_3d: float | str | None = None,
    limb_depth: float | None = None,
    stride: int | None = None,
    mediapipe_model: str = "full",
) -> Pipeline:
    """The lifter (``--model`` name or checkpoint, default ``mocli infer``'s) and infer's default options
    (``detector_3d``, ``limb_depth``: infer's --detector-3d (or 'auto@S', ``parse_weight``) and --limb-depth, None:
    its default; ``stride``: frames between the starts of the lifter's windows, None: infer's, 2/3 of a clip;
    ``mediapipe_model``: infer's --mediapipe-model).

    Raises:
        InputError: a stride outside 1 to the model's clip length."""
    from mocli.api import load_lifter, model_clip_len, model_detector_3d_spread
    from mocli.lift import LiftOptions
    from mocli.models.registry import DEFAULT_VIDEO_WEIGHTS, default_weights, resolve_weights
    from mocli.utils.device import resolve_device, resolve_precision
    from mocli.utils.seed import seed_everything

    dev = resolve_device(device)
    seed_everything(seed)
    weights = resolve_weights(model) if model else default_weights(DEFAULT_VIDEO_WEIGHTS)  # as mocli infer
    lifter = load_lifter(weights, device=str(dev))
    clip_len = model_clip_len(lifter)
    if stride is not None and not 1 <= stride <= clip_len:
        raise InputError(f"--stride {stride}: give 1 to the model's clip length, {clip_len} frames")
    lift = LiftOptions(
        clip_len=clip_len,
        stride=stride,
        precision=resolve_precision(dev, "auto"),
        bones=bones,
        upright=upright,
        detector_3d_spread_m=model_detector_3d_spread(lifter),
    )
    if detector_3d is not None:
        lift = mix_options(lift, detector_3d)
    if limb_depth is not None:
        lift = replace(lift, limb_depth=limb_depth)
    options = replace(detection_options(device, mediapipe_model), lift=lift)
    return Pipeline(lifter, options, dev, weights)


@dataclass
class InferOutput:
    """What one video gives (T frames).

    joints3d: (T,17,3) mocli joints, metres, root-relative, camera axes, NaN where missing.
    lifter: (T,17,3) the same without MediaPipe's 3D averaged in (``--detector-3d 0``); None when joints3d is that.
    swept: {weight: (T,17,3)} the joints with other weights of MediaPipe's 3D (``--sweep``), as joints3d.
    mediapipe: (T,17,3) MediaPipe world landmarks in H36M-17 order, metres, its own frame, NaN where missing.
    keypoints2d: (T,17,3) mocli's input, pixels + confidence, NaN where missing.
    detected: (T,) bool, MediaPipe found the person (interpolated frames not counted). seconds: wall time.
    """

    joints3d: np.ndarray
    mediapipe: np.ndarray
    keypoints2d: np.ndarray
    detected: np.ndarray
    seconds: float
    lifter: np.ndarray | None = None
    swept: dict[float | str, np.ndarray] = field(default_factory=dict)


def run_infer(seq, out_dir: Path, pipe: Pipeline, num_frames: int, sweep: Sequence[float | str] = ()) -> InferOutput:
    """``mocli infer``'s steps after detection on one video of ``num_frames`` frames, from the person MediaPipe found
    (``detect_person``'s KeypointSequence, None: nobody); writes ``out_dir/joints3d.npz`` as infer does. When infer
    averages MediaPipe's 3D in (``detector_3d`` 'auto' or > 0), the lifter alone is run as well (``lifter``), and so
    is every weight of ``sweep`` (``swept``).

    A video where MediaPipe found nobody gives NaN everywhere and no detection.
    """
    from mocli.lift import mixes_detector_3d
    from mocli.pipeline import run_pose3d
    from mocli.results import write_joints_npz

    t0 = time.perf_counter()
    if seq is None:  # MediaPipe found nobody in any frame
        nothing = np.full((num_frames, 17, 3), np.nan)
        return InferOutput(nothing, nothing, nothing, np.zeros(num_frames, bool), time.perf_counter() - t0,
                           swept={w: nothing for w in sweep})  # fmt: skip
    detected = np.asarray(seq.valid, bool)
    result = run_pose3d(seq, pipe.lifter, pipe.options.lift, pipe.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_joints_npz(result, out_dir / "joints3d.npz")
    ours = result.joints3d.astype(np.float64)
    lifter = None
    if mixes_detector_3d(pipe.options.lift.detector_3d):
        alone = replace(pipe.options.lift, detector_3d=0.0)
        lifter = run_pose3d(seq, pipe.lifter, alone, pipe.device).joints3d.astype(np.float64)
    swept = {}
    for w in sweep:
        lift = mix_options(pipe.options.lift, w)
        swept[w] = run_pose3d(seq, pipe.lifter, lift, pipe.device).joints3d.astype(np.float64)
    world = seq.extras.get("world_landmarks33")
    mp = to_h36m(world.astype(np.float64), "mediapipe", conf=False) if world is not None else np.full_like(ours, np.nan)
    return InferOutput(ours, mp, seq.keypoints.astype(np.float64), detected, time.perf_counter() - t0, lifter, swept)
