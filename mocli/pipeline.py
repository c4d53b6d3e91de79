"""The ``infer`` pipeline: inputs -> 2D keypoint sequences -> 3D joints -> files under OUT/<name>/.

resolve_inputs(specs)            files, folders (recursive), globs -> InferInput list (video/npz/h5/json)
load_people(input, ...)          -> [(name, KeypointSequence)], who was found (detector for videos; readers otherwise)
input_camera(size, options)      -> Camera shared by every person of an input (mocli.trajectory)
run_pose3d(seq, model, ...)      -> MotionResult  (mocli.lift; + the camera-space trajectory)
joints_file, write_summary       the files of a result folder, summary.json last
mocli.result_folder              the result folder: locked while written, written aside and swapped in whole
mocli.infer_run                  the whole command: ``mocli.infer`` = these steps for every input, with exports
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocli._version import __version__
from mocli.errors import InputError, MocliError
from mocli.keypoints import DEFAULT_DETECTOR, KeypointSequence
from mocli.lift import LiftOptions, lift_sequence
from mocli.result_folder import SUMMARY, OutputLock, is_complete
from mocli.results import MotionResult, write_json
from mocli.skeleton import to_h36m
from mocli.trajectory import Camera, estimate_trajectory, make_camera
from mocli.video import VIDEO_EXTENSIONS

__all__ = [
    "InferInput",
    "InferOptions",
    "OutputLock",
    "resolve_inputs",
    "select_shard",
    "parse_shard",
    "load_people",
    "run_pose3d",
    "input_camera",
    "camera_summary",
    "joints_file",
    "write_summary",
    "is_complete",
]

log = logging.getLogger(__name__)

KEYPOINT_SUFFIXES = {".npz": "npz", ".h5": "h5", ".hdf5": "h5", ".json": "json"}
FOLDER_KINDS = "videos, keypoint .npz, .h5/.hdf5, or .json with --format"


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
    detector: str = DEFAULT_DETECTOR
    detector_options: Any = None  # mocli.keypoints.DetectorOptions
    person: Any = "largest"  # "largest" | "all" | track id
    max_gap: int = 10
    keypoint_format: str | None = None  # alphapose|coco|openpose|mmpose for JSON inputs
    lift: LiftOptions = field(default_factory=LiftOptions)
    max_frames: int | None = None
    focal: float | None = None  # focal length, pixels (camera-space trajectories; mocli.trajectory)
    fov: float | None = None  # horizontal field of view, degrees (instead of focal; neither: DEFAULT_FOV_DEG)
    world: bool = False  # meshes (OBJ) placed at the trajectory instead of the pelvis at the origin


def _kind(path: Path, keypoint_format: str | None) -> str | None:
    if path.is_dir():
        return "json" if keypoint_format == "openpose" else None
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return KEYPOINT_SUFFIXES.get(suffix)


def _folder_inputs(folder: Path, keypoint_format: str | None) -> list[tuple[Path, str]]:
    """Every input ``infer`` takes under ``folder`` (recursive; hidden files and folders left out): videos, keypoint
    .npz, .h5/.hdf5, and .json when a --format is given."""
    found = []
    for p in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(folder).parts) or not p.is_file():
            continue
        kind = _kind(p, keypoint_format)
        if kind is not None and (kind != "json" or keypoint_format is not None):
            found.append((p, kind))
    return found


def resolve_inputs(specs: Sequence[str], keypoint_format: str | None = None) -> tuple[list[InferInput], list[str]]:
    """Expand the command line into inputs, sorted and without duplicates, plus one error line per bad spec.

    Files are taken by their suffix (videos, .npz, .h5/.hdf5, .json; an unknown suffix is tried as a video);
    folders are searched recursively for every kind of input (videos, .npz, .h5/.hdf5, and .json with
    ``keypoint_format``; an OpenPose folder with ``--format openpose`` is one input); glob patterns match videos and
    prepared inputs. Two inputs with the same name (``a.mp4`` and ``a.npz``) would write the same result folder
    ``OUT/a``: the second in sorted order is an error line, not an input.
    """
    found: dict[Path, InferInput] = {}
    errors: list[str] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir() and _kind(path, keypoint_format) is None:
            matches = _folder_inputs(path, keypoint_format)
            if not matches:
                errors.append(f"{spec}: no inputs in this folder ({FOLDER_KINDS})")
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
    inputs: list[InferInput] = []
    by_name: dict[str, InferInput] = {}
    for item in sorted(found.values(), key=lambda i: str(i.path)):
        first = by_name.setdefault(item.name, item)
        if first is item:
            inputs.append(item)
        else:
            errors.append(f"{item.path}: same name as {first.path}; both would write the result folder "
                          f"'{item.name}' (rename one, or give them separate --out folders)")  # fmt: skip
    return inputs, errors


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


def load_people(
    item: InferInput, options: InferOptions, on_frame: Callable[[], None] | None = None
) -> tuple[list[tuple[str, KeypointSequence]], dict[str, Any] | None]:
    """The 2D keypoint sequences of one input, each with its output name, and for a video who was found.

    Returns:
        ([(name, sequence)], people): name "" for a single sequence, else ``p<track id>``; ``people`` (videos only,
        else None): {"tracks": every person tracked, "selected": track ids kept, "selection": how they were chosen}.
    """
    from mocli.keypoints import create_detector, extract_people, import_keypoints, load_keypoints_npz

    people = None
    if item.kind == "video":
        detector = create_detector(options.detector, options.detector_options)
        try:
            found = extract_people(
                item.path,
                detector,
                person=options.person,
                max_gap=options.max_gap,
                max_frames=options.max_frames,
                on_frame=on_frame,
            )
        finally:
            detector.close()
        seqs = found.sequences
        people = {"tracks": found.tracks, "selected": found.selected, "selection": found.selection}
    elif item.kind == "npz":
        seqs = [load_keypoints_npz(item.path)]
    elif item.kind == "json":
        if options.keypoint_format is None:
            raise InputError(f"{item.path}: a keypoint JSON needs --format alphapose|coco|openpose|mmpose")
        seqs = import_keypoints(item.path, options.keypoint_format, person=options.person, max_gap=options.max_gap)
    elif item.kind == "h5":
        return _h5_sequences(item.path), None
    else:
        raise InputError(f"{item.path}: unsupported input")
    if len(seqs) == 1:
        return [("", seqs[0])], people
    return [(f"p{s.track_id}", s) for s in seqs], people


def _h5_sequences(path: Path) -> list[tuple[str, KeypointSequence]]:
    from mocli.data.h5 import open_dataset
    from mocli.keypoints.sequence import drop_unusable

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
                out.append((name, drop_unusable(seq, f"{path.name}:{name}")))
    if not out:
        raise InputError(f"{path}: no sequence with 2D keypoints ('keypoints2d') in this HDF5 file")
    return out


def input_camera(image_size: tuple[int, int], options: InferOptions) -> Camera | None:
    """The camera of one input (every person of a video shares it): focal length from ``options.focal`` (pixels),
    else ``options.fov`` (degrees), else ``mocli.trajectory.DEFAULT_FOV_DEG``. None when the image size is unknown
    (keypoints without it): no trajectory then."""
    if not (image_size[0] > 0 and image_size[1] > 0):
        return None
    try:
        return make_camera(image_size, focal=options.focal, fov=options.fov)
    except ValueError as e:
        raise MocliError(f"camera: {e}") from None


def camera_summary(camera: Camera | None) -> dict[str, Any] | None:
    """summary.json's "camera": the pinhole camera the trajectories were solved with (None: no trajectory)."""
    if camera is None:
        return None
    return {"focal_px": round(camera.focal_px, 3), "fov_deg": round(camera.fov_deg, 3),
            "principal_point_px": [camera.cx, camera.cy], "focal_source": camera.source}  # fmt: skip


