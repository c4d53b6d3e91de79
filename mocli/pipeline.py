"""The ``infer`` pipeline: inputs -> 2D keypoint sequences -> 3D joints -> files under OUT/<name>/.

resolve_inputs(specs)            files, folders (recursive), globs -> InferInput list (video/npz/h5/json)
load_sequences(input, ...)       -> [(name, KeypointSequence)]  (detector for videos; readers otherwise)
run_pose3d(seq, model, ...)      -> MotionResult  (mocli.lift)
OutputLock, joints_file, write_summary   the result folder: locked while written, summary.json last
"""

from __future__ import annotations

import glob
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocli._version import __version__
from mocli.errors import InputError, MocliError
from mocli.keypoints import KeypointSequence
from mocli.lift import LiftOptions, lift_keypoints
from mocli.results import MotionResult, write_json
from mocli.video import VIDEO_EXTENSIONS

__all__ = [
    "InferInput",
    "InferOptions",
    "OutputLock",
    "resolve_inputs",
    "select_shard",
    "parse_shard",
    "load_sequences",
    "run_pose3d",
    "joints_file",
    "write_summary",
    "is_complete",
]

log = logging.getLogger(__name__)

KEYPOINT_SUFFIXES = {".npz": "npz", ".h5": "h5", ".hdf5": "h5", ".json": "json"}
SUMMARY = "summary.json"
LOCK = ".mocli.lock"


@dataclass(frozen=True)
class InferInput:
    """One input: a video, a keypoints npz, an HDF5 from ``prepare dataset``, or another tool's JSON/folder."""

    path: Path
    kind: str  # video | npz | h5 | json
    spec: str = ""  # what the user typed, for messages

    @property
    def name(self) -> str:
        return self.path.stem if self.path.is_file() else self.path.name


@dataclass
class InferOptions:
    detector: str = "mediapipe"
    detector_options: Any = None  # mocli.keypoints.DetectorOptions
    person: Any = "largest"  # "largest" | "all" | track id
    max_gap: int = 10
    keypoint_format: str | None = None  # alphapose|coco|openpose|mmpose for JSON inputs
    lift: LiftOptions = field(default_factory=LiftOptions)
    max_frames: int | None = None


def _kind(path: Path, keypoint_format: str | None) -> str | None:
    if path.is_dir():
        return "json" if keypoint_format == "openpose" else None
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return KEYPOINT_SUFFIXES.get(suffix)


def resolve_inputs(specs: Sequence[str], keypoint_format: str | None = None) -> tuple[list[InferInput], list[str]]:
    """Expand the command line into inputs, sorted and without duplicates, plus one error line per bad spec.

    Files are taken by their suffix (videos, .npz, .h5/.hdf5, .json; an unknown suffix is tried as a video);
    folders are searched recursively for videos (an OpenPose folder with ``--format openpose`` is one input);
    glob patterns match videos and prepared inputs.
    """
    found: dict[Path, InferInput] = {}
    errors: list[str] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir() and _kind(path, keypoint_format) is None:
            videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            if not videos:
                errors.append(f"{spec}: no video files in this folder")
            matches = [(p, "video") for p in videos]
        elif path.exists():
            matches = [(path, _kind(path, keypoint_format) or "video")]
        elif any(c in spec for c in "*?["):
            hits = sorted(Path(p) for p in glob.glob(spec, recursive=True))
            matches = [(p, k) for p in hits if (k := _kind(p, keypoint_format))]
            if not matches:
                errors.append(f"{spec}: nothing matches")
        else:
            errors.append(f"{spec}: no such file or folder")
            matches = []
        for p, kind in matches:
            found.setdefault(p.resolve(), InferInput(p, kind, spec))
    return sorted(found.values(), key=lambda i: str(i.path)), errors


