"""Multi-person tracking, track selection and gap filling: pure numpy (plus scipy's assignment solver).

Per-frame detections become tracks (one identity each) by matching every frame's detections to the tracks' predicted
positions (constant velocity) with the Hungarian algorithm on a similarity that mixes box IoU and an OKS-like
keypoint similarity (``mocli.keypoints.linking`` adds flicker removal and the joining of tracks broken by longer
misses). Short gaps in a track are filled by linear interpolation; long ones stay missing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from mocli.errors import InputError
from mocli.keypoints.base import Detection

__all__ = [
    "Track",
    "PersonSelector",
    "iou_matrix",
    "keypoint_similarity",
    "track_detections",
    "group_by_track_id",
    "single_track",
    "select_tracks",
    "parse_person",
    "StackedTrack",
    "stack_track",
    "fill_gaps",
]

log = logging.getLogger(__name__)

PersonSelector = str | int  # "largest", "all", or a track id


@dataclass
class Track:
    """One identity: the frames it was detected in (increasing) and its detection in each of them."""

    track_id: int
    frames: list[int] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)

    def add(self, frame: int, detection: Detection) -> None:
        self.frames.append(frame)
        self.detections.append(detection)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def total_area(self) -> float:
        """Sum of box areas over the frames present (= mean box area x frames present), in pixels^2."""
        boxes = np.stack([d.box for d in self.detections])
        areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
        return float(np.nansum(areas))


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair of boxes.

    Args:
        boxes_a: (N, 4) x1, y1, x2, y2.
        boxes_b: (M, 4) x1, y1, x2, y2.
    Returns:
        (N, M) IoU in [0, 1]; 0 where a box is NaN or empty.
    """
    a = boxes_a[:, None, :]
    b = boxes_b[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.nan_to_num(iou, nan=0.0)


def keypoint_similarity(
    kp_a: np.ndarray, kp_b: np.ndarray, scale: np.ndarray, kappa: float = 0.1, min_conf: float = 0.1
) -> np.ndarray:
    """OKS-like similarity of every pair of poses: mean over shared joints of exp(-d^2 / (2 (kappa * scale)^2)).

    Args:
        kp_a: (N, J, 3) pixels + confidence.
        kp_b: (M, J, 3) pixels + confidence.
        scale: (N,) size of each pose in ``kp_a`` in pixels (e.g. the square root of its box area).
        kappa: tolerance as a fraction of the scale.
        min_conf: joints at or below this confidence in either pose are ignored.
    Returns:
        (N, M) similarity in [0, 1]; 0 for pairs without a shared confident joint.
    """
    d2 = ((kp_a[:, None, :, :2] - kp_b[None, :, :, :2]) ** 2).sum(-1)  # (N, M, J)
    shared = (kp_a[:, None, :, 2] > min_conf) & (kp_b[None, :, :, 2] > min_conf) & np.isfinite(d2)
    sigma2 = (kappa * np.maximum(scale, 1.0)) ** 2
    sim = np.exp(-np.where(shared, d2, 0.0) / (2 * sigma2[:, None, None]))
    count = shared.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (sim * shared).sum(-1) / count, 0.0)


def _centre(keypoints: np.ndarray, min_conf: float = 0.3) -> np.ndarray:
    """(2,) median x, y of the confident, finite keypoints of a (J, 3) pose (all finite ones if none is confident)."""
    ok = np.isfinite(keypoints[:, :2]).all(axis=1)
    use = ok & (keypoints[:, 2] > min_conf)
    use = use if use.any() else ok
    return np.median(keypoints[use, :2], axis=0) if use.any() else np.zeros(2)


def _velocity(track: Track, window: int) -> np.ndarray:
    """(2,) pixels per frame: median over the track's last ``window`` detections of the frame-to-frame velocity of
    the pose centre.

    The median keypoint moves with the body, not with a limb or a box edge, and the median over several steps
    ignores one bad pose, so detector jitter does not throw the prediction off.
    """
    if track.num_frames < 2:
        return np.zeros(2)
    first = max(0, track.num_frames - window)
    centres = np.stack([_centre(d.keypoints) for d in track.detections[first:]])
    steps = np.diff(np.asarray(track.frames[first:], dtype=np.float64))[:, None]
    return np.median(np.diff(centres, axis=0) / steps, axis=0)


