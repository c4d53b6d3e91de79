"""MediaPipe Pose (BlazePose): single person, 33 landmarks plus metric 3D world landmarks.

mediapipe 0.10.21 ships the person detector and the full landmark model in its wheel, so this backend runs offline;
the heavy landmark model runs once installed beside it (``mocli.keypoints.mediapipe_models``). It tracks the person
from frame to frame itself (``static_image_mode=False``), so frames must be given in video order.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from mocli.keypoints.base import Detection, box_from_keypoints
from mocli.keypoints.mediapipe_models import import_mediapipe, landmark_model_path, model_complexity
from mocli.utils.native_logs import native_stderr_muted

__all__ = ["MediaPipeDetector", "landmarks_to_array"]


def landmarks_to_array(landmarks: Any, scale: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """MediaPipe landmark list -> (33, 4) float32 x, y, z (each times ``scale``) and visibility."""
    arr = np.array([(lm.x, lm.y, lm.z, lm.visibility) for lm in landmarks.landmark], dtype=np.float32)
    arr[:, :3] *= np.asarray(scale, dtype=np.float32)
    return arr


class MediaPipeDetector:
    """``Detector`` backed by ``mediapipe.solutions.pose``.

    Each detection has keypoints (33, 3) = x, y in pixels + visibility, and ``extras["world_landmarks33"]``
    (33, 3) metres, hip-centred (MediaPipe's metric 3D estimate). ``mutes_native_logs``: ``detect_video`` runs it
    inside ``native_stderr_muted()``, as its C++ graph logs to fd 2 from its own threads. ``model``: the landmark
    model, 'full' (the wheel's) or 'heavy' (``mocli prepare mediapipe-heavy``; about 2.5x slower).
    """

    name = "mediapipe"
    skeleton = "mediapipe"
    multi_person = False
    mutes_native_logs = True

    def __init__(
        self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5, model: str = "full"
    ) -> None:
        mp = import_mediapipe("the mediapipe detector")
        # MediaPipe would download a landmark model it does not find (failing offline): check it is there first.
        landmark_model_path(model)
        with native_stderr_muted():
            self._pose = mp.solutions.pose.Pose(
                static_image_mode=False,
                model_complexity=model_complexity(model),
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence,
            )
            # The graph creates its models (and logs that, from its own threads) when it first runs: run it once on a
            # blank frame here, muted, so those lines cannot land between construction and detection.
            self._pose.process(np.zeros((64, 64, 3), np.uint8))

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """(H, W, 3) uint8 BGR frame -> zero or one Detection."""
        h, w = frame_bgr.shape[:2]
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        result = self._pose.process(rgb)
        if result.pose_landmarks is None:
            return []
        image = landmarks_to_array(result.pose_landmarks, scale=(w, h, w))
        keypoints = image[:, [0, 1, 3]]  # x, y pixels + visibility
        world = (
            landmarks_to_array(result.pose_world_landmarks)[:, :3]
            if result.pose_world_landmarks is not None
            else np.full((33, 3), np.nan, dtype=np.float32)
        )
        return [
            Detection(
                keypoints=keypoints,
                box=box_from_keypoints(keypoints, min_conf=0.5),
                score=float(keypoints[:, 2].mean()),
                extras={"world_landmarks33": world},
            )
        ]

    def close(self) -> None:
        with native_stderr_muted():
            self._pose.close()
