"""Training clips from motion sources (``mocli.data.sources``): clip windows, the lift Dataset and the per-step
sample order.

A *source* is one sequence as arrays in memory (``mocli.data.sources.MotionSource``): 3D world (or camera) joints
in metres, or 2D keypoints in pixels with confidences. Clips are windows of ``clip_len`` frames every ``stride`` frames
(plus one window ending on the last frame, so the tail is covered); shorter sequences give no clip.

A *paired* source holds both: camera-frame 3D joints (the truth) and the 2D keypoints a real detector gave on a video
filmed (or rendered) by a known camera (``MotionSource.camera``, from the sequence attributes ``focal_px``,
``principal_x_px``, ``principal_y_px`` and ``image_size``). Its samples teach that detector's own errors: the label
is its 3D through its camera as for any 3D source, the model input the detector's 2D in the same crop box, with the
detector's confidence, and no synthetic noise, detector failures or 3D augmentations (the 2D is fixed).

Every random choice of a sample (camera, flip, noise, masks, augmentations) comes from a generator seeded by
``(seed, stream, epoch, clip index)``: a sample depends on nothing else, so shuffling, worker processes, several
training processes and resuming from a checkpoint never change it. An augmentation that is switched off draws
nothing, so the samples of a config without augmentations are those of older versions, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mocli.config import DataConfig
from mocli.data import augment
from mocli.data.cameras import (
    ViewRange,
    identity_camera,
    image_25d,
    sample_camera,
    up_vector,
    world_to_camera,
)
from mocli.data.definitions import sample_joint_shifts, shift_joints
from mocli.data.noise import (
    DetectorFaults,
    NoiseModel,
    add_detection_noise,
    apply_detector_errors,
    apply_keep_mask,
    load_noise_model,
    sample_detector_errors,
    sample_keep_mask,
)
from mocli.data.sources import MotionSource
from mocli.data.transforms import CropBox, crop_box, flip_clip, normalise_image_3d, normalise_xy, root_relative
from mocli.errors import InputError

__all__ = [
    "clip_starts",
    "ClipIndex",
    "build_clip_index",
    "LiftClipDataset",
    "view_range",
    "detector_faults",
    "epoch_order",
    "StepBatchSampler",
    "TRAIN_STREAM",
    "VAL_STREAM",
]

TRAIN_STREAM, VAL_STREAM = 0, 1


def _normalise_detections(keypoints: np.ndarray, box: CropBox | None) -> np.ndarray:
    """(T, J, 3) detected x, y pixels + confidence -> (T, J, 3) x, y normalised by ``box`` (``normalise_xy``, as the
    label's x, y) + the confidence; keypoints with confidence 0, and every keypoint when ``box`` is None, all zero."""
    out = np.zeros_like(keypoints)
    if box is None:
        return out
    out[..., :2] = normalise_xy(keypoints[..., :2], box)
    out[..., 2] = keypoints[..., 2]
    out[keypoints[..., 2] <= 0] = 0.0
    return out


def clip_starts(num_frames: int, clip_len: int, stride: int) -> np.ndarray:
    """First frames of the windows of ``clip_len`` every ``stride`` frames, plus one ending on the last frame.

    Returns an empty array when the sequence is shorter than ``clip_len``.
    """
    if num_frames < clip_len:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, num_frames - clip_len + 1, max(1, stride), dtype=np.int64)
    if starts[-1] != num_frames - clip_len:
        starts = np.append(starts, num_frames - clip_len)
    return starts


@dataclass(frozen=True)
class ClipIndex:
    """N clips: ``source`` (N,) index into the source list, ``start`` (N,) first frame, ``is_2d`` (N,) bool."""

    source: np.ndarray
    start: np.ndarray
    is_2d: np.ndarray

    def __len__(self) -> int:
        return int(self.source.shape[0])


PAIRED_MIN_DETECTED = 0.5  # a paired clip is used when the detector found the person in at least this share of it


def detected_share(keypoints: np.ndarray, starts: np.ndarray, clip_len: int) -> np.ndarray:
    """(N,) share of the ``clip_len`` frames from each of ``starts`` in which ``keypoints`` (T,J,3, pixels +
    confidence) has any joint with confidence above 0."""
    seen = (keypoints[..., 2] > 0).any(axis=-1).astype(np.float64)
    total = np.concatenate([[0.0], np.cumsum(seen)])
    return (total[starts + clip_len] - total[starts]) / clip_len


