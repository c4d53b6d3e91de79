"""mocli's keypoint file: one person's 2D keypoints as a plain npz (read, validated and cleaned; written atomically).

The npz (see docs/keypoints.md) holds ``keypoints`` (T, 17, 3) float32 pixels + confidence in H36M-17 order,
``image_size`` (2,) int (w, h), ``fps``, ``joint_names`` (17,), plus ``valid``, ``interpolated``, ``track_id``,
``source``, ``video`` and optional (T, ...) extras. It is read without pickles (``allow_pickle=False``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mocli.errors import InputError
from mocli.keypoints.sequence import KeypointSequence, drop_unusable
from mocli.skeleton import H36M_17
from mocli.utils.io import atomic_path

__all__ = ["load_keypoints_npz", "save_keypoints_npz"]

_CORE_KEYS = ("keypoints", "image_size", "fps", "joint_names", "valid", "interpolated", "track_id", "source", "video")


def _check_sequence(seq: KeypointSequence, where: str) -> None:
    """Raise InputError unless shapes, joint count, image size and fps are consistent."""
    kp = seq.keypoints
    if kp.ndim != 3 or kp.shape[1:] != (H36M_17.num_joints, 3):
        raise InputError(f"{where}: 'keypoints' must be (T, 17, 3) pixels + confidence, got {kp.shape}")
    if kp.shape[0] == 0:
        raise InputError(f"{where}: 'keypoints' has no frames")
    w, h = seq.image_size
    if not (w > 0 and h > 0):
        raise InputError(f"{where}: 'image_size' must be two positive integers (w, h), got {seq.image_size}")
    if not (np.isfinite(seq.fps) and seq.fps > 0):
        raise InputError(f"{where}: 'fps' must be positive, got {seq.fps}")
    for name in ("valid", "interpolated"):
        if getattr(seq, name).shape != (kp.shape[0],):
            raise InputError(f"{where}: {name!r} must be ({kp.shape[0]},), got {getattr(seq, name).shape}")
    for name, arr in seq.extras.items():
        if name in _CORE_KEYS:
            raise InputError(f"{where}: extra array {name!r} clashes with a core field")
        if arr.ndim == 0 or arr.shape[0] != kp.shape[0]:
            raise InputError(f"{where}: extra array {name!r} must have T={kp.shape[0]} frames first, got {arr.shape}")


def save_keypoints_npz(seq: KeypointSequence, path: str | Path) -> Path:
    """Write a sequence as a compressed npz (atomically: the file appears complete or not at all).

    Returns:
        The path written.
    """
    path = Path(path)
    _check_sequence(seq, str(path))
    arrays = {
        "keypoints": seq.keypoints.astype(np.float32),
        "image_size": np.asarray(seq.image_size, dtype=np.int64),
        "fps": np.float64(seq.fps),
        "joint_names": np.array(H36M_17.joint_names),
        "valid": seq.valid.astype(bool),
        "interpolated": seq.interpolated.astype(bool),
        "track_id": np.int64(seq.track_id),
        "source": np.array(seq.source),
        "video": np.array(seq.video),
        **seq.extras,
    }
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


def _scalar(arrays: Mapping[str, np.ndarray], name: str, default: Any, where: str) -> Any:
    if name not in arrays:
        return default
    arr = arrays[name]
    if arr.size != 1:
        raise InputError(f"{where}: {name!r} must be a single value, got shape {arr.shape}")
    return arr.reshape(()).item()


def load_keypoints_npz(path: str | Path) -> KeypointSequence:
    """Read and validate a keypoints npz.

    Required: ``keypoints`` (T, 17, 3) (or (T, 17, 2): confidence 1 where finite), ``image_size`` (2,) (w, h) and
    ``fps``. If ``joint_names`` is present it must be H36M-17's. ``valid`` defaults to frames with any finite joint,
    ``interpolated`` to False; other arrays with T frames first become ``extras``. Joints with a NaN or infinite
    coordinate or confidence, and frames without a usable joint, are marked missing with a warning
    (``drop_unusable``), so callers never see them as detections.

    Raises:
        InputError: missing file, not an npz, a missing or malformed field (named in the message), or no usable
            keypoint in any frame.
    """
    path = Path(path)
    where = str(path)
    if not path.exists():
        raise InputError(f"{where}: no such file")
    if not path.is_file():
        raise InputError(f"{where}: not a regular file (a folder, pipe or device); a keypoints npz is a file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as e:  # numpy raises several types for non-npz input
        raise InputError(f"{where}: not a keypoints npz ({type(e).__name__}: {e})") from None
    for name in ("keypoints", "image_size", "fps"):
        if name not in arrays:
            raise InputError(f"{where}: missing field {name!r} (a keypoints npz has keypoints, image_size, fps)")
    kp = np.asarray(arrays["keypoints"], dtype=np.float32)
    if kp.ndim == 3 and kp.shape[-1] == 2:
        kp = np.concatenate([kp, np.isfinite(kp).all(-1, keepdims=True).astype(np.float32)], axis=-1)
    if "joint_names" in arrays and tuple(str(n) for n in arrays["joint_names"]) != H36M_17.joint_names:
        raise InputError(
            f"{where}: 'joint_names' are not H36M-17's; convert other layouts with `mocli prepare keypoints`"
        )
    size = np.asarray(arrays["image_size"]).reshape(-1)
    if size.shape != (2,) or not np.all(np.isfinite(size)):
        raise InputError(f"{where}: 'image_size' must be (2,) = (w, h), got {size.tolist()}")
    num = kp.shape[0] if kp.ndim == 3 else 0
    finite = np.isfinite(kp[..., :2]).all(-1).any(-1) if kp.ndim == 3 else np.zeros(0, bool)
    seq = KeypointSequence(
        keypoints=kp,
        image_size=(int(size[0]), int(size[1])),
        fps=float(_scalar(arrays, "fps", 0.0, where)),
        valid=np.asarray(arrays.get("valid", finite), dtype=bool),
        interpolated=np.asarray(arrays.get("interpolated", np.zeros(num, bool)), dtype=bool),
        track_id=int(_scalar(arrays, "track_id", 1, where)),
        source=str(_scalar(arrays, "source", "", where)),
        video=str(_scalar(arrays, "video", "", where)),
        extras={k: v for k, v in arrays.items() if k not in _CORE_KEYS},
    )
    _check_sequence(seq, where)
    return drop_unusable(seq, where)
