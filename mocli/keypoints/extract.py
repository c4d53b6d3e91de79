"""Video -> 2D keypoint sequences: decode frames as a stream, detect people, track, convert to H36M-17."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mocli.errors import InputError
from mocli.keypoints.base import Detection, Detector
from mocli.keypoints.linking import link_people
from mocli.keypoints.sequence import KeypointSequence, build_sequences
from mocli.keypoints.smoothing import smooth_tracks
from mocli.keypoints.tracking import PersonSelector
from mocli.utils.native_logs import native_stderr_muted
from mocli.video import probe_video, read_frames

__all__ = ["PeopleFound", "detect_video", "extract_people", "extract_keypoints"]

MIN_TRACK_FRAMES = 5  # shorter tracks of a multi-person detector are flickers, not people
MAX_LINK_GAP_S = 2.0  # tracks of one person broken by a detector miss up to this long (seconds) are joined

log = logging.getLogger(__name__)


def detect_video(
    path: str | Path,
    detector: Detector,
    max_frames: int | None = None,
    on_frame: Callable[[], None] | None = None,
) -> list[list[Detection]]:
    """Run ``detector`` on every decoded frame; only the detections are kept, so memory is flat in video length.

    A detector with ``mutes_native_logs`` runs with its native library's fd-2 logging muted (``native_stderr_muted``).

    Returns:
        T lists of detections, T = the number of frames decoded (frames without people give empty lists).
    """
    per_frame = []
    with native_stderr_muted() if getattr(detector, "mutes_native_logs", False) else contextlib.nullcontext():
        for frame in read_frames(path, max_frames=max_frames):
            per_frame.append(detector.detect(frame))
            if on_frame is not None:
                on_frame()
    return per_frame


@dataclass
class PeopleFound:
    """The people of a video and the ones selected.

    Attributes:
        sequences: one H36M-17 sequence per selected person (``KeypointSequence``, keypoints (T, 17, 3) pixels).
        tracks: every person tracked: {"id", "frames" (detected), "first_frame", "last_frame", "mean_box_px2"}.
        selected: the track ids of ``sequences``, in order.
        selection: how they were chosen: "largest (most frames x size)", "all" or "track id".
    """

    sequences: list[KeypointSequence]
    tracks: list[dict]
    selected: list[int]
    selection: str


def _track_table(per_frame: list[list[Detection]]) -> list[dict]:
    """Summary rows of the identities in ``per_frame`` (detections with ``track_id`` set)."""
    rows: dict[int, dict] = {}
    for frame, detections in enumerate(per_frame):
        for det in detections:
            row = rows.setdefault(
                det.track_id, {"id": int(det.track_id), "frames": 0, "first_frame": frame, "area": 0.0}
            )
            w, h = float(det.box[2] - det.box[0]), float(det.box[3] - det.box[1])
            row["frames"] += 1
            row["last_frame"] = frame
            row["area"] += max(w, 0.0) * max(h, 0.0) if w == w and h == h else 0.0
    return [
        {k: v for k, v in r.items() if k != "area"} | {"mean_box_px2": round(r["area"] / r["frames"], 1)}
        for _, r in sorted(rows.items())
    ]


def extract_people(
    path: str | Path,
    detector: Detector,
    *,
    person: PersonSelector = "largest",
    max_gap: int = 10,
    max_frames: int | None = None,
    on_frame: Callable[[], None] | None = None,
) -> PeopleFound:
    """2D keypoints of the selected people of a video, with the list of everyone tracked.

    A multi-person detector's detections are linked into people by mocli's tracker (``link_people``: tracks shorter
    than ``MIN_TRACK_FRAMES`` frames dropped, tracks broken by misses of up to ``MAX_LINK_GAP_S`` joined, people
    numbered 1, 2, ... by first appearance); a single-person detector's form one track. A detector with
    ``smooth_tracks = True`` then has each person's keypoints smoothed over time (``smooth_tracks``).

    Args:
        path: a video file.
        detector: a ``Detector`` (see ``mocli.keypoints.create_detector``).
        person: ``"largest"`` (the main subject: most frames x box size), ``"all"`` or a track id.
        max_gap: interpolate runs of up to this many frames where the person was not detected.
        max_frames: decode only the first frames (quick checks).
        on_frame: called after each frame (progress bars).
    Raises:
        InputError: unreadable or empty video, nobody detected, unknown track id.
    """
    path = Path(path)
    info = probe_video(path)
    per_frame = detect_video(path, detector, max_frames=max_frames, on_frame=on_frame)
    if not any(per_frame):
        raise InputError(f"no person detected in {path} ({len(per_frame)} frames)")
    log.debug("%s: %d frames, people detected in %d", path, len(per_frame), sum(bool(d) for d in per_frame))
    if detector.multi_person and not all(d.track_id is not None for frame in per_frame for d in frame):
        per_frame, _ = link_people(per_frame, min_frames=MIN_TRACK_FRAMES, fps=info.fps, max_link_gap_s=MAX_LINK_GAP_S)
        if getattr(detector, "smooth_tracks", False):
            per_frame = smooth_tracks(per_frame, fps=info.fps)
    sequences = build_sequences(
        per_frame,
        skeleton=detector.skeleton,
        image_size=info.image_size,
        fps=info.fps,
        source=detector.name,
        video=str(path),
        person=person,
        max_gap=max_gap,
        multi_person=detector.multi_person,
    )
    if detector.multi_person:
        tracks = _track_table(per_frame)
    else:
        present = [f for f, d in enumerate(per_frame) if d]
        tracks = [{"id": 1, "frames": len(present), "first_frame": present[0], "last_frame": present[-1]}]
    selection = {"largest": "largest (most frames x size)", "all": "all"}.get(person, "track id")  # type: ignore[arg-type]
    return PeopleFound(sequences, tracks, [int(s.track_id) for s in sequences], selection)


def extract_keypoints(
    path: str | Path,
    detector: Detector,
    *,
    person: PersonSelector = "largest",
    max_gap: int = 10,
    max_frames: int | None = None,
    on_frame: Callable[[], None] | None = None,
) -> list[KeypointSequence]:
    """2D keypoints of the selected people of a video (``extract_people`` without the list of tracks).

    Returns:
        One sequence per selected person: keypoints (T, 17, 3) pixels + confidence, T = decoded frames.
    Raises:
        InputError: unreadable or empty video, nobody detected, unknown track id.
    """
    return extract_people(
        path, detector, person=person, max_gap=max_gap, max_frames=max_frames, on_frame=on_frame
    ).sequences
