"""What ``infer`` produces for one person of one input, and how it is written (all writes are atomic)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mocli.skeleton import H36M_17
from mocli.utils.io import atomic_path

__all__ = ["MotionResult", "write_joints_npz", "write_json", "load_joints_npz"]


@dataclass
class MotionResult:
    """3D motion of one person.

    Attributes:
        joints3d: (T,17,3) float32 metres, root-relative (pelvis at 0), camera axes (x right, y down, z forward);
            NaN in frames without the person.
        keypoints2d: (T,17,3) float32 pixels + confidence (the model's input), NaN where missing.
        fps: frames per second of the input.
        image_size: (w, h) pixels.
        missing: (K,) int indices of frames without the person (detected nor interpolated).
        root: (T,3) metres, camera frame, when a trajectory is estimated (None otherwise).
        extras: more (T, ...) arrays carried to the npz, e.g. MediaPipe's ``world_landmarks33``.
    """

    joints3d: np.ndarray
    keypoints2d: np.ndarray
    fps: float
    image_size: tuple[int, int]
    missing: np.ndarray
    root: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.joints3d.shape[0])


def write_joints_npz(result: MotionResult, path: str | Path) -> Path:
    """``joints3d.npz``: joints3d, keypoints2d, fps, image_size, missing_frames, joint_names (+ root, extras)."""
    arrays: dict[str, Any] = {
        "joints3d": result.joints3d.astype(np.float32),
        "keypoints2d": result.keypoints2d.astype(np.float32),
        "fps": np.float32(result.fps),
        "image_size": np.asarray(result.image_size, dtype=np.int32),
        "missing_frames": result.missing.astype(np.int64),
        "joint_names": np.array(H36M_17.joint_names),
        "units": np.array("metres"),
    }
    if result.root is not None:
        arrays["root"] = result.root.astype(np.float32)
    arrays.update({k: v for k, v in result.extras.items() if k not in arrays})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return Path(path)


def load_joints_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_json(obj: Any, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n")
    return Path(path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
