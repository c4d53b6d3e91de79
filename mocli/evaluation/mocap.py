"""mocli's own benchmark: 2D -> 3D lifting on the validation split of real motion capture.

For each validation sequence (world-frame joints in metres, from ``mocli prepare dataset bvh``):

1. one FIXED virtual camera, drawn by ``cameras.sample_camera`` from the ranges the model was trained with, with a
   numpy Generator seeded by ``(seed, crc32(sequence name))`` (camera-frame data: the identity camera, as in training);
2. windows of the clip length over the whole sequence (every frame scored once, runner.py); per window, exactly
   what training does (``LiftClipDataset._sample_3d``) minus the randomness: the 2.5D label (image x, y and depth
   in pixels) is normalised over the window's 2D box (crop-scale, ratio = the middle of the training scale range),
   and the input is its clean x, y with confidence 1 or, for the noisy variant, MotionBERT's detection noise and
   synthetic confidence (Generator seeded by ``(seed, crc32(name), 1, window index)``); no flip, no masks;
3. millimetres as the trainer's validation computes them: prediction and target made root-relative per frame and
   multiplied by the window's factor (metres per normalised unit at the root depth of each frame) x 1000;
4. MPJPE, PA-MPJPE and the PA-MPJPE of the 12 limb joints (mm; ``pose_errors.frame_errors``) per frame and the
   acceleration error (mm/frame^2) over the whole sequence, grouped by source (the file's or sequence's
   ``source``) and by action (Bandai ``content_label``, else the ``action``).

Everything is a function of the data, the model and the seed: two runs give identical figures.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocli.config import DataConfig, apply_dict
from mocli.data.cameras import Camera, ViewRange, identity_camera, image_25d, sample_camera, world_to_camera
from mocli.data.clips import view_range
from mocli.data.noise import NoiseModel, add_detection_noise
from mocli.data.transforms import CropBox, crop_box, normalise_image_3d
from mocli.errors import InputError, MocliError
from mocli.evaluation.pose_errors import acceleration_sum, frame_errors
from mocli.evaluation.report import Metric, Report, ScoreSums, Table, build_table
from mocli.evaluation.runner import WindowPlan, gather_frames, pad_window, plan_sequence

__all__ = [
    "MocapOptions",
    "MocapSequence",
    "MocapWindows",
    "METRICS",
    "VARIANTS",
    "options_from_data_config",
    "data_config_of",
    "load_mocap_sequences",
    "subsample_sequence",
    "sequence_camera",
    "build_windows",
    "sequence_errors",
    "score_mocap",
    "score_mocap_actions",
    "ACTION_METRICS",
]

log = logging.getLogger(__name__)

METRICS = [
    Metric("mpjpe", "MPJPE"),
    Metric("pa_mpjpe", "PA-MPJPE"),
    Metric("pa_limbs", "PA-MPJPE limbs"),
    Metric("accel", "Accel", "mm/frame²"),
]
VARIANTS = {"clean": "clean 2D", "noisy": "MotionBERT detection noise"}


@dataclass(frozen=True)
class MocapOptions:
    """How 2D inputs are made (matching the model's training data config) and which frames are scored.

    clip_len: frames per window. view: virtual camera ranges. projection: 'perspective' or 'orthographic'.
    box_ratio: crop box side / keypoint extent. fps: subsample to about this rate (0: keep). seed: camera and noise
    seed. split: which sequences are scored.
    """

    clip_len: int
    view: ViewRange = field(default_factory=ViewRange)
    projection: str = "perspective"
    box_ratio: float = 1.0
    fps: float = 0.0
    seed: int = 0
    split: str = "val"


@dataclass
class MocapSequence:
    """One sequence to score: joints (T,17,3) metres in ``frame`` ('world' with ``up_axis``, or 'camera')."""

    name: str
    source: str
    action: str
    fps: float
    joints: np.ndarray
    frame: str = "world"
    up_axis: str = "y"
    subject: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])


@dataclass
class MocapWindows:
    """The windows of one sequence as the model sees them.

    plan: the windows and the frames each scores. inputs: (N,L,17,3) normalised x, y + confidence.
    targets: (N,L,17,3) normalised 3D label (not root-relative). factors: (N,L) metres per normalised unit.
    """

    plan: WindowPlan
    inputs: np.ndarray
    targets: np.ndarray
    factors: np.ndarray


# --- options from the model's training config ---------------------------------------------------------------------


def data_config_of(checkpoint_info: dict[str, Any]) -> DataConfig:
    """The DataConfig a checkpoint was trained with (defaults for keys it lacks or when it has none)."""
    cfg = DataConfig()
    data = (checkpoint_info.get("train_config") or {}).get("data") or {}
    try:
        apply_dict(cfg, {k: v for k, v in data.items() if k in DataConfig.__dataclass_fields__})
    except MocliError as e:
        log.warning("the model's training data config is unusable (%s); using the defaults", e)
        cfg = DataConfig()
    return cfg


def options_from_data_config(cfg: DataConfig, clip_len: int, seed: int = 0) -> MocapOptions:
    """MocapOptions matching a training DataConfig (camera ranges, projection, crop ratio, frame rate)."""
    return MocapOptions(clip_len=clip_len, view=view_range(cfg), projection=cfg.projection,
                        box_ratio=float(np.mean(cfg.scale_range)), fps=cfg.fps, seed=seed)  # fmt: skip


# --- data -------------------------------------------------------------------------------------------------------


def load_mocap_sequences(paths: Iterable[Path], split: str | None = "val", fps: float = 0.0) -> list[MocapSequence]:
    """The 3D sequences of ``split`` (None: every split) in mocli HDF5 files, subsampled to about ``fps``.

    Raises:
        InputError: unreadable files, or no 3D sequence of that split.
    """
    from mocli.data.h5 import open_dataset

    out: list[MocapSequence] = []
    for path in paths:
        with open_dataset(path) as ds:
            try:
                out += [s for s in (_mocap_sequence(r.load(), ds.source or Path(path).stem, fps)
                                    for r in ds.sequences(split)) if s is not None]  # fmt: skip
            except (OSError, KeyError, ValueError) as e:
                raise InputError(f"{path}: cannot read sequences ({e})") from None
    if not out:
        names = ", ".join(str(p) for p in paths)
        where = "any split" if split is None else f"split {split!r}"
        raise InputError(f"{names}: no 3D sequences in {where} (prepare the data with a validation split)")
    return out


def _mocap_sequence(seq: Any, file_source: str, fps: float) -> MocapSequence | None:
    if seq.joints3d is None or seq.frame not in ("world", "camera"):
        return None
    action = seq.extra.get("content_label") or seq.action or "-"
    full = MocapSequence(
        name=seq.name, source=seq.source or file_source, action=str(action), fps=seq.fps,
        joints=np.asarray(seq.joints3d, np.float64), frame=seq.frame, up_axis=seq.up_axis or "y",
        subject=seq.subject or "",
    )  # fmt: skip
    return subsample_sequence(full, fps)


def subsample_sequence(seq: MocapSequence, fps: float) -> MocapSequence:
    """Every k-th frame, k = round(native fps / ``fps``) >= 1 (``fps`` 0: unchanged)."""
    step = max(int(round(seq.fps / fps)), 1) if fps > 0 else 1
    if step == 1:
        return seq
    return replace(seq, fps=seq.fps / step, joints=seq.joints[::step])


def _name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def sequence_camera(seq: MocapSequence, seed: int, view: ViewRange) -> Camera:
    """The sequence's fixed camera: ``sample_camera`` over all its frames with a Generator seeded by
    ``(seed, crc32(name))``; the identity camera for camera-frame joints."""
    if seq.frame != "world":
        return identity_camera(view)
    rng = np.random.default_rng([seed, _name_key(seq.name)])
    return sample_camera(rng, seq.joints, seq.up_axis, view)


def build_windows(seq: MocapSequence, camera: Camera, opts: MocapOptions, noise: NoiseModel | None) -> MocapWindows:
    """Model inputs, normalised targets and factors of every window of a sequence (see the module docstring)."""
    plan = plan_sequence(seq.num_frames, opts.clip_len)
    inputs, targets, factors = [], [], []
    for i, (s, e) in enumerate(plan.windows):
        cam_joints = world_to_camera(seq.joints[s:e], camera.R, camera.t)
        label_px, metres_per_px = image_25d(cam_joints, camera, orthographic=opts.projection == "orthographic")
        box = crop_box(label_px[..., :2], ratio=opts.box_ratio) or CropBox(label_px[0, 0, :2], 1.0)
        target = normalise_image_3d(label_px, box)
        if noise is None:
            model_input = np.concatenate([target[..., :2], np.ones(target.shape[:-1] + (1,))], axis=-1)
        else:
            rng = np.random.default_rng([opts.seed, _name_key(seq.name), 1, i])
            model_input = add_detection_noise(rng, target[..., :2], noise)
        inputs.append(pad_window(model_input, opts.clip_len))
        targets.append(pad_window(target, opts.clip_len))
        factors.append(pad_window(metres_per_px / box.scale, opts.clip_len))
    return MocapWindows(plan, np.stack(inputs), np.stack(targets), np.stack(factors))


def sequence_errors(pred: np.ndarray, windows: MocapWindows) -> dict[str, Any]:
    """Errors of the model outputs (N,L,17,3) normalised for one sequence.

    Returns:
        {'mpjpe': (T,) mm, 'pa_mpjpe': (T,) mm, 'pa_limbs': (T,) mm (``frame_errors``),
        'accel': (sum, count) mm/frame^2 over (T-2)*17 terms}.
    """
    if pred.shape != windows.targets.shape:
        raise ValueError(f"predictions {pred.shape} do not match the windows {windows.targets.shape}")
    scale = 1000.0 * windows.factors[..., None, None]  # (N,L,1,1) mm per normalised unit
    pred_mm = gather_frames(list((pred - pred[:, :, :1]) * scale), windows.plan)
    gt_mm = gather_frames(list((windows.targets - windows.targets[:, :, :1]) * scale), windows.plan)
    out: dict[str, Any] = frame_errors(pred_mm, gt_mm, keys=("mpjpe", "pa_mpjpe", "pa_limbs"))
    out["accel"] = acceleration_sum(pred_mm, gt_mm)
    return out


def score_mocap(
    sequences: list[MocapSequence],
    predict: Callable[[MocapWindows], np.ndarray],
    opts: MocapOptions,
    variants: dict[str, NoiseModel | None],
    info: dict[str, Any] | None = None,
    on_sequence: Callable[[MocapSequence], None] | None = None,
) -> Report:
    """Score every sequence once per input variant ({'clean': None, 'noisy': noise model}).

    ``predict(windows)`` gives the (N,L,17,3) normalised model outputs of ``windows.inputs``. Returns a Report with
    a table per variant and grouping (source, action); headline = the mean over all frames per variant and metric.
    """
    sums = {(v, by): ScoreSums() for v in variants for by in ("source", "action")}
    per_sequence: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for seq in sequences:
        camera = sequence_camera(seq, opts.seed, opts.view)
        for variant, noise in variants.items():
            windows = build_windows(seq, camera, opts, noise)
            errors = sequence_errors(predict(windows), windows)
            for by, group in (("source", seq.source), ("action", seq.action)):
                _add(sums[variant, by], group, errors, seq.num_frames)
            per_sequence[variant].append(_sequence_row(seq, errors))
        if on_sequence is not None:
            on_sequence(seq)
    tables, headline = [], {}
    for variant in variants:
        for by in ("source", "action"):
            title = f"mocap {opts.split} - {VARIANTS.get(variant, variant)} - per {by}"
            tables.append(build_table(sums[variant, by], title, by, METRICS))
        overall = tables[-1].summary_row("mean over frames").values
        headline.update({f"{variant} {m.key} ({m.unit})": overall[m.key] for m in METRICS})
    report_info = {
        "split": opts.split,
        "sequences": len(sequences),
        "frames": int(sum(s.num_frames for s in sequences)),
        "seed": opts.seed,
        "clip_len": opts.clip_len,
        "projection": opts.projection,
        "box_ratio": opts.box_ratio,
        "fps": opts.fps,
        "view": {k: getattr(opts.view, k) for k in opts.view.__dataclass_fields__},
        "variants": {v: VARIANTS.get(v, v) for v in variants},
        "per_sequence": per_sequence,
    }
    report_info.update(info or {})
    return Report(benchmark="mocap", headline=headline, tables=tables, info=report_info)


def _add(sums: ScoreSums, group: str, errors: dict[str, Any], frames: int) -> None:
    sums.add(group, "mpjpe", errors["mpjpe"])
    sums.add(group, "pa_mpjpe", errors["pa_mpjpe"])
    sums.add(group, "pa_limbs", errors["pa_limbs"])
    sums.add_total(group, "accel", *errors["accel"])
    sums.add_frames(group, frames)


def _sequence_row(seq: MocapSequence, errors: dict[str, Any]) -> dict[str, Any]:
    total, count = errors["accel"]
    return {"name": seq.name, "source": seq.source, "action": seq.action, "frames": seq.num_frames,
            "mpjpe": float(errors["mpjpe"].mean()), "pa_mpjpe": float(errors["pa_mpjpe"].mean()),
            "pa_limbs": float(errors["pa_limbs"].mean()), "accel": total / count if count else None}  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------------
# Action accuracy of an action checkpoint (``mocli eval mocap --action-model``)
# ----------------------------------------------------------------------------------------------------------------------

ACTION_METRICS = [Metric("top1", "Top-1", "%"), Metric("top5", "Top-5", "%")]


def score_mocap_actions(
    paths: Sequence[str | Path],
    checkpoint: str | Path,
    split: str = "val",
    batch_size: int = 8,
    device: str = "cpu",
) -> Table:
    """Top-1 / top-5 accuracy (%) of an action checkpoint per source, on the labelled sequences of ``split``.

    The trainer's validation path exactly (``ActionClipDataset`` with ``train=False``, the checkpoint's training
    data settings and seed): every sequence once, resampled to the model's clip length, 3D-only sequences through
    one fixed seeded virtual camera each, clean 2D. The label attribute is the training ``head.label_key``; classes
    are matched by name, and a sequence whose class the model does not know is left out.

    Returns:
        a Table grouped by the sequences' ``source`` attribute ('frames' counts sequences there).
    """
    from mocli.actions import load_action_model
    from mocli.data.finetune_data import ActionClipDataset, list_action_sequences
    from mocli.models.checkpoint import load_checkpoint
    from mocli.models.registry import resolve_weights

    path = resolve_weights(checkpoint)
    ckpt = load_checkpoint(path)
    action = load_action_model(path, device, ckpt=ckpt)
    train_config = ckpt.get("train_config") or {}
    label_key = (train_config.get("head") or {}).get("label_key") or "content_label"
    known = {f.name for f in fields(DataConfig)}
    data = DataConfig(**{k: v for k, v in (train_config.get("data") or {}).items() if k in known})
    data = replace(data, clip_len=action.clip_len, paths=[str(p) for p in paths])
    items, names = list_action_sequences([str(p) for p in paths], label_key)
    index = {name: i for i, name in enumerate(action.class_names)}
    chosen, labels = [], []
    for item in items:
        if item.split == split and names[item.label] in index:
            chosen.append(item)
            labels.append(index[names[item.label]])
    if not chosen:
        where = ", ".join(map(str, paths))
        raise MocliError(f"no {split} sequences with a {label_key!r} the action model knows in {where}")
    dataset = ActionClipDataset(chosen, data, train=False, max_persons=action.max_persons,
                                seed=int(train_config.get("seed", 0)))  # fmt: skip
    sums = ScoreSums()
    for start in range(0, len(chosen), batch_size):
        ids = range(start, min(start + batch_size, len(chosen)))
        x = torch.stack([torch.as_tensor(dataset[i]["input"]) for i in ids]).float().to(device)
        with torch.inference_mode():
            logits = action.model(x).float().cpu()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices.numpy()
        for row, i in zip(top, ids, strict=True):
            group = chosen[i].source
            sums.add(group, "top1", np.array([100.0 * (row[0] == labels[i])]))
            sums.add(group, "top5", np.array([100.0 * (labels[i] in row)]))
            sums.add_frames(group, 1)
    return build_table(sums, f"mocap {split} - action recognition ({label_key}) - per source", "source",
                       ACTION_METRICS)  # fmt: skip