def build_clip_index(sources: Sequence[MotionSource], clip_len: int, stride: int) -> ClipIndex:
    """Every clip window of every source, in source order; of a paired source only the windows in which its
    detector found the person in at least ``PAIRED_MIN_DETECTED`` of the frames (a clip of zeros teaches nothing)."""
    src, start, is_2d = [], [], []
    for k, s in enumerate(sources):
        st = clip_starts(s.num_frames, clip_len, stride)
        if s.is_paired:
            st = st[detected_share(s.keypoints2d, st, clip_len) >= PAIRED_MIN_DETECTED]
        src.append(np.full(len(st), k, dtype=np.int64))
        start.append(st)
        is_2d.append(np.full(len(st), not s.is_3d))
    if not src:
        return ClipIndex(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))
    return ClipIndex(np.concatenate(src), np.concatenate(start), np.concatenate(is_2d))


def view_range(cfg: DataConfig) -> ViewRange:
    """The virtual-camera ranges of a DataConfig."""
    return ViewRange(
        yaw_deg=cfg.yaw_deg, pitch_deg=cfg.pitch_deg, roll_deg=cfg.roll_deg, distance_m=cfg.distance_m,
        fov_deg=cfg.fov_deg, image_size=cfg.image_size, aim_offset_m=tuple(cfg.aim_offset_m),
    )  # fmt: skip


def detector_faults(cfg: DataConfig) -> DetectorFaults:
    """The simulated detector failures of a DataConfig."""
    return DetectorFaults(
        occlusion_rate=cfg.occlusion_rate, occlusion_frames=tuple(cfg.occlusion_frames),
        occlusion_limb_prob=cfg.occlusion_limb_prob, swap_rate=cfg.swap_rate, swap_frames=tuple(cfg.swap_frames),
        jitter_rate=cfg.jitter_rate, jitter_frames=tuple(cfg.jitter_frames), jitter_std=cfg.jitter_std,
    )  # fmt: skip


