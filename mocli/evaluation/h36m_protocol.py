"""Human3.6M evaluation protocol and scoring: how a model's output becomes millimetres, which frames count, and the
per-action tables. Reading the test files is ``h36m.py``'s (which re-exports this module's public names).

Per clip, in the order of MotionBERT's evaluation (all in the model's normalised units):

    output  = model(input), flip-averaged (``runner.predict_windows``)                        (L,17,3)
    root    = rootrel models: the predicted root joint set to (0, 0, 0) in every frame;
              other models ("global"): the root output kept
    gt_2d   = if on: the predicted x, y of every joint replaced by the input's normalised x, y
    mm      = denormalised with the video's image size, times the frame's 2.5D factor, minus the root
              (``to_millimetres``)                                                             (L,17,3) mm

The convention (rootrel, gt_2d, flip, no_conf) belongs to the model: MotionBERT's config file holds it, ``mocli
weights import motionbert --config`` records it in the checkpoint (meta['eval_convention']), and mocli's own
checkpoints take rootrel from their training config (data.root_relative). ``convention_of`` reads it.

Which frames count (``FRAMES``):
    reference  MotionBERT's protocol (the default): clips of L frames at multiples of L, each frame scored from
               its own clip, the tail after the last whole clip not scored; a video shorter than L is one clip
               resampled to L frames at indices floor(k T / L), each frame scored once, from its last position.
    all        mocli's option: every frame scored once (``runner.predict_sequence``: windows of L frames, the last
               shifted back to end on the last frame, each frame from the window whose centre is nearest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocli.errors import InputError
from mocli.evaluation.pose_errors import frame_errors
from mocli.evaluation.report import Metric, Report, ScoreSums, build_table
from mocli.evaluation.runner import RunOptions, plan_reference_clips, predict_clips, predict_sequence
from mocli.models.motionbert import ASSUMED_CONVENTION

__all__ = ["ACTIONS", "METRICS", "FRAMES", "H36MVideo", "H36MTestSet", "Convention", "convention_of",
           "apply_convention", "VideoPrediction", "predict_video", "normalise_h36m", "denormalise_h36m",
           "to_millimetres", "video_errors", "score_h36m", "evaluate_h36m"]  # fmt: skip

# The 15 actions in the order of MotionBERT's and VideoPose3D's tables.
ACTIONS = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases", "Sitting",
           "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether")  # fmt: skip
METRICS = {1: Metric("mpjpe", "P1 MPJPE"), 2: Metric("pa_mpjpe", "P2 PA-MPJPE")}

# protocol name -> (table title, rule written to the JSON); {L} is the clip length
FRAMES = {
    "reference": (
        "reference protocol, clips of {L} frames",
        "clips of {L} frames starting at multiples of {L}, each frame scored from its own clip; the tail after the "
        "last whole clip not scored; a video shorter than {L} frames resampled to {L} (indices floor(k T / {L})), "
        "each frame scored once from its last position in that clip",
    ),
    "all": (
        "every frame (mocli's option)",
        "every frame scored once: windows of {L} frames, the last shifted back to end on the video's last frame, "
        "each frame from the window whose centre is nearest; a video shorter than {L} frames padded with its last "
        "frame",
    ),
}


@dataclass
class H36MVideo:
    """One test video (one camera of one recording).

    Attributes:
        name: sequence name (the pkl's source string, or 'S9:Greeting 1:54138969' for the npz).
        subject, action (one of ACTIONS after ``canonical_action``), camera: labels.
        image_size: (w, h) pixels of the camera.
        keypoints2d: (T,17,3) detected x, y pixels + confidence.
        joints_image: (T,17,3) ground truth x, y pixels + depth in pixels (MotionBERT's joint3d_image).
        factor: (T,) millimetres per pixel at the root depth (the 2.5D factor).
        joints_mm: (T,17,3) ground truth millimetres (joints_2.5d_image; root-relative or not).
        excluded: one of the three broken S9 recordings the reference leaves out.
    """

    name: str
    subject: str
    action: str
    camera: str
    image_size: tuple[int, int]
    keypoints2d: np.ndarray
    joints_image: np.ndarray
    factor: np.ndarray
    joints_mm: np.ndarray
    excluded: bool = False

    @property
    def num_frames(self) -> int:
        return int(self.keypoints2d.shape[0])

    def model_input(self, gt_input: bool = False) -> np.ndarray:
        """(T,17,3) normalised x, y + confidence: detected 2D, or (``gt_input``) the label's 2D with confidence 1."""
        w, h = self.image_size
        if gt_input:
            xy, conf = self.joints_image[..., :2], np.ones(self.joints_image.shape[:-1])
        else:
            xy, conf = self.keypoints2d[..., :2], self.keypoints2d[..., 2]
        return np.concatenate([normalise_h36m(xy, w, h), conf[..., None]], axis=-1)


@dataclass
class H36MTestSet:
    """The test videos of a file, how it was read, and which videos the protocol leaves out."""

    videos: list[H36MVideo]
    layout: str  # 'pkl', 'npz' or 'h5'
    paths: list[Path]
    notes: list[str] = field(default_factory=list)

    @property
    def excluded(self) -> list[H36MVideo]:
        return [v for v in self.videos if v.excluded]

    @property
    def scored(self) -> list[H36MVideo]:
        return [v for v in self.videos if not v.excluded]


@dataclass(frozen=True)
class Convention:
    """How a model's output is read at evaluation (MotionBERT's config keys).

    rootrel: the predicted root is set to 0 (models trained on root-relative targets); False keeps it.
    gt_2d: the predicted x, y are replaced by the input's. flip: flip test-time averaging.
    no_conf: the model takes x, y only (its input has 2 channels). origin: where the values came from.
    """

    rootrel: bool
    gt_2d: bool = False
    flip: bool = True
    no_conf: bool = False
    origin: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def override(self, **values: bool | None) -> Convention:
        """A copy with the given values replaced (None: keep); the origin names the overridden keys."""
        changed = {k: bool(v) for k, v in values.items() if v is not None and bool(v) != getattr(self, k)}
        if not changed:
            return self
        note = ", ".join(f"{k}={v}" for k, v in changed.items())
        return replace(self, **changed, origin=f"{self.origin}; overridden: {note}")


def convention_of(checkpoint_info: dict[str, Any]) -> Convention:
    """The evaluation convention of a checkpoint (``model.checkpoint_info``).

    In order: the one recorded at import (meta['eval_convention']); a mocli training config (rootrel =
    data.root_relative, its default True); else ``ASSUMED_CONVENTION`` (rootrel False: the model's root output is
    kept). no_conf is whether the architecture takes 2 input channels.
    """
    info = checkpoint_info or {}
    no_conf = int(((info.get("arch") or {}).get("config") or {}).get("dim_in", 3)) == 2
    recorded = (info.get("meta") or {}).get("eval_convention")
    if isinstance(recorded, dict) and "rootrel" in recorded:
        return Convention(
            rootrel=bool(recorded["rootrel"]), gt_2d=bool(recorded.get("gt_2d", False)),
            flip=bool(recorded.get("flip", True)), no_conf=no_conf,
            origin=f"checkpoint ({recorded.get('from', 'recorded at import')})",
        )  # fmt: skip
    data = (info.get("train_config") or {}).get("data")
    if isinstance(data, dict):
        rootrel = bool(data.get("root_relative", True))
        return Convention(rootrel=rootrel, no_conf=no_conf, origin="training config (data.root_relative)")
    return Convention(**ASSUMED_CONVENTION, no_conf=no_conf, origin="assumed: the checkpoint records no convention")


# --- pure maths -------------------------------------------------------------------------------------------------


def normalise_h36m(xy: np.ndarray, w: float, h: float) -> np.ndarray:
    """(..., 2) pixels -> (..., 2) normalised: x / w * 2 - 1, y / w * 2 - h / w (MotionBERT's H36M input)."""
    return xy / w * 2 - np.array([1.0, h / w])


def denormalise_h36m(joints_norm: np.ndarray, w: float, h: float) -> np.ndarray:
    """(..., 3) normalised 3D -> (..., 3) pixels: x = (x_n + 1) w / 2, y = (y_n + h / w) w / 2, depth = z_n w / 2."""
    out = np.array(joints_norm, dtype=np.float64, copy=True)
    out[..., :2] += np.array([1.0, h / w])
    return out * (w / 2)


def to_millimetres(joints_px: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """(T,17,3) pixels (x, y, depth) times the per-frame factor (T,) mm/px, root-relative -> (T,17,3) mm."""
    mm = joints_px * factor[:, None, None]
    return mm - mm[:, :1]


def apply_convention(pred: np.ndarray, input_xy: np.ndarray, rootrel: bool, gt_2d: bool) -> np.ndarray:
    """The root step, then gt_2d, on flip-averaged outputs (..., 17, 3) normalised.

    Args:
        pred: (..., 17, 3) normalised model output.
        input_xy: (..., 17, 2) the normalised x, y the model was given for the same frames.
    Returns:
        (..., 17, 3) float64: root joint (x, y, z) = 0 if ``rootrel``; then x, y of every joint = ``input_xy`` if
        ``gt_2d``.
    """
    out = np.array(pred, dtype=np.float64, copy=True)
    if rootrel:
        out[..., 0, :] = 0.0
    if gt_2d:
        out[..., :2] = input_xy
    return out


# --- running a model on one video ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoPrediction:
    """The scored frames of a video and their 3D: frames (N,) int ascending, joints (N,17,3) normalised."""

    frames: np.ndarray
    joints: np.ndarray


def predict_video(
    model: torch.nn.Module, inputs: np.ndarray, convention: Convention, frames: str, opts: RunOptions
) -> VideoPrediction:
    """Run a lifter over one video under a frames protocol and convention.

    Args:
        model: (B,L,17,C) normalised input -> (B,L,17,3) normalised 3D (a DSTformer, or a ``ManyToOne`` STMO).
        inputs: (T,17,3) normalised x, y + confidence (only x, y reach a ``no_conf`` model).
        frames: 'reference' or 'all' (``FRAMES``); opts.clip_len is L, opts.flip the flip averaging.
    Returns:
        The scored frames and their 3D after ``apply_convention``.
    """
    x = inputs[..., :2] if convention.no_conf else inputs
    if frames == "reference":
        plan = plan_reference_clips(len(x), opts.clip_len)
        idx, out = plan.frames, predict_clips(model, x, plan, opts)
    elif frames == "all":
        idx, out = np.arange(len(x)), predict_sequence(model, x, opts)
    else:
        raise ValueError(f"frames must be one of {', '.join(FRAMES)}, not {frames!r}")
    return VideoPrediction(idx, apply_convention(out, inputs[idx, :, :2], convention.rootrel, convention.gt_2d))


# --- scoring ------------------------------------------------------------------------------------------------------


def video_errors(
    video: H36MVideo, pred_norm: np.ndarray, protocols: Iterable[int] = (1, 2), frames: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-frame errors (N,) mm of a model output (N,17,3) normalised for the video's ``frames`` (N,) (default:
    every frame, N = T)."""
    frames = np.arange(video.num_frames) if frames is None else np.asarray(frames, dtype=np.int64)
    if pred_norm.shape != (len(frames), 17, 3):
        raise ValueError(f"{video.name}: prediction has shape {pred_norm.shape}, expected ({len(frames)}, 17, 3)")
    if len(frames) and (frames.min() < 0 or frames.max() >= video.num_frames or len(set(frames)) != len(frames)):
        raise ValueError(f"{video.name}: scored frames must be distinct indices below {video.num_frames}")
    pred_mm = to_millimetres(denormalise_h36m(pred_norm, *video.image_size), video.factor[frames])
    gt = video.joints_mm[frames]
    return frame_errors(pred_mm, gt - gt[:, :1], [METRICS[p].key for p in protocols])


def score_h36m(
    test_set: H36MTestSet,
    predict: Callable[[H36MVideo], np.ndarray | VideoPrediction],
    protocols: Iterable[int] = (1, 2),
    info: dict[str, Any] | None = None,
    on_video: Callable[[H36MVideo], None] | None = None,
    frames_note: str = "",
) -> Report:
    """Score every non-excluded test video.

    ``predict(video)`` gives its (T,17,3) normalised 3D (every frame scored), or a ``VideoPrediction`` (the scored
    frames and their 3D). Returns a Report with one table (per action, mean over actions, mean over frames; its
    title ends with ``frames_note`` and the number of frames not scored) and the headline figures (the mean over
    actions of each protocol). ``info`` is added to the report's info.
    """
    protocols = sorted(set(protocols))
    metrics = [METRICS[p] for p in protocols]
    sums = ScoreSums()
    left_out = 0
    for video in test_set.scored:
        pred = predict(video)
        if not isinstance(pred, VideoPrediction):
            pred = VideoPrediction(np.arange(video.num_frames), np.asarray(pred))
        for key, errors in video_errors(video, pred.joints, protocols, pred.frames).items():
            sums.add(video.action, key, errors)
        sums.add_frames(video.action, len(pred.frames))
        left_out += video.num_frames - len(pred.frames)
        if on_video is not None:
            on_video(video)
    title = "Human3.6M test (S9, S11)" + (f", {frames_note}" if frames_note else "")
    if left_out:
        title += f"; {left_out} frames not scored"
    table = build_table(sums, title, "action", metrics, order=ACTIONS)
    over_actions = table.summary_row("mean over actions").values
    over_frames = table.summary_row("mean over frames").values
    headline = {f"P{p} {METRICS[p].key} (mm)": over_actions[METRICS[p].key] for p in protocols}
    missing = [a for a in ACTIONS if a not in sums.frames]
    report_info = {
        "layout": test_set.layout,
        "data": [str(p) for p in test_set.paths],
        "videos": len(test_set.scored),
        "frames": int(sum(sums.frames.values())),
        "left_out_frames": int(left_out),
        "mean_over_actions": over_actions,
        "mean_over_frames": over_frames,
        "missing_actions": missing,
        "unknown_actions": sorted(set(sums.frames) - set(ACTIONS)),
        "excluded": [{"name": v.name, "frames": v.num_frames} for v in test_set.excluded],
        "excluded_frames": int(sum(v.num_frames for v in test_set.excluded)),
        "notes": test_set.notes,
    }
    report_info.update(info or {})
    return Report(benchmark="h36m", headline=headline, tables=[table], info=report_info)


def evaluate_h36m(
    test_set: H36MTestSet,
    model: Any,
    convention: Convention,
    opts: RunOptions,
    frames: str = "reference",
    protocols: Iterable[int] = (1, 2),
    gt_input: bool = False,
    info: dict[str, Any] | None = None,
    on_video: Callable[[H36MVideo], None] | None = None,
) -> Report:
    """Run a lifter over the test set and score it (``score_h36m``).

    ``frames``: 'reference' (MotionBERT's clips, the default) or 'all' (every frame); ``convention``: the root step,
    gt_2d and no_conf (``opts.flip`` is what runs); ``gt_input``: the label's 2D as input instead of the detections.
    The report's info records the frames protocol and rule, the convention, the input, flip and clip length.
    """
    if frames not in FRAMES:
        raise InputError(f"frames must be one of {', '.join(FRAMES)}, not {frames!r}")
    title, rule = (text.format(L=opts.clip_len) for text in FRAMES[frames])
    run_info: dict[str, Any] = {
        "frames_protocol": frames,
        "frames_rule": rule,
        "convention": {**convention.to_dict(), "flip": opts.flip},
        "gt_2d": convention.gt_2d,
        "input_2d": "gt" if gt_input else "detected",
        "flip": opts.flip,
        "clip_len": opts.clip_len,
    }
    if frames == "reference":
        run_info["resampled_videos"] = [v.name for v in test_set.scored if v.num_frames < opts.clip_len]
    return score_h36m(
        test_set,
        lambda video: predict_video(model, video.model_input(gt_input), convention, frames, opts),
        protocols,
        info={**run_info, **(info or {})},
        on_video=on_video,
        frames_note=title,
    )