def select_shard(inputs: list[InferInput], shard: tuple[int, int] | None) -> list[InferInput]:
    """Inputs of shard k of n (0-based: k = 0..n-1), by position in the sorted list."""
    if shard is None:
        return inputs
    k, n = shard
    return inputs[k::n]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'K/N' (0 <= K < N) -> (K, N); None -> the torchrun rank/world size when set, else None."""
    if text is None:
        rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
        return (int(rank), int(world)) if rank is not None and world is not None and int(world) > 1 else None
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise MocliError(f"--shard {text!r}: expected K/N, e.g. 0/4") from None
    if not 0 <= k < n:
        raise MocliError(f"--shard {text}: K must be in 0..N-1")
    return k, n


def load_sequences(
    item: InferInput, options: InferOptions, on_frame: Callable[[], None] | None = None
) -> list[tuple[str, KeypointSequence]]:
    """The 2D keypoint sequences of one input, each with its output name."""
    from mocli.keypoints import create_detector, extract_keypoints, import_keypoints, load_keypoints_npz

    if item.kind == "video":
        detector = create_detector(options.detector, options.detector_options)
        try:
            seqs = extract_keypoints(
                item.path,
                detector,
                person=options.person,
                max_gap=options.max_gap,
                max_frames=options.max_frames,
                on_frame=on_frame,
            )
        finally:
            detector.close()
    elif item.kind == "npz":
        seqs = [load_keypoints_npz(item.path)]
    elif item.kind == "json":
        if options.keypoint_format is None:
            raise InputError(f"{item.path}: a keypoint JSON needs --format alphapose|coco|openpose|mmpose")
        seqs = import_keypoints(item.path, options.keypoint_format, person=options.person, max_gap=options.max_gap)
    elif item.kind == "h5":
        return _h5_sequences(item.path)
    else:
        raise InputError(f"{item.path}: unsupported input")
    if len(seqs) == 1:
        return [("", seqs[0])]
    return [(f"p{s.track_id}", s) for s in seqs]


def _h5_sequences(path: Path) -> list[tuple[str, KeypointSequence]]:
    from mocli.data.h5 import open_dataset

    out = []
    with open_dataset(path) as ds:
        for ref in ds:
            if "keypoints2d" not in ref.array_names:
                continue
            kp = ref.read("keypoints2d")
            if kp.ndim == 4:  # (M,T,J,3): one sequence per person
                people = [(f"{ref.name}_p{m}", kp[m]) for m in range(kp.shape[0])]
            else:
                people = [(ref.name, kp)]
            size = ref.attrs.get("image_size")
            for name, k in people:
                finite = np.isfinite(k[..., :2]).all(-1).any(-1) & (k[..., 2] > 0).any(-1)
                seq = KeypointSequence(
                    keypoints=k.astype(np.float32),
                    image_size=tuple(int(v) for v in size) if size is not None else (0, 0),
                    fps=float(ref.fps or 0.0),
                    valid=finite,
                    interpolated=np.zeros(len(k), bool),
                    source=f"hdf5:{path.name}",
                    video=str(path),
                )
                out.append((name, seq))
    if not out:
        raise InputError(f"{path}: no sequence with 2D keypoints ('keypoints2d') in this HDF5 file")
    return out


def run_pose3d(
    seq: KeypointSequence, model: torch.nn.Module, lift: LiftOptions, device: torch.device | str
) -> MotionResult:
    """3D joints (metres, root-relative, camera axes) for every frame of a keypoint sequence."""
    present = seq.valid | seq.interpolated
    if not present.any():
        raise InputError("no frame with the person")
    joints = lift_keypoints(model, seq.keypoints, lift, device=device)
    joints[~present] = np.nan
    extras = {k: v for k, v in seq.extras.items() if k == "world_landmarks33"}
    return MotionResult(
        joints3d=joints,
        keypoints2d=seq.keypoints,
        fps=seq.fps,
        image_size=seq.image_size,
        missing=np.flatnonzero(~present),
        extras=extras,
    )


# ------------------------------------------------------------------------------------------------ outputs


def is_complete(out_dir: Path) -> bool:
    """A result folder is complete when its summary.json exists (it is written last)."""
    return (out_dir / SUMMARY).is_file()


class OutputLock:
    """An exclusive lock file in a result folder, so two processes never write the same result.

    A lock left by a process that no longer runs (same host) is taken over.
    """

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale():
                    self.path.unlink(missing_ok=True)
                    continue
                raise InputError(f"{self.path.parent} is being written by another mocli process") from None
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps({"pid": os.getpid(), "host": platform.node()}))
            return self
        raise InputError(f"{self.path.parent}: cannot take the output lock")

    def _stale(self) -> bool:
        try:
            info = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return True
        if info.get("host") != platform.node():
            return False
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, KeyError, ValueError):
            return False
        return False

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def joints_file(unit: str) -> str:
    """File name of one person's/sequence's joints in a result folder: joints3d.npz, or joints3d_<unit>.npz."""
    return f"joints3d_{unit}.npz" if unit else "joints3d.npz"


def write_summary(out_dir: Path, summary: dict[str, Any]) -> Path:
    """summary.json, written last: its presence marks the folder as a complete result."""
    return write_json(summary, out_dir / SUMMARY)


def base_summary(item: InferInput, model_info: dict[str, Any], options: InferOptions) -> dict[str, Any]:
    return {
        "mocli_version": __version__,
        "torch_version": torch.__version__,
        "input": str(item.path),
        "input_kind": item.kind,
        "task": "pose3d",
        "device": None,
        "model": model_info,
        "detector": options.detector if item.kind == "video" else None,
        "flip_tta": options.lift.flip,
        "bones": options.lift.bones,
        "precision": options.lift.precision,
        "clip_len": options.lift.clip_len,
        "units": "metres, root-relative, camera axes (x right, y down, z forward)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