class LiftClipDataset(torch.utils.data.Dataset):
    """Samples of the lift pretext: noisy, masked, normalised 2D clips and their normalised 3D (2.5D) targets.

    Indexed by ``(epoch, clip)`` (what ``StepBatchSampler`` yields) or by a plain clip index (epoch 0). A sample is
    a dict of float32 tensors:

        input     (T, 17, 3) normalised x, y + confidence: the model input (masked entries are all zero)
        target    (T, 17, 3) normalised 3D: x, y like the clean input, depth scaled alike (root-relative if set);
                  for 2D-only data the clean normalised x, y and depth 0
        weight_2d (T, 17) confidence of each target joint for the 2D loss (1 for 3D data)
        factor    (T,) metres per normalised unit at the root depth of each frame (0 for 2D-only data)
        has_3d    () 1.0 for 3D data, 0.0 for 2D-only data

    3D sources are seen through a random virtual camera per sample (``DataConfig`` ranges; camera-frame sources
    through the identity camera), projected (pinhole or scaled orthographic), normalised over the clip's 2D box,
    flipped at random (training only), then the 2D input gets detection noise with synthetic confidence and masks.
    Paired sources are seen through their own camera, and their input is the detector's 2D of the clip's frames in
    the label's box, with its confidence (zero where it is 0), flipped with the label and masked; nothing else.

    Training clips of 3D sources (not paired ones) also get the augmentations the config switches on
    (docs/pretrain.md), in this order: a new playback speed (``data.speed_fps``), body proportions
    (``data.body_scale``, ``bone_scale``, ``bone_asymmetry``), bent legs (``data.bend_prob``, ``bend_hip_deg``,
    ``bend_knee_deg``), a bent trunk (``data.trunk_prob``, ``trunk_deg``), a tilt of world-frame motion
    (``data.tilt_prob``, ``tilt_deg``; changing over the clip with ``tilt_ramp_prob``), then, after the noise,
    detector failures (``data.occlusion_*``, ``swap_*``, ``jitter_*``; only with ``data.noise``), and with
    ``data.shift_prob`` a 2D input showing joints defined elsewhere on the body (``mocli.data.definitions``; the
    target keeps the data's joints).
    Validation clips get none of them; the camera ranges (``aim_offset_m`` included) apply to both.
    """

    def __init__(
        self,
        sources: Sequence[MotionSource],
        cfg: DataConfig,
        *,
        seed: int = 0,
        train: bool = True,
        stride: int | None = None,
        noise_model: NoiseModel | None = None,
    ) -> None:
        self.sources = list(sources)
        self.cfg = cfg
        self.seed = int(seed)
        self.train = train
        self.stream = TRAIN_STREAM if train else VAL_STREAM
        self.index = build_clip_index(self.sources, cfg.clip_len, stride or cfg.stride)
        augment.check_config(cfg)
        self.view = view_range(cfg)
        self.faults = detector_faults(cfg)
        self.noise_model = noise_model or (load_noise_model(cfg.noise_file or None) if cfg.noise else None)

    def __len__(self) -> int:
        return len(self.index)

    def active_clips(self, epoch: int) -> np.ndarray:
        """Clip indices used in ``epoch``: 3D clips, plus 2D-only clips from ``join_2d_epoch`` on (curriculum)."""
        use_2d = epoch >= self.cfg.join_2d_epoch
        return np.flatnonzero(~self.index.is_2d | use_2d)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.seed, self.stream, int(epoch), int(i)])
        src = self.sources[int(self.index.source[i])]
        start = int(self.index.start[i])
        frames = slice(start, start + self.cfg.clip_len)
        if src.is_paired:  # the plain window: the detector's 2D is fixed to these frames
            joints, detected = (a[frames].astype(np.float64) for a in (src.joints3d, src.keypoints2d))
            sample = self._sample_3d(rng, src, joints, detected)
        elif src.joints3d is not None:
            sample = self._sample_3d(rng, src, self._window_3d(rng, src, start))
        else:
            sample = self._sample_2d(rng, src.keypoints2d[frames].astype(np.float64))
        return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sample.items()}

    def _flip(self, rng: np.random.Generator) -> bool:
        return self.train and rng.random() < self.cfg.flip_prob

    def _window_3d(self, rng: np.random.Generator, src: MotionSource, start: int) -> np.ndarray:
        """(clip_len, 17, 3) float64 joints of the clip from ``start``; in training with ``data.speed_fps``, as if
        filmed at a random rate in that range (``augment.change_speed``)."""
        if self.train and tuple(self.cfg.speed_fps) != (0.0, 0.0):
            if not src.fps > 0:
                raise InputError(f"{src.name}: frame rate {src.fps} is not positive; data.speed_fps needs one")
            step = src.fps / augment.sample_target_fps(rng, self.cfg.speed_fps)
            return augment.change_speed(src.joints3d, start, self.cfg.clip_len, step)
        return src.joints3d[start : start + self.cfg.clip_len].astype(np.float64)

    def _augment_3d(self, rng: np.random.Generator, src: MotionSource, joints: np.ndarray) -> np.ndarray:
        """Body proportions, bent legs, a bent trunk, then a tilt (world-frame sources only), each when the config
        switches it on."""
        cfg = self.cfg
        if tuple(cfg.body_scale) != (1.0, 1.0) or tuple(cfg.bone_scale) != (1.0, 1.0) or cfg.bone_asymmetry > 0:
            factors = augment.sample_body_factors(rng, cfg.body_scale, cfg.bone_scale, cfg.bone_asymmetry)
            joints = augment.scale_body(joints, factors.bones, factors.root)
        if cfg.bend_prob > 0 and rng.random() < cfg.bend_prob:
            joints = augment.bend_legs(joints, augment.sample_leg_bend(rng, cfg.bend_hip_deg, cfg.bend_knee_deg))
        if cfg.trunk_prob > 0 and rng.random() < cfg.trunk_prob:
            joints = augment.bend_trunk(joints, rng.uniform(*cfg.trunk_deg))
        if cfg.tilt_prob > 0 and src.frame == "world" and rng.random() < cfg.tilt_prob:
            up, pivot = up_vector(src.up_axis), joints[:, 0].mean(axis=0)
            if cfg.tilt_ramp_prob > 0 and rng.random() < cfg.tilt_ramp_prob:
                joints = augment.ramp_tilt(joints, augment.sample_tilt_ramp(rng, up, cfg.tilt_deg, len(joints)), pivot)
            else:
                joints = augment.rotate_about(joints, augment.sample_tilt(rng, up, cfg.tilt_deg), pivot)
        return joints

    def _corrupt(self, rng: np.random.Generator, xy: np.ndarray, conf: np.ndarray | None) -> np.ndarray:
        """(T, J, 2) clean normalised x, y -> (T, J, 3) model input with noise and detector failures (only without
        a real ``conf`` (T, J), i.e. 3D seen through a virtual camera; failures in training only) and masks; dropped
        entries are zero, as inference gives missing keypoints."""
        synthetic = conf is None and self.noise_model is not None
        if synthetic:
            kp = add_detection_noise(rng, xy, self.noise_model)
        else:
            kp = np.concatenate([xy, (np.ones(xy.shape[:-1]) if conf is None else conf)[..., None]], axis=-1)
        keep = sample_keep_mask(rng, xy.shape[0], xy.shape[1], self.cfg.mask_joint_ratio, self.cfg.mask_frame_ratio)
        if synthetic and self.train and self.faults.active:
            errors = sample_detector_errors(rng, xy.shape[0], self.faults, xy.shape[1])
            kp, keep = apply_detector_errors(kp, errors), keep & ~errors.occluded
        return apply_keep_mask(kp, keep)

    def _sample_3d(
        self, rng: np.random.Generator, src: MotionSource, joints: np.ndarray, detected: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The sample of (T, 17, 3) joints in metres (``src.frame``). ``detected``: (T, 17, 3) x, y pixels +
        confidence of a paired source, shown as the input instead of the projected joints (no augmentation, no
        definition shift, no synthetic noise or failures)."""
        if self.train and detected is None:
            joints = self._augment_3d(rng, src, joints)
        if src.camera is not None:
            camera = src.camera
        elif src.frame == "world":
            camera = sample_camera(rng, joints, src.up_axis, self.view)
        else:
            camera = identity_camera(self.view)

        def to_image(world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            orthographic = self.cfg.projection == "orthographic"
            return image_25d(world_to_camera(world, camera.R, camera.t), camera, orthographic=orthographic)

        label_px, metres_per_px = to_image(joints)
        box = crop_box(label_px[..., :2], ratio=rng.uniform(*self.cfg.scale_range))
        if box is None:  # a degenerate clip (all joints on one point): no signal, no loss
            box_scale, target = 1.0, np.zeros_like(label_px)
        else:
            box_scale, target = box.scale, normalise_image_3d(label_px, box)
        shown = target  # the joints the 2D input shows: with data.shift_prob, defined elsewhere on the body
        if detected is not None:  # x, y + the detector's confidence
            shown = _normalise_detections(detected, box)
        elif self.train and self.cfg.shift_prob > 0 and rng.random() < self.cfg.shift_prob and box is not None:
            shifted = shift_joints(joints, sample_joint_shifts(rng, self.cfg.shift_m))
            shown = normalise_image_3d(to_image(shifted)[0], box)
        if self._flip(rng):
            target, shown = flip_clip(target), flip_clip(shown)
        model_input = self._corrupt(rng, shown[..., :2], None if detected is None else shown[..., 2])
        if self.cfg.root_relative:
            target = root_relative(target)
        return {
            "input": model_input,
            "target": target,
            "weight_2d": np.ones(target.shape[:2]),
            "factor": metres_per_px / box_scale,
            "has_3d": np.float32(1.0),
        }

    def _sample_2d(self, rng: np.random.Generator, keypoints: np.ndarray) -> dict[str, np.ndarray]:
        conf = keypoints[..., 2]
        box = crop_box(keypoints[..., :2], conf > 0, ratio=rng.uniform(*self.cfg.scale_range))
        clean = np.zeros_like(keypoints)
        if box is not None:
            clean[..., :2] = normalise_xy(keypoints[..., :2], box)
            clean[..., 2] = conf
        else:
            clean[..., 2] = 0.0
        if self._flip(rng):
            clean = flip_clip(clean)
        target = np.concatenate([clean[..., :2], np.zeros(clean.shape[:2] + (1,))], axis=-1)
        return {
            "input": self._corrupt(rng, clean[..., :2], clean[..., 2]),
            "target": target,
            "weight_2d": clean[..., 2],
            "factor": np.zeros(clean.shape[0]),
            "has_3d": np.float32(0.0),
        }


def epoch_order(active: np.ndarray, seed: int, epoch: int, global_batch: int) -> np.ndarray:
    """The shuffled clip order of one epoch, padded (wrapping round) to a whole number of global batches.

    Args:
        active: (N,) clip indices of the epoch.
        seed, epoch: the permutation is a function of these only.
        global_batch: samples per optimiser step over all processes.
    Returns:
        (ceil(N / global_batch) * global_batch,) clip indices.
    """
    if len(active) == 0:
        return active
    perm = active[np.random.default_rng([seed, 2, epoch]).permutation(len(active))]
    total = -(-len(perm) // global_batch) * global_batch
    return np.resize(perm, total)


class StepBatchSampler(torch.utils.data.Sampler):
    """This process's share of each global batch of an epoch, from step ``start_step`` on.

    Global batch ``s`` is ``order[s*B : (s+1)*B]``; process ``rank`` of ``world`` takes its ``B / world``
    consecutive items (the DistributedSampler equivalent). Yields lists of ``(epoch, clip)`` keys.
    """

    def __init__(self, order: np.ndarray, epoch: int, global_batch: int, rank: int, world: int, start_step: int):
        if global_batch % world:
            raise ValueError(f"global batch {global_batch} does not split over {world} processes")
        self.order, self.epoch, self.start = order, epoch, start_step
        self.local = global_batch // world
        self.offset = rank * self.local
        self.global_batch = global_batch

    def __len__(self) -> int:
        return max(0, len(self.order) // self.global_batch - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, len(self.order) // self.global_batch):
            first = step * self.global_batch + self.offset
            yield [(self.epoch, int(c)) for c in self.order[first : first + self.local]]