def _predict(track: Track, frame: int, window: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Constant-velocity guess of a track's box (4,) and keypoints (J, 3) at ``frame``: its last detection moved by
    the velocity of its pose centre over the last ``window`` detections (``_velocity``)."""
    last = track.detections[-1]
    box, kp = last.box.copy(), last.keypoints.copy()
    shift = np.nan_to_num(_velocity(track, window)) * (frame - track.frames[-1])
    box += np.tile(shift, 2)
    kp[:, :2] += shift
    return box, kp


def _similarity(tracks: list[Track], frame: int, detections: Sequence[Detection], iou_weight: float) -> np.ndarray:
    """(N_tracks, N_detections) similarity in [0, 1] of predicted track positions and this frame's detections."""
    predicted = [_predict(t, frame) for t in tracks]
    pred_boxes = np.stack([p[0] for p in predicted])
    pred_kp = np.stack([p[1] for p in predicted])
    det_boxes = np.stack([d.box for d in detections])
    det_kp = np.stack([d.keypoints for d in detections])
    # The longer a track has been unseen, the less sure its predicted position: widen the keypoint tolerance by
    # 10 % per missed frame, up to 3 x.
    missed = np.array([frame - t.frames[-1] - 1 for t in tracks], dtype=np.float64)
    scale = np.sqrt(np.nan_to_num(_areas(pred_boxes), nan=1.0)) * np.minimum(1.0 + 0.1 * missed, 3.0)
    iou = iou_matrix(pred_boxes, det_boxes)
    oks = keypoint_similarity(pred_kp, det_kp, scale)
    return iou_weight * iou + (1 - iou_weight) * oks


def _areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def track_detections(
    per_frame: Sequence[Sequence[Detection]],
    min_similarity: float = 0.2,
    max_age: int = 30,
    iou_weight: float = 0.5,
) -> list[Track]:
    """Link detections across frames into identities.

    Each frame, tracks seen within the last ``max_age`` frames are matched one-to-one to the detections
    (Hungarian assignment maximising ``iou_weight * IoU + (1 - iou_weight) * keypoint similarity`` against the
    track's constant-velocity prediction); pairs below ``min_similarity`` are not matched. Unmatched detections start
    new tracks, numbered 1, 2, ... in order of appearance.

    Args:
        per_frame: for each of the T frames, the detections in it (any order).
    Returns:
        The tracks, by id.
    """
    tracks: list[Track] = []
    for frame, detections in enumerate(per_frame):
        if not detections:
            continue
        active = [t for t in tracks if frame - t.frames[-1] <= max_age]
        matched: set[int] = set()
        if active:
            sim = _similarity(active, frame, detections, iou_weight)
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols, strict=True):
                if sim[r, c] >= min_similarity:
                    active[r].add(frame, detections[c])
                    matched.add(c)
        for c, det in enumerate(detections):
            if c not in matched:
                tracks.append(Track(track_id=len(tracks) + 1))
                tracks[-1].add(frame, det)
    return tracks


def group_by_track_id(per_frame: Sequence[Sequence[Detection]]) -> list[Track]:
    """Tracks from identities given by the source (``Detection.track_id``, e.g. AlphaPose's ``idx``).

    Returns:
        The tracks sorted by id.
    Raises:
        ValueError: a detection has no track id, or one id appears twice in a frame.
    """
    by_id: dict[int, Track] = {}
    for frame, detections in enumerate(per_frame):
        for det in detections:
            if det.track_id is None:
                raise ValueError(f"frame {frame}: detection without a track id")
            track = by_id.setdefault(det.track_id, Track(track_id=det.track_id))
            if track.frames and track.frames[-1] == frame:
                raise ValueError(f"frame {frame}: track id {det.track_id} appears twice")
            track.add(frame, det)
    return [by_id[k] for k in sorted(by_id)]


def single_track(per_frame: Sequence[Sequence[Detection]], track_id: int = 1) -> list[Track]:
    """All detections as one identity (single-person detectors); the best-scoring detection of a frame is kept.

    Returns:
        [] when no frame has a detection, else one track.
    """
    track = Track(track_id=track_id)
    for frame, detections in enumerate(per_frame):
        if detections:
            track.add(frame, max(detections, key=lambda d: d.score))
    return [track] if track.num_frames else []


