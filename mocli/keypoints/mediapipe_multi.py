"""MediaPipe Pose for several people: the wheel's own BlazePose models run through MediaPipe's Tasks API.

mediapipe 0.10.21 ships the person detector (``modules/pose_detection/pose_detection.tflite``) and the full landmark
model (``modules/pose_landmark/pose_landmark_full.tflite``) for its legacy single-person solution (the heavy one goes
beside it: ``mocli.keypoints.mediapipe_models``). The Tasks API's
``PoseLandmarker`` runs the same two models for up to ``num_poses`` people, but it reads them from a ``.task``
bundle (a zip of ``pose_detector.tflite`` + ``pose_landmarks_detector.tflite``) whose models carry TFLite metadata
for the input normalisation. ``build_pose_bundle`` makes that bundle in memory from the wheel's files, adding the
normalisation the legacy graphs use (detector: [-1, 1]; landmarks: [0, 1]) with MediaPipe's own metadata writer:
nothing is downloaded and nothing is written to disk.

In video mode the landmarker follows each person from frame to frame by their landmarks (the crop comes from the
previous frame's pose, as in the legacy solution), and on every frame where it follows fewer than ``num_poses``
people it runs the person detector again, whose boxes then replace the crops of the people it finds. People seen by
the detector in a single frame are followed from then on, even through frames where the detector misses them
(often, on small or turned people), which a sparser search would lose; the price is a detector run per frame.
With ``num_poses`` > 1 the landmarks come out unsmoothed (the Tasks API smooths them only for one pose:
``benchmarks/bench_detect.py`` measures the legacy solution's steadiness with ``max_people=1`` and not above), so
``smooth_tracks`` asks mocli to smooth each linked track with the legacy solution's filter
(``mocli.keypoints.smoothing``). The landmarker gives no identities: mocli's tracker (``mocli.keypoints.linking``)
links the detections into people.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mocli.errors import MissingDependencyError
from mocli.keypoints.base import Detection, box_from_keypoints
from mocli.keypoints.mediapipe_models import INSTALL_HINT, import_mediapipe, landmark_folder, landmark_model_path
from mocli.keypoints.tracking import iou_matrix
from mocli.utils.native_logs import native_stderr_muted

__all__ = ["MediaPipeMultiDetector", "build_pose_bundle", "wheel_model_paths"]

# Input normalisation of the legacy graphs (pose_detection_cpu.pbtxt: float range [-1, 1];
# pose_landmark_by_roi_cpu.pbtxt: [0, 1]) as (mean, std) on 0..255 RGB.
DETECTOR_NORM = (127.5, 127.5)
LANDMARK_NORM = (0.0, 255.0)
FRAME_MS = 100.0 / 3.0  # video timestamps at 30 fps, as the legacy solution simulates them


def wheel_model_paths(model: str = "full") -> tuple[Path, Path]:
    """(person detector, landmark model ``model``: 'full' or 'heavy') .tflite files in the installed mediapipe wheel's
    folders (the heavy one once ``mocli prepare mediapipe-heavy`` has put it there).

    Raises:
        MissingDependencyError: mediapipe is missing, or one of the two models is not there. InputError: unknown
        model.
    """
    detector = landmark_folder().parent / "pose_detection" / "pose_detection.tflite"
    if not detector.is_file():
        raise MissingDependencyError(f"mediapipe's wheel has no {detector.name} (expected at {detector}): "
                                     f"{INSTALL_HINT}")  # fmt: skip
    return detector, landmark_model_path(model)


def _with_image_metadata(model: bytes, name: str, norm: tuple[float, float]) -> bytes:
    """A .tflite model with image-input metadata (mean, std normalisation, RGB), as the Tasks API requires."""
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    writer = metadata_writer.MetadataWriter.create(bytearray(model))
    content, _ = writer.add_general_info(name).add_image_input([norm[0]], [norm[1]]).populate()
    return bytes(content)


def build_pose_bundle(model: str = "full") -> bytes:
    """The bytes of a PoseLandmarker ``.task`` bundle made from the wheel's person detector and landmark model
    ``model`` (see the module docstring)."""
    detector, landmarks = wheel_model_paths(model)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr(
            "pose_detector.tflite", _with_image_metadata(detector.read_bytes(), "pose_detector", DETECTOR_NORM)
        )
        bundle.writestr(
            "pose_landmarks_detector.tflite",
            _with_image_metadata(landmarks.read_bytes(), "pose_landmarks_detector", LANDMARK_NORM),
        )
    return buffer.getvalue()


def _pose_arrays(pose: Any, world: Any | None, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """One Tasks API pose -> keypoints (33, 3) pixels + visibility, world landmarks (33, 3) metres (NaN if none)."""
    image = np.array([(lm.x * w, lm.y * h, lm.visibility or 0.0) for lm in pose], dtype=np.float32)
    if world is None:
        return image, np.full((33, 3), np.nan, dtype=np.float32)
    return image, np.array([(lm.x, lm.y, lm.z) for lm in world], dtype=np.float32)


def _containment(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(N,) fraction of ``box`` (4,) that lies inside each of ``others`` (N, 4); boxes are x1, y1, x2, y2."""
    iw = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-6)
    return np.nan_to_num(iw * ih / area)