def run_pose3d(
    seq: KeypointSequence,
    model: torch.nn.Module,
    lift: LiftOptions,
    device: torch.device | str,
    camera: Camera | None = None,
) -> MotionResult:
    """3D joints (metres, root-relative, camera axes) for every frame of a keypoint sequence; with a ``camera``,
    also the pelvis trajectory in that camera's frame (``MotionResult.root`` (T,3) metres, NaN where missing).
    MediaPipe's own 3D pose (``extras['world_landmarks33']``), where the sequence has it, is averaged into the
    lifted joints with weight ``lift.detector_3d`` (``mocli.lift.fuse_detector_3d``); the weight of each frame is
    kept as ``extras['detector_3d_weight']`` (T,) (NaN where not mixed)."""
    present = seq.valid | seq.interpolated
    if not present.any():
        raise InputError("no frame with the person")
    world = seq.extras.get("world_landmarks33")  # MediaPipe's own 3D pose, (T,33,3) metres, NaN where missing
    detector_3d = to_h36m(np.asarray(world, np.float64), "mediapipe", conf=False) if world is not None else None
    lifted = lift_sequence(model, seq.keypoints, lift, device=device, fps=seq.fps, detector_3d=detector_3d)
    joints = lifted.joints
    joints[~present] = np.nan
    extras = {"world_landmarks33": world} if world is not None else {}
    weight = np.where(present, lifted.detector_3d_weight, np.nan).astype(np.float32)
    if np.isfinite(weight).any():
        extras["detector_3d_weight"] = weight
    root = None
    if camera is not None:
        root = estimate_trajectory(seq.keypoints, joints, camera, fps=seq.fps)
    return MotionResult(
        joints3d=joints,
        keypoints2d=seq.keypoints,
        fps=seq.fps,
        image_size=seq.image_size,
        missing=np.flatnonzero(~present),
        extras=extras,
        root=root,
    )


# ------------------------------------------------------------------------------------------------ outputs


def joints_file(unit: str) -> str:
    """File name of one person's/sequence's joints in a result folder: joints3d.npz, or joints3d_<unit>.npz."""
    return f"joints3d_{unit}.npz" if unit else "joints3d.npz"


def write_summary(out_dir: Path, summary: dict[str, Any]) -> Path:
    """summary.json, written last: its presence marks the folder as a complete result."""
    return write_json(summary, out_dir / SUMMARY)


def _mediapipe_model(options: InferOptions) -> str | None:
    """The landmark model of a MediaPipe detector (full | heavy), None for the others."""
    if not options.detector.startswith("mediapipe"):
        return None
    return getattr(options.detector_options, "mediapipe_model", "full")


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
        "mediapipe_model": _mediapipe_model(options) if item.kind == "video" else None,
        "flip_tta": options.lift.flip,
        "upright_tta": options.lift.upright,
        "bones": options.lift.bones,
        "precision": options.lift.precision,
        "clip_len": options.lift.clip_len,
        "max_lift_fps": options.lift.max_fps,
        "detector_3d": options.lift.detector_3d,
        "detector_3d_spread_m": options.lift.detector_3d_spread_m,
        "limb_depth": options.lift.limb_depth,
        "units": "metres, root-relative, camera axes (x right, y down, z forward)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
