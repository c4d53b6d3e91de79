"""The schema of mocli's dataset file (docs/hdf5.md): the names, shapes and units of one sequence's arrays and
labels, the check every written sequence passes, and the conversion of labels to and from HDF5 attributes.
``mocli.data.h5`` reads and writes the files with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
SPLITS = ("train", "val", "test")
JOINT_LAYOUT = "h36m"
NUM_JOINTS = 17

# Array name -> (trailing shape after the frame axis, whether a leading person axis is allowed).
ARRAYS: dict[str, tuple[tuple[int, ...], bool]] = {
    "keypoints2d": ((NUM_JOINTS, 3), True),
    "joints3d": ((NUM_JOINTS, 3), False),
    "joints3d_image": ((NUM_JOINTS, 3), False),
    "factor_2_5d": ((), False),
    "smpl_pose": ((72,), False),
    "smpl_shape": ((10,), False),
    "smpl_trans": ((3,), False),
}
FRAMES = ("world", "camera", "image_2.5d")


@dataclass
class Sequence:
    """One motion sequence, all arrays in memory (None where absent).

    Arrays (T frames, 17 H36M joints):
        keypoints2d: (T, 17, 3) float32 x, y pixels + confidence in [0, 1]; (M, T, 17, 3) for M persons.
        joints3d: (T, 17, 3) float32 metres, in ``frame`` ('world' with ``up_axis``, 'camera', or 'image_2.5d').
        joints3d_image: (T, 17, 3) float32 pixels (x, y, depth scaled like x) - MotionBERT's H36M label.
        factor_2_5d: (T,) float32 millimetres per pixel at the root depth (joints3d_image * factor = mm).
        smpl_pose: (T, 72) float32 axis-angle radians; smpl_shape: (T, 10) or (10,) betas;
        smpl_trans: (T, 3) float32 metres.
    Metadata: fps (frames per second), split ('train', 'val', 'test'), source (dataset or archive), subject,
    action, camera, image_size ((w, h) pixels, for 2D), label (sequence-level class id), extra (other labels such
    as Bandai content/style ids and names; str, int, float or bool values).
    """

    name: str
    fps: float
    keypoints2d: np.ndarray | None = None
    joints3d: np.ndarray | None = None
    joints3d_image: np.ndarray | None = None
    factor_2_5d: np.ndarray | None = None
    smpl_pose: np.ndarray | None = None
    smpl_shape: np.ndarray | None = None
    smpl_trans: np.ndarray | None = None
    frame: str = "world"
    up_axis: str | None = "y"
    split: str = "train"
    source: str = ""
    subject: str = ""
    action: str = ""
    camera: str = ""
    image_size: tuple[int, int] | None = None
    label: int | None = None
    joint_layout: str = JOINT_LAYOUT
    extra: dict[str, Any] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that are present, by name."""
        return {k: getattr(self, k) for k in ARRAYS if getattr(self, k) is not None}

    @property
    def num_frames(self) -> int:
        return num_frames_of(self.arrays())


def num_frames_of(arrays: dict[str, Any]) -> int:
    """T from the arrays (the frame axis is -3 for keypoint arrays, 0 otherwise; smpl_shape (10,) has none)."""
    for name, arr in arrays.items():
        if name in ("keypoints2d", "joints3d", "joints3d_image"):
            return int(arr.shape[-3])
    for name, arr in arrays.items():
        if not is_static(name, arr):
            return int(arr.shape[0])
    return 0


def is_static(name: str, arr: Any) -> bool:
    """Whether an array has no frame axis (a per-sequence smpl_shape (10,))."""
    return name == "smpl_shape" and len(arr.shape) == 1


def check_sequence(seq: Sequence) -> None:
    """Raise ValueError if shapes, frame counts or metadata break the schema."""
    if not seq.name or "/" in seq.name or seq.name in (".", ".."):
        raise ValueError(f"invalid sequence name {seq.name!r}")
    arrays = seq.arrays()
    if not arrays:
        raise ValueError(f"{seq.name}: no arrays")
    frames = {name: num_frames_of({name: arr}) for name, arr in arrays.items() if not is_static(name, arr)}
    if len(set(frames.values())) > 1:
        counts = ", ".join(f"{k} {v}" for k, v in frames.items())
        raise ValueError(f"{seq.name}: arrays disagree on the number of frames ({counts})")
    num_frames = num_frames_of(arrays)
    for name, arr in arrays.items():
        tail, persons = ARRAYS[name]
        shape = tuple(arr.shape)
        ok = shape == (num_frames, *tail) or (persons and len(shape) == 4 and shape[1:] == (num_frames, *tail))
        ok = ok or (name == "smpl_shape" and shape == tail)
        if not ok:
            raise ValueError(f"{seq.name}: {name} has shape {shape}, expected {(num_frames, *tail)}")
    if seq.split not in SPLITS:
        raise ValueError(f"{seq.name}: split {seq.split!r} is not one of {SPLITS}")
    if not seq.fps > 0:
        raise ValueError(f"{seq.name}: fps must be positive, got {seq.fps}")
    if seq.joints3d is not None and seq.frame not in FRAMES:
        raise ValueError(f"{seq.name}: joints3d frame {seq.frame!r} is not one of {FRAMES}")
    clash = set(seq.extra) & ({f.name for f in fields(Sequence)} | {"num_frames"})
    if clash:
        raise ValueError(f"{seq.name}: extra labels may not use reserved names {sorted(clash)}")


def attr_value(v: Any) -> Any:
    """Python label -> HDF5 attribute value (bool as bool, tuples and lists as arrays; the rest as is)."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (tuple, list)):
        return np.asarray(v)
    return v


def py_value(v: Any) -> Any:
    """HDF5 attribute value -> plain Python (str, int, float, bool, tuple)."""
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray):
        return tuple(py_value(x) for x in v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    return v
