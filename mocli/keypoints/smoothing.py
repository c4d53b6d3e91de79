"""Temporal smoothing of tracked keypoints: the One-Euro filter of MediaPipe's legacy pose solution, per track.

MediaPipe's single-person solution smooths its landmarks with a One-Euro filter (Casiez et al., CHI 2012) whose
speed term is measured in object sizes per second, so the same settings suit a person of any size in the image
(``LandmarksSmoothingCalculator``, ``pose_landmark_filtering.pbtxt``): image landmarks use min_cutoff 0.05 Hz,
beta 80, derivative cutoff 1 Hz, the speed divided by the object scale ((width + height) / 2 of the landmarks' box,
pixels); world landmarks (metres) use min_cutoff 0.1 Hz, beta 40, no scaling. As there, the speed is the change of
the raw input between frames, and the filter restarts after every frame without the person. ``smooth_tracks`` does
the same for each identity of a multi-person detector's output after linking; confidences are left as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from mocli.keypoints.base import Detection

__all__ = ["OneEuro", "IMAGE_FILTER", "WORLD_FILTER", "alpha", "one_euro", "object_scale", "smooth_tracks"]


@dataclass(frozen=True)
class OneEuro:
    """One-Euro settings: cutoff = ``min_cutoff`` + ``beta`` x |smoothed speed| (Hz), speed in units per second
    (object sizes per second when the values are scaled); ``d_cutoff`` (Hz) smooths the speed itself."""

    min_cutoff: float
    beta: float
    d_cutoff: float = 1.0


IMAGE_FILTER = OneEuro(min_cutoff=0.05, beta=80.0)  # pixel landmarks, speed in object scales per second
WORLD_FILTER = OneEuro(min_cutoff=0.1, beta=40.0)  # world landmarks, speed in metres per second


def alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray:
    """Weight of the new sample in an exponential smoother with this cutoff (Hz) at ``fps`` samples per second:
    1 / (1 + tau / te), tau = 1 / (2 pi cutoff), te = 1 / fps."""
    return 1.0 / (1.0 + fps / (2.0 * np.pi * np.asarray(cutoff, dtype=np.float64)))


def one_euro(
    values: np.ndarray,
    valid: np.ndarray,
    fps: float,
    settings: OneEuro = IMAGE_FILTER,
    scale: np.ndarray | None = None,
) -> np.ndarray:
    """Filter a sequence with the One-Euro filter, every element on its own.

    Per element: speed = (x_t - x_{t-1}) / scale_t x fps (raw inputs), smoothed with alpha(d_cutoff); output
    y_t = y_{t-1} + alpha(min_cutoff + beta |smoothed speed|) (x_t - y_{t-1}). The filter restarts (y_t = x_t,
    smoothed speed 0) at the first frame, after every invalid frame and after a non-finite value of that element.

    Args:
        values: (T, ...) float, e.g. (T, J, 2) pixels.
        valid: (T,) bool; invalid frames are returned unchanged and restart the filter.
        fps: frames per second of the sequence.
        settings: the filter's cutoffs.
        scale: (T,) object size per frame in the units of ``values`` (e.g. ``object_scale``), dividing the speed;
            None: no scaling. A frame whose scale is not finite and positive is treated as invalid.
    Returns:
        (T, ...) float64 filtered values; NaN wherever the input is NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != x.shape[:1]:
        raise ValueError(f"valid must be ({x.shape[0]},), got {valid.shape}")
    if scale is not None:
        scale = np.asarray(scale, dtype=np.float64)
        valid = valid & np.isfinite(scale) & (scale > 0)
    out = x.copy()
    a_d = alpha(settings.d_cutoff, fps)
    started = np.zeros(x.shape[1:], dtype=bool)
    raw = np.zeros(x.shape[1:])  # previous raw input
    smooth = np.zeros(x.shape[1:])  # previous output
    speed = np.zeros(x.shape[1:])  # smoothed speed
    for t in range(len(x)):
        ok = np.isfinite(x[t]) & valid[t]
        cont = ok & started
        inv_scale = 1.0 if scale is None else 1.0 / scale[t]
        step = np.where(cont, x[t] - raw, 0.0) * inv_scale * fps
        speed = np.where(cont, speed + a_d * (step - speed), 0.0)
        a = alpha(settings.min_cutoff + settings.beta * np.abs(speed), fps)
        smooth = np.where(cont, smooth + a * (np.where(ok, x[t], 0.0) - smooth), np.where(ok, x[t], 0.0))
        out[t] = np.where(ok, smooth, x[t])
        raw = np.where(ok, x[t], 0.0)
        started = ok
    return out


def object_scale(keypoints: np.ndarray) -> np.ndarray:
    """(width + height) / 2 of the box around each pose's finite keypoints, as MediaPipe's smoother scales speeds.

    Args:
        keypoints: (T, J, >=2) pixels (extra channels ignored).
    Returns:
        (T,) pixels; NaN for a pose without a finite keypoint.
    """
    xy = np.asarray(keypoints, dtype=np.float64)[..., :2]
    finite = np.isfinite(xy).all(-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        lo = np.where(finite, xy, np.inf).min(axis=1)
        hi = np.where(finite, xy, -np.inf).max(axis=1)
        size = ((hi - lo).sum(-1)) / 2.0
    return np.where(finite.any(axis=(1, 2)), size, np.nan)


def smooth_tracks(
    per_frame: Sequence[Sequence[Detection]],
    fps: float,
    image: OneEuro = IMAGE_FILTER,
    world: OneEuro = WORLD_FILTER,
    world_key: str = "world_landmarks33",
) -> list[list[Detection]]:
    """One-Euro smoothing of every identity's keypoints x, y (and ``extras[world_key]`` if present) over time.

    Each track (``Detection.track_id``, set by the tracker) is filtered on its own; frames where it is missing
    restart its filter. Confidences, boxes, scores and other extras are kept as they are.

    Args:
        per_frame: T lists of detections with ``track_id`` set; keypoints (J, 3) pixels + confidence.
        fps: frames per second of the video.
    Returns:
        T lists of new detections (same order); the input is not modified.
    Raises:
        ValueError: a detection has no track id.
    """
    out = [list(frame) for frame in per_frame]
    where: dict[int, list[tuple[int, int]]] = {}
    for t, frame in enumerate(per_frame):
        for i, det in enumerate(frame):
            if det.track_id is None:
                raise ValueError(f"frame {t}: detection without a track id; link the people first")
            where.setdefault(det.track_id, []).append((t, i))
    num_frames = len(per_frame)
    for places in where.values():
        frames = np.array([t for t, _ in places])
        dets = [per_frame[t][i] for t, i in places]
        valid = np.zeros(num_frames, dtype=bool)
        valid[frames] = True
        kp = np.full((num_frames, *dets[0].keypoints.shape), np.nan)
        kp[frames] = np.stack([d.keypoints for d in dets])
        xy = one_euro(kp[..., :2], valid, fps, image, scale=object_scale(kp))
        smoothed_world = None
        if all(world_key in d.extras for d in dets):
            w = np.full((num_frames, *dets[0].extras[world_key].shape), np.nan)
            w[frames] = np.stack([d.extras[world_key] for d in dets])
            smoothed_world = one_euro(w, valid, fps, world)
        for (t, i), det in zip(places, dets, strict=True):
            keypoints = det.keypoints.copy()
            keypoints[:, :2] = xy[t]
            extras = dict(det.extras)
            if smoothed_world is not None:
                extras[world_key] = smoothed_world[t].astype(np.float32)
            out[t][i] = replace(det, keypoints=keypoints, extras=extras)
    return out
