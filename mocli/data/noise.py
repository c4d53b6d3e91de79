"""MotionBERT's model of 2D detector errors, joint/frame masks and synthetic confidence (pure numpy).

The noise parameters were fitted by MotionBERT (Apache-2.0) to real 2D detections in normalised image coordinates
(x, y in about [-1, 1]); mocli carries them in ``motionbert_noise.json`` beside this module, in H36M-17 joint order.

Noise of one clip, per joint: on K = 27 keyframes a displacement is drawn either from a Gaussian with the joint's
mean/std (with the joint's probability ``weight``) or from a uniform ``(U - 0.5) * uniform_range``; it is linearly
interpolated to the T frames (first and last keyframes on the first and last frames) and a per-frame jitter
N(0, 0.002) is added. The confidence is synthesised from the displacement length d as
``a / (d + a) + b * d + N(m, s)``, clipped to [0, 1].

Masks: each joint of each frame is dropped with probability 5%, each whole frame with probability 10%; dropped
entries (x, y and confidence) are zeroed. mocli draws the frame mask per clip (the reference draws one per batch;
a per-clip draw has the same rate and works unchanged when the batch is split over processes).

Beyond MotionBERT's model, mocli adds failures that real detectors show over several frames (``DetectorFaults``,
off by default): a joint or a whole limb lost for a few to tens of frames (occlusion), the left and right arms or
legs exchanged for a few frames, and bursts of jitter with low confidence. A lost joint is zeroed like a masked
one, which is how ``mocli infer`` gives the model a missing keypoint (``transforms.crop_scale``: x = y = conf = 0).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "NOISE_FILE",
    "NoiseModel",
    "load_noise_model",
    "interpolate_keyframes",
    "sample_displacement",
    "synthetic_confidence",
    "add_detection_noise",
    "sample_keep_mask",
    "apply_keep_mask",
    "OCCLUSION_PARTS",
    "SWAP_PAIRS",
    "DetectorFaults",
    "DetectorErrors",
    "sample_detector_errors",
    "apply_detector_errors",
]

NOISE_FILE = Path(__file__).with_name("motionbert_noise.json")


@dataclass(frozen=True)
class NoiseModel:
    """Parameters of the detection-noise model (normalised image units, J joints in H36M-17 order).

    Attributes:
        mean, std: (J, 2) Gaussian displacement mean and standard deviation per joint and axis.
        weight: (J,) probability of the Gaussian (else uniform) per joint.
        uniform_range: width of the uniform displacement, centred on 0.
        num_keyframes: keyframes on which displacements are drawn before interpolation.
        jitter_std: standard deviation of the per-frame jitter.
        conf_a, conf_b, conf_m, conf_s: synthetic confidence ``a / (d + a) + b * d + N(m, s)``.
    """

    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray
    uniform_range: float = 0.06
    num_keyframes: int = 27
    jitter_std: float = 0.002
    conf_a: float = 0.028
    conf_b: float = 1.1
    conf_m: float = 0.0
    conf_s: float = 0.0

    @property
    def num_joints(self) -> int:
        return int(self.weight.shape[0])


def load_noise_model(path: str | os.PathLike | None = None) -> NoiseModel:
    """Read a noise model JSON (default: MotionBERT's, shipped with mocli)."""
    with open(path or NOISE_FILE, encoding="utf-8") as f:
        raw = json.load(f)
    conf = raw["confidence"]
    return NoiseModel(
        mean=np.asarray(raw["gaussian_mean"], dtype=np.float64),
        std=np.asarray(raw["gaussian_std"], dtype=np.float64),
        weight=np.asarray(raw["gaussian_weight"], dtype=np.float64),
        uniform_range=float(raw["uniform_range"]),
        num_keyframes=int(raw.get("num_keyframes", 27)),
        jitter_std=float(raw.get("jitter_std", 0.002)),
        conf_a=float(conf["a"]),
        conf_b=float(conf["b"]),
        conf_m=float(conf["m"]),
        conf_s=float(conf["s"]),
    )


def interpolate_keyframes(keys: np.ndarray, num_frames: int) -> np.ndarray:
    """Linear interpolation of (K, ...) keyframe values to (num_frames, ...); keys 0 and K-1 land on the end frames."""
    num_keys = keys.shape[0]
    if num_keys == 1 or num_frames == 1:
        return np.repeat(keys[:1], num_frames, axis=0)
    pos = np.linspace(0.0, num_keys - 1, num_frames)
    lo = np.minimum(np.floor(pos).astype(int), num_keys - 2)
    frac = (pos - lo).reshape((-1,) + (1,) * (keys.ndim - 1))
    return keys[lo] * (1 - frac) + keys[lo + 1] * frac


def sample_displacement(rng: np.random.Generator, num_frames: int, model: NoiseModel) -> np.ndarray:
    """(T, J, 2) detection-noise displacement of one clip, normalised image units."""
    shape = (model.num_keyframes, model.num_joints, 2)
    gaussian = rng.standard_normal(shape) * model.std + model.mean
    uniform = (rng.random(shape) - 0.5) * model.uniform_range
    pick_gaussian = rng.random((model.num_keyframes, model.num_joints, 1)) < model.weight[:, None]
    keys = np.where(pick_gaussian, gaussian, uniform)
    jitter = rng.standard_normal((num_frames, model.num_joints, 2)) * model.jitter_std
    return interpolate_keyframes(keys, num_frames) + jitter


def synthetic_confidence(
    dist: np.ndarray, a: float, b: float, m: float, s: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Confidence from a displacement length: ``clip(a / (d + a) + b * d + N(m, s), 0, 1)``, same shape as ``dist``.

    With ``s == 0`` (or no ``rng``) the noise term is the constant ``m``.
    """
    shift = m + (s * rng.standard_normal(dist.shape) if rng is not None and s > 0 else 0.0)
    return np.clip(a / (dist + a) + b * dist + shift, 0.0, 1.0)


def add_detection_noise(rng: np.random.Generator, xy: np.ndarray, model: NoiseModel) -> np.ndarray:
    """Corrupt clean 2D keypoints like a detector would.

    Args:
        rng: random generator.
        xy: (T, J, 2) clean keypoints, normalised image units.
        model: the noise model (J must match).
    Returns:
        (T, J, 3) noisy x, y and synthetic confidence in [0, 1].
    """
    if xy.shape[-2] != model.num_joints:
        raise ValueError(f"noise model has {model.num_joints} joints, keypoints have {xy.shape[-2]}")
    delta = sample_displacement(rng, xy.shape[0], model)
    conf = synthetic_confidence(
        np.linalg.norm(delta, axis=-1), model.conf_a, model.conf_b, model.conf_m, model.conf_s, rng
    )
    return np.concatenate([xy + delta, conf[..., None]], axis=-1)


def sample_keep_mask(
    rng: np.random.Generator, num_frames: int, num_joints: int, joint_ratio: float, frame_ratio: float
) -> np.ndarray:
    """(T, J) bool: True where a joint is kept. Joints drop with ``joint_ratio``, whole frames with ``frame_ratio``."""
    keep_joint = rng.random((num_frames, num_joints)) >= joint_ratio
    keep_frame = rng.random((num_frames, 1)) >= frame_ratio
    return keep_joint & keep_frame


def apply_keep_mask(keypoints: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Zero every channel of dropped joints. keypoints (T, J, C), keep (T, J) bool -> new (T, J, C) array."""
    return keypoints * keep[..., None]


# Body parts a detector loses together (H36M-17): each arm, each lower leg, the head.
OCCLUSION_PARTS: tuple[tuple[int, ...], ...] = ((11, 12, 13), (14, 15, 16), (5, 6), (2, 3), (9, 10))
# Left/right pairs a detector confuses together: the arms, the legs (H36M-17 flip pairs).
SWAP_PAIRS: tuple[tuple[tuple[int, int], ...], ...] = (((11, 14), (12, 15), (13, 16)), ((4, 1), (5, 2), (6, 3)))


@dataclass(frozen=True)
class DetectorFaults:
    """How often and how long a simulated detector fails (events per 100 frames; all 0: none).

    Attributes:
        occlusion_rate: occlusions per 100 frames; each loses one joint or, with ``occlusion_limb_prob``, one part
            of ``OCCLUSION_PARTS`` for ``occlusion_frames`` (lo, hi) consecutive frames.
        swap_rate: left/right swaps per 100 frames; each exchanges the arms or the legs (``SWAP_PAIRS``) for
            ``swap_frames`` frames.
        jitter_rate: jitter bursts per 100 frames; each shakes one joint by N(0, ``jitter_std``) per frame and axis
            (normalised units) for ``jitter_frames`` frames, its confidence multiplied by a factor drawn once per
            burst in ``jitter_conf``.
    """

    occlusion_rate: float = 0.0
    occlusion_frames: tuple[int, int] = (5, 30)
    occlusion_limb_prob: float = 0.5
    swap_rate: float = 0.0
    swap_frames: tuple[int, int] = (2, 8)
    jitter_rate: float = 0.0
    jitter_frames: tuple[int, int] = (3, 15)
    jitter_std: float = 0.05
    jitter_conf: tuple[float, float] = (0.1, 0.5)

    @property
    def active(self) -> bool:
        return self.occlusion_rate > 0 or self.swap_rate > 0 or self.jitter_rate > 0


@dataclass(frozen=True)
class DetectorErrors:
    """The detector failures of one clip.

    Attributes:
        occluded: (T, J) bool, entries lost (confidence 0 in the model input).
        source: (T, J) int64, the joint each entry is read from (the identity, except left/right in swapped frames).
        jitter: (T, J, 2) displacement added to x, y, normalised units.
        conf_scale: (T, J) factor of the confidence (1 outside jitter bursts).
    """

    occluded: np.ndarray
    source: np.ndarray
    jitter: np.ndarray
    conf_scale: np.ndarray


def _events(rng: np.random.Generator, num_frames: int, rate: float, frames: tuple[int, int]) -> list[slice]:
    """Poisson(rate * T / 100) spans of frames: start uniform over the clip, length uniform in ``frames`` (cut at
    the clip's end)."""
    if rate <= 0:
        return []
    spans = []
    for _ in range(rng.poisson(rate * num_frames / 100.0)):
        start = int(rng.integers(0, num_frames))
        length = int(rng.integers(frames[0], frames[1] + 1))
        spans.append(slice(start, min(num_frames, start + length)))
    return spans


def sample_detector_errors(
    rng: np.random.Generator, num_frames: int, faults: DetectorFaults, num_joints: int = 17
) -> DetectorErrors:
    """Draw one clip's detector failures (H36M-17 joints).

    Draws, in order: the occlusions (count; per event its span, then part or joint), the swaps (count; per event
    its span, then arms or legs), the jitter bursts (count; per event its span, joint, confidence factor, then
    the displacements). Overlapping events combine: the union of occlusions and swaps, jitters add up.
    """
    occluded = np.zeros((num_frames, num_joints), dtype=bool)
    for span in _events(rng, num_frames, faults.occlusion_rate, faults.occlusion_frames):
        if rng.random() < faults.occlusion_limb_prob:
            occluded[span, list(OCCLUSION_PARTS[rng.integers(len(OCCLUSION_PARTS))])] = True
        else:
            occluded[span, rng.integers(num_joints)] = True
    swapped = np.zeros((num_frames, len(SWAP_PAIRS)), dtype=bool)
    for span in _events(rng, num_frames, faults.swap_rate, faults.swap_frames):
        swapped[span, rng.integers(len(SWAP_PAIRS))] = True
    source = np.tile(np.arange(num_joints), (num_frames, 1))
    for k, pairs in enumerate(SWAP_PAIRS):
        for a, b in pairs:
            source[swapped[:, k], a], source[swapped[:, k], b] = b, a
    jitter = np.zeros((num_frames, num_joints, 2))
    conf_scale = np.ones((num_frames, num_joints))
    for span in _events(rng, num_frames, faults.jitter_rate, faults.jitter_frames):
        joint = rng.integers(num_joints)
        conf_scale[span, joint] *= rng.uniform(*faults.jitter_conf)
        jitter[span, joint] += rng.standard_normal((span.stop - span.start, 2)) * faults.jitter_std
    return DetectorErrors(occluded=occluded, source=source, jitter=jitter, conf_scale=conf_scale)


def apply_detector_errors(keypoints: np.ndarray, errors: DetectorErrors) -> np.ndarray:
    """Swaps, jitter and confidence changes of ``errors`` on (T, J, 3) normalised x, y + confidence -> a new array.

    Occlusions are not applied here: they are dropped entries, zeroed by ``apply_keep_mask`` with the other masks.
    """
    out = np.take_along_axis(keypoints, errors.source[..., None], axis=1)
    out[..., :2] += errors.jitter
    out[..., 2] *= errors.conf_scale
    return out
