"""The detector's 2D of a rendered training sequence, made ready to pair with the truth: zeros where nobody was
detected, and the left/right mix-ups of the limbs put right against the truth's projection. Pure NumPy; used by
benchmarks/rendered_training.py."""

from __future__ import annotations

import numpy as np


def detector_keypoints(found, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The detector's 2D as written: (n,17,3) float32 pixels + confidence, zeros where nobody was detected (frames
    not ``valid``, interpolated ones included, and joints that are not finite), and (n,) bool detected;
    n = the shorter of ``num_frames`` and the detected sequence (a decoder may drop a trailing frame).

    Args:
        found: a ``KeypointSequence`` (keypoints (T',17,3), valid (T',)), or None when nobody was found.
    """
    if found is None:
        return np.zeros((num_frames, 17, 3), np.float32), np.zeros(num_frames, bool)
    n = min(num_frames, found.num_frames)
    detected = np.asarray(found.valid[:n], bool)
    kp = np.asarray(found.keypoints[:n], np.float64)
    keep = detected[:, None] & np.isfinite(kp).all(-1)  # (n,17)
    out = np.where(keep[..., None], kp, 0.0)
    out[..., 2] = np.clip(out[..., 2], 0.0, 1.0)
    return out.astype(np.float32), detected


SIDES = {"legs": ((1, 2, 3), (4, 5, 6)), "arms": ((11, 12, 13), (14, 15, 16))}  # H36M-17 right, left


def unswap_sides(keypoints: np.ndarray, truth_px: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The detector's 2D with its left/right mix-ups undone, per frame and per limb pair (legs, arms).

    A render has no face or hair to tell front from back, so seen from behind the detector often swaps the sides; a
    lifter cannot learn the truth from such frames (the swapped 2D is that of a mirrored body facing the camera), so
    they are put right: where the pair's three joints on each side, exchanged, are nearer the truth's projection
    (mean pixel distance over the joints both sides detected) than as detected, the sides (with their
    confidences) are exchanged.

    Args:
        keypoints: (T,17,3) detector x, y pixels + confidence, confidence 0 where missed.
        truth_px: (T,17,2) the true joints projected through the same camera, pixels.
    Returns:
        (T,17,3) keypoints, and per limb pair name the (T,) bool frames that were exchanged.
    """
    out = keypoints.copy()
    swapped = {}
    for part, (right, left) in SIDES.items():
        r, l = list(right), list(left)
        seen = (keypoints[:, r, 2] > 0) & (keypoints[:, l, 2] > 0)  # (T,3): both sides detected
        as_detected = _side_distance(keypoints, truth_px, r, r, seen) + _side_distance(keypoints, truth_px, l, l, seen)
        exchanged = _side_distance(keypoints, truth_px, r, l, seen) + _side_distance(keypoints, truth_px, l, r, seen)
        f = seen.any(1) & (exchanged < as_detected)
        out[np.ix_(f, r)], out[np.ix_(f, l)] = keypoints[np.ix_(f, l)], keypoints[np.ix_(f, r)]
        swapped[part] = f
    return out, swapped


def _side_distance(keypoints: np.ndarray, truth_px: np.ndarray, a: list[int], b: list[int], seen: np.ndarray):
    """(T,) mean pixel distance of the detected joints ``a`` to the true joints ``b`` over the ``seen`` (T,3) ones."""
    d = np.linalg.norm(keypoints[:, a, :2] - truth_px[:, b], axis=-1) * seen
    return d.sum(1) / np.maximum(seen.sum(1), 1)
