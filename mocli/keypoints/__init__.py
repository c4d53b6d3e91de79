"""2D keypoints: detectors (video -> per-frame people), tracking, and keypoint files (npz, other tools' JSON).

Typical use::

    from mocli.keypoints import create_detector, extract_keypoints, save_keypoints_npz

    detector = create_detector("mediapipe")
    for seq in extract_keypoints("clip.mp4", detector):
        save_keypoints_npz(seq, f"clip_p{seq.track_id}.npz")  # keypoints (T, 17, 3) pixels + confidence
"""

from mocli.keypoints.base import Detection, Detector
from mocli.keypoints.extract import PeopleFound, detect_video, extract_keypoints, extract_people
from mocli.keypoints.formats import IMPORT_FORMATS, import_keypoints
from mocli.keypoints.npz import load_keypoints_npz, save_keypoints_npz
from mocli.keypoints.registry import DEFAULT_DETECTOR, DETECTORS, DetectorOptions, create_detector
from mocli.keypoints.sequence import KeypointSequence, build_sequences
from mocli.keypoints.tracking import parse_person

__all__ = [
    "Detection",
    "Detector",
    "DetectorOptions",
    "DETECTORS",
    "DEFAULT_DETECTOR",
    "IMPORT_FORMATS",
    "KeypointSequence",
    "PeopleFound",
    "build_sequences",
    "create_detector",
    "detect_video",
    "extract_keypoints",
    "extract_people",
    "import_keypoints",
    "load_keypoints_npz",
    "parse_person",
    "save_keypoints_npz",
]
