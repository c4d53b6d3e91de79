"""The detector interface: one frame in, the people found in it out.

A backend (MediaPipe, YOLO, mmpose) wraps a third-party model behind ``Detector.detect``. It reports keypoints in
its own joint layout, named by ``Detector.skeleton`` (a name in ``mocli.skeleton.SKELETONS``); conversion to H36M-17
happens later, once per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Detection", "Detector", "box_from_keypoints"]


@dataclass
class Detection:
    """One person in one frame.

    Attributes:
        keypoints: (J, 3) float32: x, y in pixels of the full frame, then a confidence in [0, 1], in the
            backend's joint layout.
        box: (4,) float32 person box x1, y1, x2, y2 in pixels.
        score: detection confidence in [0, 1].
        track_id: identity given by the source (a tool's own tracker), or None to let mocli track.
        extras: per-detection arrays kept alongside, e.g. MediaPipe's ``world_landmarks33`` (33, 3) metres.
    """

    keypoints: np.ndarray
    box: np.ndarray
    score: float
    track_id: int | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        self.box = np.asarray(self.box, dtype=np.float32).reshape(4)
        if self.keypoints.ndim != 2 or self.keypoints.shape[1] != 3:
            raise ValueError(f"Detection.keypoints must be (J, 3), got {self.keypoints.shape}")


@runtime_checkable
class Detector(Protocol):
    """A 2D pose detector for single frames.

    Attributes:
        name: registry name, written to the npz as ``source``.
        skeleton: joint layout of ``Detection.keypoints`` (``"coco"``, ``"halpe"``, ``"mediapipe"``, ...).
        multi_person: whether one frame can give several detections (if not, mocli does not track).

    Optional: ``mutes_native_logs = True`` makes ``detect_video`` run the detector inside
    ``mocli.utils.native_logs.native_stderr_muted`` (for native libraries that log to fd 2 themselves);
    ``smooth_tracks = True`` makes ``extract_people`` smooth each tracked person's keypoints over time
    (``mocli.keypoints.smoothing``), for multi-person detectors whose landmarks are not smoothed by the backend.
    """

    name: str
    skeleton: str
    multi_person: bool

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Find people in one (H, W, 3) uint8 BGR frame; frames must come in video order (some backends track)."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...


def box_from_keypoints(keypoints: np.ndarray, min_conf: float = 0.0) -> np.ndarray:
    """Tight box around the confident, finite keypoints.

    Args:
        keypoints: (J, 3) pixels + confidence.
        min_conf: keypoints with confidence <= this are ignored (all are used if none passes).
    Returns:
        (4,) float32 x1, y1, x2, y2 in pixels; NaN if no keypoint is finite.
    """
    xy = keypoints[:, :2]
    ok = np.isfinite(xy).all(axis=1)
    confident = ok & (keypoints[:, 2] > min_conf)
    use = confident if confident.any() else ok
    if not use.any():
        return np.full(4, np.nan, dtype=np.float32)
    lo, hi = xy[use].min(axis=0), xy[use].max(axis=0)
    return np.array([lo[0], lo[1], hi[0], hi[1]], dtype=np.float32)
