"""What ``infer`` produces: one person's motion (MotionResult), one input's outcome (InputResult), a whole run
(InferRun); and how joints3d.npz is written and read back (all writes are atomic)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mocli.skeleton import H36M_17
from mocli.utils.io import atomic_path, save_npz

__all__ = [
    "MotionResult",
    "InputResult",
    "InferRun",
    "write_joints_npz",
    "read_joints_npz",
    "write_json",
    "load_joints_npz",
]


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
    return save_npz(path, arrays)


def load_joints_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a joints3d.npz, by name."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


_NPZ_FIELDS = ("joints3d", "keypoints2d", "fps", "image_size", "missing_frames", "joint_names", "units", "root")


def read_joints_npz(path: str | Path) -> MotionResult:
    """A joints3d.npz back as the MotionResult it was written from (``write_joints_npz``'s inverse)."""
    data = load_joints_npz(path)
    return MotionResult(
        joints3d=data["joints3d"],
        keypoints2d=data["keypoints2d"],
        fps=float(data["fps"]),
        image_size=(int(data["image_size"][0]), int(data["image_size"][1])),
        missing=data["missing_frames"],
        root=data.get("root"),
        extras={k: v for k, v in data.items() if k not in _NPZ_FIELDS},
    )


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


# ------------------------------------------------------------------------------------------------ outcomes of infer

STATUSES = ("written", "skipped", "busy", "failed")


@dataclass
class InputResult:
    """The outcome of one input of ``mocli.infer``.

    Attributes:
        input: the input file or folder (for a spec that matched nothing: the spec as given).
        status: ``written`` (computed now), ``skipped`` (complete from an earlier run), ``busy`` (being written by
            another mocli process: skipped too) or ``failed``.
        out_dir: the result folder ``OUT/<name>`` (None when the input failed before it was known).
        message: one line for ``failed`` and ``busy``, else "".
        summary: the content of summary.json for ``written`` and ``skipped`` (None otherwise).
    """

    input: Path
    status: str
    out_dir: Path | None = None
    message: str = ""
    summary: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def files(self) -> list[Path]:
        """The files of the result, as summary.json lists them (an OBJ folder ends in '/')."""
        if self.summary is None or self.out_dir is None:
            return []
        return [self.out_dir / name for name in self.summary.get("files", [])]

    def motions(self) -> list[MotionResult]:
        """Each person's motion, read back from the result's joints3d files (in summary.json's ``results`` order;
        each entry's ``person`` is the track ID)."""
        if self.summary is None or self.out_dir is None:
            return []
        return [read_joints_npz(self.out_dir / unit["file"]) for unit in self.summary.get("results", [])]


@dataclass
class InferRun:
    """All inputs of one ``mocli.infer`` call, in order (bad specs first, then the inputs as sorted)."""

    results: list[InputResult] = field(default_factory=list)

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i: int) -> InputResult:
        return self.results[i]

    def with_status(self, status: str) -> list[InputResult]:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}: expected one of {', '.join(STATUSES)}")
        return [r for r in self.results if r.status == status]

    @property
    def ok(self) -> bool:
        """True when no input failed (the command's exit code is 1 otherwise)."""
        return all(r.ok for r in self.results)
