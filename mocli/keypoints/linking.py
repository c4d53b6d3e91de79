"""From a multi-person detector's per-frame detections to numbered people: track, drop flickers, rejoin tracks broken
by longer detector misses, number by first appearance. Pure numpy on ``mocli.keypoints.tracking``'s tracker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from mocli.keypoints.base import Detection
from mocli.keypoints.tracking import Track, _areas, _centre, _velocity, track_detections

__all__ = ["link_people", "relink_tracks"]

log = logging.getLogger(__name__)


def _end_state(track: Track, first: bool, window: int = 5) -> tuple[np.ndarray, float, np.ndarray]:
    """Pose centre (2,) px, size (median sqrt of box area over ``window`` detections) px, and velocity (2,) px per
    frame (zero at the start) at the start (``first``) or the end of a track."""
    dets = track.detections[:window] if first else track.detections[-window:]
    size = float(np.nanmedian(np.sqrt(_areas(np.stack([d.box for d in dets])))))
    velocity = np.zeros(2) if first else np.nan_to_num(_velocity(track, window))
    return _centre(dets[0 if first else -1].keypoints), size, velocity


def relink_tracks(
    tracks: Sequence[Track],
    fps: float,
    max_gap_s: float = 2.0,
    max_speed: float = 3.0,
    margin: float = 0.5,
    max_size_ratio: float = 2.0,
    size_weight: float = 0.0,
) -> list[Track]:
    """Join tracks of one person broken by a longer detector miss (a jump, an occlusion) than the tracker bridges.

    Track B can continue track A when B starts after A ends, within ``max_gap_s`` seconds, with a size within
    ``max_size_ratio`` x A's, and its cost ``distance / allowed distance + size_weight x log(size ratio) /
    log(max_size_ratio)`` is at most 1: the distance from A's last pose centre, or from where A's last velocity
    would have taken it, to B's first one; the allowed distance (``margin`` + ``max_speed`` x gap seconds) x size;
    the size ratio the larger over the smaller of the two ends' median sqrt box area (size = the larger). The gap
    is counted from A's last frame to B's first. Tracks that coexist in any frame are never joined. Each track
    continues at most one and is continued by at most one: going through the starts in time order, each joins the
    free end of least cost, so a person broken several times is joined piece by piece.

    ``size_weight`` 1 suits short gaps: a body's sqrt box area changes little within a few frames, even when it
    bends or lies down, so a piece of another person (one who hid behind a crosser and shows again where the
    crosser was lost) that starts near the end but at another size is not taken, and the nearer the allowed
    distance, the closer the sizes must be. Over a longer miss the size may change more (a jump off a box).

    Args:
        tracks: tracks with increasing frames (e.g. from ``track_detections``).
        fps: frames per second, to turn frames into seconds.
    Returns:
        The joined tracks (each keeps the id of its first part), ordered by first frame; the inputs are not modified.
    """
    ends = [_end_state(t, first=False) for t in tracks]
    starts = [_end_state(t, first=True) for t in tracks]
    candidates = []
    for a, track_a in enumerate(tracks):
        for b, track_b in enumerate(tracks):
            gap = track_b.frames[0] - track_a.frames[-1]
            if a == b or gap <= 0 or gap > max_gap_s * fps + 1:
                continue
            (end, size_a, velocity), (start, size_b, _) = ends[a], starts[b]
            ratio = max(size_a, size_b) / max(min(size_a, size_b), 1e-6)
            if not ratio <= max_size_ratio:
                continue
            dist = min(np.linalg.norm(start - end), np.linalg.norm(start - (end + velocity * gap)))
            allowed = (margin + max_speed * gap / fps) * max(size_a, size_b)
            cost = dist / allowed + size_weight * np.log(ratio) / np.log(max_size_ratio)
            if cost <= 1.0:
                candidates.append((track_b.frames[0], cost, a, b))
    after: dict[int, int] = {}
    before: dict[int, int] = {}
    for _, _, a, b in sorted(candidates):  # starts in time order, each taking the end of least cost still free
        if a not in after and b not in before:
            after[a], before[b] = b, a
    joined = []
    for a, track in enumerate(tracks):
        if a in before:
            continue
        whole = Track(track_id=track.track_id, frames=list(track.frames), detections=list(track.detections))
        while a in after:
            a = after[a]
            whole.frames += tracks[a].frames
            whole.detections += tracks[a].detections
        joined.append(whole)
    if len(joined) < len(tracks):
        log.debug("relinked %d broken tracks into %d", len(tracks), len(joined))
    return sorted(joined, key=lambda t: (t.frames[0], t.track_id))


SHORT_GAP_S = 0.2  # seconds: pieces of a track this close in time are joined before short tracks are dropped


def link_people(
    per_frame: Sequence[Sequence[Detection]],
    min_frames: int = 5,
    fps: float = 30.0,
    max_link_gap_s: float = 2.0,
    **tracker: float,
) -> tuple[list[list[Detection]], list[Track]]:
    """Identities for a multi-person detector's output: track, drop flickers, rejoin broken tracks, number the
    people 1, 2, ...

    Three steps: pieces of one track broken across at most ``SHORT_GAP_S`` (a person moving faster between frames
    than the tracker follows) are joined (``relink_tracks``, sizes weighed in: ``size_weight`` 1); tracks then seen
    in fewer than ``min_frames`` frames (false positives, a pose found for a frame or two) are dropped, unless
    every track is that short (then the longest one is kept); the kept tracks broken by a detector miss of up to
    ``max_link_gap_s`` seconds are joined (0 turns both joins off). A short piece is never joined across a long
    gap: alone it says too little about who it was. The kept people are numbered 1, 2, ... in order of first appearance.

    Args:
        per_frame: for each of the T frames, the detections in it.
        min_frames: shortest track kept.
        fps: frames per second of the video.
        max_link_gap_s: longest miss, in seconds, across which tracks are joined.
        tracker: keyword arguments of ``track_detections``.
    Returns:
        (T lists of copies of the kept detections with ``track_id`` set, the kept tracks).
    """
    tracks = track_detections(per_frame, **tracker)
    if max_link_gap_s > 0:
        tracks = relink_tracks(tracks, fps, max_gap_s=min(SHORT_GAP_S, max_link_gap_s), size_weight=1.0)
    kept = [t for t in tracks if t.num_frames >= min_frames]
    if tracks and not kept:
        kept = [max(tracks, key=lambda t: (t.num_frames, -t.track_id))]
    if max_link_gap_s > 0:
        kept = relink_tracks(kept, fps, max_gap_s=max_link_gap_s)
    kept.sort(key=lambda t: (t.frames[0], t.track_id))
    out: list[list[Detection]] = [[] for _ in per_frame]
    linked = []
    for new_id, track in enumerate(kept, start=1):
        copy = Track(track_id=new_id)
        for frame, det in zip(track.frames, track.detections, strict=True):
            copy.add(frame, replace(det, track_id=new_id))
            out[frame].append(copy.detections[-1])
        linked.append(copy)
    return out, linked
