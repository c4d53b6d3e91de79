"""Video -> 2D keypoint sequences: decode frames as a stream, detect people, track, convert to H36M-17."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from mocli.errors import InputError
from mocli.keypoints.base import Detection, Detector
from mocli.keypoints.sequence import KeypointSequence, build_sequences
from mocli.keypoints.tracking import PersonSelector
from mocli.utils.native_logs import native_stderr_muted
from mocli.video import probe_video, read_frames

__all__ = ["detect_video", "extract_keypoints"]

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


def extract_keypoints(
    path: str | Path,
    detector: Detector,
    *,
    person: PersonSelector = "largest",
    max_gap: int = 10,
    max_frames: int | None = None,
    on_frame: Callable[[], None] | None = None,
) -> list[KeypointSequence]:
    """2D keypoints of the selected people of a video.

    Args:
        path: a video file.
        detector: a ``Detector`` (see ``mocli.keypoints.create_detector``).
        person: ``"largest"``, ``"all"`` or a track id.
        max_gap: interpolate runs of up to this many frames where the person was not detected.
        max_frames: decode only the first frames (quick checks).
        on_frame: called after each frame (progress bars).
    Returns:
        One sequence per selected person: keypoints (T, 17, 3) pixels + confidence, T = decoded frames.
    Raises:
        InputError: unreadable or empty video, nobody detected, unknown track id.
    """
    path = Path(path)
    info = probe_video(path)
    per_frame = detect_video(path, detector, max_frames=max_frames, on_frame=on_frame)
    if not any(per_frame):
        raise InputError(f"no person detected in {path} ({len(per_frame)} frames)")
    log.debug("%s: %d frames, people detected in %d", path, len(per_frame), sum(bool(d) for d in per_frame))
    return build_sequences(
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
