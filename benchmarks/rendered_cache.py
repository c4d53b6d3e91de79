"""What ``rendered_mocap.py --reuse`` keeps of a rendered sequence, so that another lifter (or other options) can be
scored on the same videos without fitting, drawing and detecting them again.

Per sequence, beside its video (``<out>/videos/<stem>.mp4``), ``<out>/cache/<stem>.npz`` holds:

- ``key``: a text that names everything the video and MediaPipe's 2D depend on (``render_key``): the sequence (name,
  source, frame rate and a CRC-32 of its joints, so changed data never matches), the seed, the camera ranges, the
  body colours, the fit iterations and the detector;
- ``fit_error_mm`` (T,) float64: the Anny fit's per-frame joint error;
- ``found``: whether MediaPipe found the person; when it did, ``<out>/cache/<stem>.keypoints.npz`` is its
  ``KeypointSequence`` (``mocli.keypoints.npz``: H36M-17 pixels + confidence, ``valid``, MediaPipe's world
  landmarks among the extras).

MediaPipe's heavy landmark model (``rendered_mocap.py --mediapipe-model heavy``) keeps its entries, with the detector
'mediapipe-heavy' in their key, in ``<out>/cache-heavy/`` beside the same videos.

A cache entry whose key differs, or whose files or video are missing, is not used (the sequence is made again and
its entry rewritten). Files are written under temporary names and renamed (``mocli.utils.io.atomic_path``).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mocli.keypoints.npz import load_keypoints_npz, save_keypoints_npz
from mocli.keypoints.sequence import KeypointSequence
from mocli.utils.io import atomic_path

CACHE_VERSION = 1


def render_key(seq, seed: int, view, look: str, fit_iterations: int, detector: str = "mediapipe") -> str:
    """The text a cache entry must match: a sorted JSON of what the rendered video and its 2D depend on.

    ``seq`` is a ``mocli.evaluation.mocap.MocapSequence`` already cut to its frames (its joints are hashed), ``view``
    the ``ViewRange`` of the cameras."""
    joints = np.ascontiguousarray(np.asarray(seq.joints, np.float64))
    fields = {"version": CACHE_VERSION, "name": seq.name, "source": seq.source, "fps": float(seq.fps),
              "frames": int(joints.shape[0]), "joints_crc32": zlib.crc32(joints.tobytes()), "seed": int(seed),
              "view": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(view).items()},
              "look": look, "fit_iterations": int(fit_iterations), "detector": detector}  # fmt: skip
    return json.dumps(fields, sort_keys=True)


def _paths(cache_dir: Path, stem: str) -> tuple[Path, Path]:
    return cache_dir / f"{stem}.npz", cache_dir / f"{stem}.keypoints.npz"


def save_entry(cache_dir: Path, stem: str, key: str, fit_error_mm: np.ndarray, found: KeypointSequence | None) -> None:
    """Write one sequence's entry: its key, (T,) fit error in mm and MediaPipe's sequence (None: nobody found)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta, keypoints = _paths(cache_dir, stem)
    if found is not None:
        save_keypoints_npz(found, keypoints)
    elif keypoints.exists():
        keypoints.unlink()
    with atomic_path(meta) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, key=np.array(key), fit_error_mm=np.asarray(fit_error_mm, np.float64),
                     found=np.array(found is not None))  # fmt: skip


def load_entry(cache_dir: Path, stem: str, key: str) -> tuple[np.ndarray, KeypointSequence | None] | None:
    """(fit error (T,) mm, MediaPipe's sequence or None) of a sequence whose entry matches ``key``; None when there is
    no usable entry (missing, another key, unreadable)."""
    meta, keypoints = _paths(cache_dir, stem)
    try:
        with np.load(meta, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            fit_error, found = np.asarray(data["fit_error_mm"], np.float64), bool(data["found"])
    except (OSError, KeyError, ValueError):
        return None
    if not found:
        return fit_error, None
    if not keypoints.is_file():
        return None
    return fit_error, load_keypoints_npz(keypoints)