def parse_person(value: str) -> PersonSelector:
    """``"largest"``, ``"all"`` or a track id given as an integer string."""
    value = value.strip().lower()
    if value in ("largest", "all"):
        return value
    try:
        return int(value)
    except ValueError:
        raise InputError(f"--person must be largest, all or a track id (an integer), not {value!r}") from None


def select_tracks(tracks: Sequence[Track], person: PersonSelector) -> list[Track]:
    """Pick the tracks to write.

    Args:
        person: ``"largest"``: the track with the greatest mean box area x frames present (ties: lowest id);
            ``"all"``: every track, by id; an int: the track with that id.
    Raises:
        InputError: no tracks, or no track with the requested id.
    """
    if not tracks:
        raise InputError("no person detected")
    if person == "all":
        return sorted(tracks, key=lambda t: t.track_id)
    if person == "largest":
        main = max(sorted(tracks, key=lambda t: t.track_id), key=lambda t: t.total_area)
        if len(tracks) > 1:
            log.info(
                "%d people tracked; the main subject (most frames x size) is track %d (%d frames); "
                "--person all writes every track",
                len(tracks), main.track_id, main.num_frames,
            )  # fmt: skip
        return [main]
    for track in tracks:
        if track.track_id == person:
            return [track]
    ids = ", ".join(str(t.track_id) for t in sorted(tracks, key=lambda t: t.track_id))
    raise InputError(f"no person with track id {person} (track ids: {ids})")


@dataclass
class StackedTrack:
    """A track as dense arrays over all T frames; frames without the person are NaN (confidence 0)."""

    keypoints: np.ndarray  # (T, J, 3) pixels + confidence, the detector's layout
    boxes: np.ndarray  # (T, 4) x1, y1, x2, y2 pixels
    valid: np.ndarray  # (T,) bool, detected in that frame
    extras: dict[str, np.ndarray]  # name -> (T, ...) float32


def stack_track(track: Track, num_frames: int) -> StackedTrack:
    """Dense (T, ...) arrays of a track; missing frames get NaN coordinates and confidence 0."""
    first = track.detections[0]
    kp = np.full((num_frames, *first.keypoints.shape), np.nan, dtype=np.float32)
    kp[..., 2] = 0.0
    boxes = np.full((num_frames, 4), np.nan, dtype=np.float32)
    valid = np.zeros(num_frames, dtype=bool)
    extras = {k: np.full((num_frames, *v.shape), np.nan, dtype=np.float32) for k, v in first.extras.items()}
    for frame, det in zip(track.frames, track.detections, strict=True):
        kp[frame], boxes[frame], valid[frame] = det.keypoints, det.box, True
        for k, v in det.extras.items():
            if k in extras:
                extras[k][frame] = v
    return StackedTrack(keypoints=kp, boxes=boxes, valid=valid, extras=extras)


def _gaps(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of False in a (T,) bool array."""
    edges = np.diff(np.concatenate([[1], valid.astype(np.int8), [1]]))
    return list(zip(np.flatnonzero(edges == -1), np.flatnonzero(edges == 1), strict=True))


def fill_gaps(
    values: np.ndarray, valid: np.ndarray, max_gap: int, conf: bool = True, conf_scale: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate runs of up to ``max_gap`` invalid frames between two valid ones.

    Args:
        values: (T, ...) float; with ``conf`` the last channel is a confidence (e.g. (T, J, 3) pixels + confidence).
        valid: (T,) bool, frames with a detection.
        max_gap: longest run of invalid frames to fill; longer runs, and runs at the start or end, are left alone.
        conf: whether the last channel is a confidence; interpolated confidence = ``conf_scale`` x the minimum of
            the two neighbouring frames' confidences (per joint).
    Returns:
        (filled values, (T,) bool mask of the interpolated frames). Input arrays are not modified.
    """
    out = values.copy()
    interpolated = np.zeros(len(valid), dtype=bool)
    for start, end in _gaps(valid):
        if start == 0 or end == len(valid) or end - start > max_gap:
            continue
        left, right = values[start - 1], values[end]
        w = ((np.arange(start, end) - (start - 1)) / (end - (start - 1))).reshape(-1, *([1] * left.ndim))
        out[start:end] = (1 - w) * left + w * right
        if conf:
            low = conf_scale * np.minimum(left[..., -1], right[..., -1])
            out[start:end, ..., -1] = np.where(np.isnan(out[start:end, ..., :-1]).any(-1), 0.0, low)
        interpolated[start:end] = True
    return out, interpolated