def suppress_duplicates(
    detections: list[Detection], max_iou: float = 0.5, max_inside: float = 0.7, max_hip_shift: float = 0.2
) -> list[Detection]:
    """Drop a person found twice: the landmarker sometimes follows someone and also detects them anew, and the second
    pose can cover only part of the body (the legs).

    A detection is dropped when a better-scoring one kept before it overlaps its box by IoU > ``max_iou``, or holds
    more than ``max_inside`` of its box and has its mid-hip (MediaPipe landmarks 23, 24) within ``max_hip_shift`` x
    the square root of its own box area.

    Args:
        detections: one frame's detections, keypoints (33, 3) in the MediaPipe layout.
    Returns:
        The kept detections, best score first.
    """
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: -d.score):
        if kept:
            boxes = np.stack([k.box for k in kept])
            hips = np.stack([k.keypoints[[23, 24], :2].mean(axis=0) for k in kept])
            scale = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))
            shift = np.linalg.norm(hips - det.keypoints[[23, 24], :2].mean(axis=0), axis=1)
            same = (_containment(det.box, boxes) > max_inside) & (shift < max_hip_shift * scale)
            if (iou_matrix(det.box[None], boxes)[0] > max_iou).any() or same.any():
                continue
        kept.append(det)
    return kept


def _detections(result: Any, w: int, h: int) -> list[Detection]:
    """A PoseLandmarker result -> one Detection per pose (box around the landmarks with visibility > 0.5)."""
    worlds = result.pose_world_landmarks or [None] * len(result.pose_landmarks)
    detections = []
    for pose, world in zip(result.pose_landmarks, worlds, strict=False):
        keypoints, world33 = _pose_arrays(pose, world, w, h)
        detections.append(
            Detection(
                keypoints=keypoints,
                box=box_from_keypoints(keypoints, min_conf=0.5),
                score=float(keypoints[:, 2].mean()),
                extras={"world_landmarks33": world33},
            )
        )
    return detections


class MediaPipeMultiDetector:
    """``Detector`` for up to ``num_poses`` people per frame with MediaPipe's BlazePose (full) models.

    Each detection has keypoints (33, 3) = x, y in pixels + visibility (the ``mediapipe`` skeleton) and
    ``extras["world_landmarks33"]`` (33, 3) metres, hip-centred, like the single-person ``mediapipe`` backend.
    Frames must come in video order (the landmarker follows people between frames). ``smooth_tracks`` (True for
    ``num_poses`` > 1): the landmarks are raw, and mocli smooths each linked track.

    Args:
        num_poses: most people followed per frame.
        min_detection_confidence: the person detector's threshold. Higher than the legacy solution's 0.5: the
            detector runs on most frames here, and each weak detection replaces the crop of a person followed well
            (``benchmarks/bench_detect.py --detection-confidence`` compares).
        min_presence_confidence, min_tracking_confidence: the landmarker's other thresholds.
        model: the landmark model, 'full' (the wheel's) or 'heavy' (``mocli.keypoints.mediapipe_models``).
    """

    name = "mediapipe-multi"
    skeleton = "mediapipe"
    multi_person = True
    mutes_native_logs = True

    def __init__(
        self,
        num_poses: int = 6,
        min_detection_confidence: float = 0.7,
        min_presence_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        model: str = "full",
    ) -> None:
        if num_poses < 1:
            raise ValueError(f"num_poses must be at least 1, got {num_poses}")
        mp = import_mediapipe("the mediapipe-multi detector")
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        self.smooth_tracks = num_poses > 1
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=build_pose_bundle(model)),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=num_poses,
            min_pose_detection_confidence=min_detection_confidence,
            min_pose_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        with native_stderr_muted():
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        self._frame = 0

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """(H, W, 3) uint8 BGR frame -> one Detection per person found (any order, no identities)."""
        h, w = frame_bgr.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        result = self._landmarker.detect_for_video(image, int(round(self._frame * FRAME_MS)))
        self._frame += 1
        return suppress_duplicates(_detections(result, w, h))

    def close(self) -> None:
        with native_stderr_muted():
            self._landmarker.close()
