"""Clip transforms: MotionBERT's in-the-wild normalisation ("crop_scale"), root-relative joints, horizontal flip, and
the action and mesh samples' persons (``select_persons``), time resampling (``resample_indices``) and joint box
(``normalise_persons``), shared by their training datasets and inference.

Normalisation: a square box is put over every valid keypoint of the whole clip (side = the larger extent of their
bounding box, times ``ratio``, centred on it) and mapped to [-1, 1]: ``x_n = (x - centre_x) * 2 / side`` and the
same for y. A 3D label in image units (x, y pixels plus depth in pixels) is normalised with the same box, its depth
scaled by the same factor ``2 / side`` and not shifted. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocli.skeleton import H36M_17, Skeleton, flip_keypoints

__all__ = [
    "CropBox",
    "crop_box",
    "normalise_xy",
    "denormalise_xy",
    "normalise_image_3d",
    "crop_scale",
    "root_relative",
    "flip_clip",
    "resample_indices",
    "select_persons",
    "normalise_persons",
]


@dataclass(frozen=True)
class CropBox:
    """A square box in image units (pixels): ``centre`` (2,) and side length ``size``."""

    centre: np.ndarray
    size: float

    @property
    def scale(self) -> float:
        """Normalised units per image unit (2 / size)."""
        return 2.0 / self.size


def crop_box(xy: np.ndarray, valid: np.ndarray | None = None, ratio: float = 1.0) -> CropBox | None:
    """The square box over the valid keypoints of a clip.

    Args:
        xy: (T, J, 2) keypoints, pixels (any image units).
        valid: (T, J) bool, keypoints to include (default all).
        ratio: side = ratio * max(width, height) of the keypoints' bounding box.
    Returns:
        The CropBox, or None when fewer than 2 keypoints are valid or they span no area.
    """
    pts = xy.reshape(-1, 2) if valid is None else xy[valid]
    if len(pts) < 2:
        return None
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    size = float((hi - lo).max()) * ratio
    if not size > 0:
        return None
    return CropBox(centre=(lo + hi) / 2, size=size)


def normalise_xy(xy: np.ndarray, box: CropBox) -> np.ndarray:
    """(..., 2) pixels -> (..., 2) normalised units (the box maps to [-1, 1])."""
    return (xy - box.centre) * box.scale


def denormalise_xy(xy_norm: np.ndarray, box: CropBox) -> np.ndarray:
    """(..., 2) normalised units -> (..., 2) pixels (inverse of ``normalise_xy``)."""
    return xy_norm / box.scale + box.centre


def normalise_image_3d(joints_image: np.ndarray, box: CropBox) -> np.ndarray:
    """(..., 3) x, y pixels + depth in pixels -> (..., 3) normalised: x, y as ``normalise_xy``, depth * 2 / side."""
    out = np.empty_like(joints_image)
    out[..., :2] = normalise_xy(joints_image[..., :2], box)
    out[..., 2] = joints_image[..., 2] * box.scale
    return out


def crop_scale(keypoints: np.ndarray, ratio: float = 1.0) -> tuple[np.ndarray, CropBox | None]:
    """Normalise a clip of detected keypoints for the encoder (MotionBERT's in-the-wild input).

    Args:
        keypoints: (T, J, 3) x, y pixels + confidence; keypoints with confidence 0 are missing.
        ratio: box side over the keypoints' extent.
    Returns:
        (T, J, 3) normalised x, y (clipped to [-1, 1]) + the unchanged confidence, missing keypoints all zero (as
        the masked joints of MotionBERT's pretext), and the box over the others (None, with all-zero output, when
        the clip holds fewer than two confident keypoints).
    """
    seen = keypoints[..., 2] > 0
    box = crop_box(keypoints[..., :2], seen, ratio)
    out = np.zeros_like(keypoints)
    if box is None:
        return out, None
    out[..., :2] = np.clip(normalise_xy(keypoints[..., :2], box), -1.0, 1.0)
    out[..., 2] = keypoints[..., 2]
    out[~seen] = 0.0
    return out, box


def root_relative(joints: np.ndarray, root: int = 0) -> np.ndarray:
    """(..., J, C) -> the same with joint ``root`` subtracted from every joint (per frame)."""
    return joints - joints[..., root : root + 1, :]


def flip_clip(keypoints: np.ndarray, skeleton: Skeleton = H36M_17) -> np.ndarray:
    """Horizontal flip of normalised keypoints (..., J, C): x -> -x, left/right joints swapped (a copy)."""
    return flip_keypoints(keypoints, skeleton, centre=0.0)


def resample_indices(num_frames: int, clip_len: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``clip_len`` frame indices spread evenly over ``num_frames`` (repeating frames of short sequences).

    The sequence is cut into ``clip_len`` equal bins and one frame is taken per bin: at a uniformly random position
    in the bin with ``rng`` (training), at the bin's middle without (evaluation). Returns (clip_len,) int64.
    """
    width = num_frames / clip_len
    offset = rng.uniform(0.0, width, size=clip_len) if rng is not None else np.full(clip_len, width / 2)
    idx = np.floor(np.arange(clip_len) * width + offset).astype(np.int64)
    return np.clip(idx, 0, num_frames - 1)


def select_persons(keypoints: np.ndarray, max_persons: int) -> np.ndarray:
    """(M, T, J, 3) keypoints -> (max_persons, T, J, 3): the most confident persons (by mean confidence, kept in
    their original order), zero-padded when there are fewer."""
    M = keypoints.shape[0]
    keep = np.sort(np.argsort(-keypoints[..., 2].mean(axis=(1, 2)), kind="stable")[:max_persons])
    out = np.zeros((max_persons, *keypoints.shape[1:]), dtype=keypoints.dtype)
    out[: min(M, max_persons)] = keypoints[keep]
    return out


def normalise_persons(keypoints: np.ndarray, ratio: float = 1.0) -> np.ndarray:
    """(..., T, J, 3) pixels + confidence -> normalised x, y over one square box around every confident keypoint
    (all persons and frames; side = ``ratio`` times their extent); keypoints with confidence 0 (padding, misses)
    become all zero. A clip with fewer than two confident keypoints becomes all zero."""
    conf = keypoints[..., 2]
    out = np.zeros_like(keypoints)
    box = crop_box(keypoints[..., :2], conf > 0, ratio)
    if box is None:
        return out
    out[..., :2] = normalise_xy(keypoints[..., :2], box)
    out[..., 2] = conf
    out[conf <= 0] = 0.0
    return out
