"""Human3.6M in the two formats users have: MotionBERT's pkl and VideoPose3D's npz pair.

- ``h36m_sh_conf_cam_source_final.pkl``: {'train': {...}, 'test': {...}}, per frame joint_2d (N,17,2) px,
  confidence (N,17,1), joint3d_image (N,17,3) px, joints_2.5d_image (N,17,3) mm, 2.5d_factor (N,), camera_name,
  source (sequence name per frame), action. One sequence per consecutive run of ``source``; ``joints3d`` holds
  joints_2.5d_image in metres (frame 'image_2.5d'), ``joints3d_image`` and ``factor_2_5d`` the exact label the
  reference evaluates with.
- ``data_3d_h36m.npz`` (positions_3d: subject -> action -> (T,32,3) metres, world) with one or more
  ``data_2d_h36m_*.npz`` (positions_2d: subject -> action -> 4 cameras x (T,17,2) px): one sequence per subject,
  action and camera, the 32 mocap joints reduced to H36M-17 and rotated from Z-up to +Y up.

Split: the pkl's train/test keys; for the npz, subjects S9 and S11 are 'test', the others 'train'.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mocli.data.converters.common import ConvertOptions, Task, collect_sources, resample_linear
from mocli.data.h5 import Sequence
from mocli.data.rigs import rotate_to_y_up
from mocli.errors import InputError

log = logging.getLogger(__name__)

SUFFIXES = (".pkl", ".npz")
SPLIT_RULES = ("native", "mod10", "train")
DEFAULT_SPLIT_RULE = "native"

FPS = 50.0
H36M_32_TO_17 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
CAMERAS = ("54138969", "55011271", "58860488", "60457274")
TEST_SUBJECTS = ("S9", "S11")
# The three S9 recordings the reference leaves out of evaluation: (action, subaction).
REFERENCE_EXCLUDED_S9 = {(5, 2), (10, 2), (13, 1)}


def image_size(camera: str) -> tuple[int, int]:
    """(w, h) pixels of an H36M camera: 1000x1002 for 54138969 and 60457274, else 1000x1000."""
    return (1000, 1002) if camera in ("54138969", "60457274") else (1000, 1000)


def plan(srcs: list[Path], opts: ConvertOptions, stack: contextlib.ExitStack) -> list[Task]:
    """A task per pkl; for npz, a task per 2D file paired with the 3D file of the same source (or the 3D alone)."""
    tasks: list[Task] = []
    for group in collect_sources(srcs, SUFFIXES, stack, opts.source):
        pkls = [p for p in group.files if p.suffix.lower() == ".pkl"]
        tasks += [Task(path=p, relpath=group.relpath(p), source=group.name) for p in pkls]
        npzs = [p for p in group.files if p.suffix.lower() == ".npz"]
        files_3d = [p for p in npzs if "positions_3d" in _npz_keys(p)]
        files_2d = [p for p in npzs if "positions_2d" in _npz_keys(p)]
        if len(files_3d) > 1:
            raise InputError(f"{group.name}: more than one positions_3d npz ({', '.join(p.name for p in files_3d)})")
        path_3d = files_3d[0] if files_3d else None
        for p in files_2d:
            variant = re.sub(r"^data_2d_h36m_", "", p.stem) if len(files_2d) > 1 else ""
            meta = {"path_3d": path_3d, "variant": variant}
            tasks.append(Task(path=p, relpath=group.relpath(p), source=group.name, meta=meta))
        if path_3d is not None and not files_2d:
            tasks.append(Task(path=path_3d, relpath=group.relpath(path_3d), source=group.name, meta={"only_3d": True}))
    return tasks


def _npz_keys(path: Path) -> list[str]:
    try:
        with np.load(path, allow_pickle=True) as z:
            return list(z.files)
    except (OSError, ValueError) as e:
        raise InputError(f"{path.name}: not a readable npz ({e})") from None


def convert(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    if task.path.suffix.lower() == ".pkl":
        yield from _convert_pkl(task, opts)
    else:
        yield from _convert_npz(task, opts)


# --- MotionBERT pkl ---------------------------------------------------------------------------------------------

_PKL_FIELDS = ("joint_2d", "confidence", "source")
_PKL_OPTIONAL = ("joint3d_image", "joints_2.5d_image", "2.5d_factor", "camera_name", "action")


def _load_pickle(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ModuleNotFoundError) as e:
        raise InputError(f"{path.name}: not a readable pickle ({type(e).__name__}: {e})") from None


def _check_split_dict(part: Any, name: str, key: str) -> dict[str, np.ndarray]:
    """The arrays of one split of the pkl, checked for presence and equal length N."""
    if not isinstance(part, dict):
        raise InputError(f"{name}: [{key!r}] must be a dict of per-frame arrays")
    missing = [f for f in _PKL_FIELDS if f not in part]
    if missing:
        raise InputError(f"{name}: [{key!r}] lacks field {missing[0]!r}")
    arrays = {f: np.asarray(part[f]) for f in _PKL_FIELDS + _PKL_OPTIONAL if f in part}
    n = len(arrays["source"])
    for f, a in arrays.items():
        if len(a) != n:
            raise InputError(f"{name}: [{key!r}][{f!r}] has {len(a)} frames but 'source' has {n}")
    j2d = arrays["joint_2d"]
    if j2d.ndim != 3 or j2d.shape[1:] != (17, 2):
        raise InputError(f"{name}: [{key!r}]['joint_2d'] has shape {j2d.shape}, expected (N, 17, 2)")
    return arrays


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of consecutive runs of equal values."""
    if len(labels) == 0:
        return []
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    bounds = np.concatenate([[0], cuts, [len(labels)]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _parse_source(source: str) -> dict[str, int]:
    """'s_09_act_05_subact_02_ca_01' -> {'subject': 9, 'act': 5, 'subact': 2, 'ca': 1} ({} if another format)."""
    m = re.match(r"s_(\d+)_act_(\d+)_subact_(\d+)_ca_(\d+)", source)
    return dict(zip(("subject", "act", "subact", "ca"), map(int, m.groups()), strict=True)) if m else {}


def _convert_pkl(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    data = _load_pickle(task.path)
    if not isinstance(data, dict) or not ({"train", "test"} & set(data)):
        raise InputError(f"{task.path.name}: expected a dict with 'train' and/or 'test' (MotionBERT h36m pkl)")
    parts = {key: _check_split_dict(data[key], task.path.name, key) for key in ("train", "test") if key in data}
    for key, arrays in parts.items():
        sources = arrays["source"].astype(str)
        for a, b in _runs(sources):
            yield _pkl_sequence(arrays, a, b, str(sources[a]), key, task, opts)


def _pkl_sequence(arrays: dict[str, np.ndarray], a: int, b: int, source: str, split: str, task: Task,
                  opts: ConvertOptions) -> Sequence:  # fmt: skip
    conf = arrays["confidence"][a:b].reshape(b - a, 17, 1)
    kp2d = np.concatenate([arrays["joint_2d"][a:b], conf], axis=-1)
    camera = str(arrays["camera_name"][a]) if "camera_name" in arrays else ""
    ids = _parse_source(source)
    extra: dict[str, Any] = {k: v for k, v in ids.items() if k != "subject"}
    if ids.get("subject") == 9 and (ids.get("act"), ids.get("subact")) in REFERENCE_EXCLUDED_S9:
        extra["reference_excluded"] = True
    out: dict[str, Any] = {"keypoints2d": kp2d}
    if "joints_2.5d_image" in arrays:
        out["joints3d"] = arrays["joints_2.5d_image"][a:b] / 1000.0
    if "joint3d_image" in arrays:
        out["joints3d_image"] = arrays["joint3d_image"][a:b]
    if "2.5d_factor" in arrays:
        out["factor_2_5d"] = arrays["2.5d_factor"][a:b].reshape(b - a)
    fps = FPS
    if opts.fps and opts.fps != FPS:
        out = {k: resample_linear(np.asarray(v, dtype=np.float64), FPS, opts.fps) for k, v in out.items()}
        fps = opts.fps
    return Sequence(
        name=source,
        fps=fps,
        **out,
        frame="image_2.5d",
        up_axis=None,
        split=split if opts.split_rule == "native" else "train",
        source=task.source,
        subject=f"S{ids['subject']}" if "subject" in ids else "",
        action=str(arrays["action"][a]) if "action" in arrays else "",
        camera=camera,
        image_size=image_size(camera) if camera in CAMERAS else None,
        extra=extra,
    )


# --- VideoPose3D npz --------------------------------------------------------------------------------------------


def _npz_dict(path: Path, key: str) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=True) as z:
            value = z[key].item()
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path.name}: cannot read {key!r} ({e})") from None
    if not isinstance(value, dict):
        raise InputError(f"{path.name}: {key!r} must hold a dict subject -> action -> arrays")
    return value


def _world_17(pos32: np.ndarray, where: str) -> np.ndarray:
    """(T, 32, 3) metres Z-up world -> (T, 17, 3) metres +Y up."""
    pos32 = np.asarray(pos32)
    if pos32.ndim != 3 or pos32.shape[1:] != (32, 3):
        raise InputError(f"{where}: positions_3d has shape {pos32.shape}, expected (T, 32, 3)")
    return rotate_to_y_up(pos32[:, H36M_32_TO_17], "+z")


def _convert_npz(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    name = task.path.name
    path_3d = task.path if task.meta.get("only_3d") else task.meta.get("path_3d")
    data_3d = _npz_dict(path_3d, "positions_3d") if path_3d is not None else None
    if task.meta.get("only_3d"):
        for subject, actions in sorted(data_3d.items()):  # type: ignore[union-attr]
            for action, pos32 in sorted(actions.items()):
                joints = _world_17(pos32, f"{name}[{subject}][{action}]")
                yield _npz_sequence(f"{subject}:{action}", task, opts, subject, action, "", None, joints)
        return
    data_2d = _npz_dict(task.path, "positions_2d")
    suffix = f"@{task.meta['variant']}" if task.meta.get("variant") else ""
    for subject, actions in sorted(data_2d.items()):
        for action, cams in sorted(actions.items()):
            joints = None
            if data_3d is not None:
                if subject not in data_3d or action not in data_3d[subject]:
                    log.warning("%s: no 3D for %s %s; 2D only", name, subject, action)
                else:
                    joints = _world_17(data_3d[subject][action], f"{path_3d.name}[{subject}][{action}]")
            for c, kp in enumerate(cams):
                kp = np.asarray(kp)
                if kp.ndim != 3 or kp.shape[1:] != (17, 2):
                    raise InputError(f"{name}: positions_2d[{subject}][{action}][{c}] has shape {kp.shape}, "
                                     "expected (T, 17, 2)")  # fmt: skip
                camera = CAMERAS[c] if c < len(CAMERAS) else str(c)
                seq_name = f"{subject}:{action}:{camera}{suffix}"
                yield _npz_sequence(seq_name, task, opts, subject, action, camera, kp, joints)


def _npz_sequence(name: str, task: Task, opts: ConvertOptions, subject: str, action: str, camera: str,
                  kp: np.ndarray | None, joints: np.ndarray | None) -> Sequence:  # fmt: skip
    """One sequence; 2D and 3D trimmed to the shorter of the two (VideoPose3D does the same)."""
    out: dict[str, np.ndarray] = {}
    if kp is not None:
        out["keypoints2d"] = np.concatenate([kp, np.ones(kp.shape[:-1] + (1,))], axis=-1)
    if joints is not None:
        out["joints3d"] = joints
    length = min(len(v) for v in out.values())
    out = {k: v[:length] for k, v in out.items()}
    fps = FPS
    if opts.fps and opts.fps != FPS:
        out = {k: resample_linear(v, FPS, opts.fps) for k, v in out.items()}
        fps = opts.fps
    split = "test" if subject in TEST_SUBJECTS else "train"
    return Sequence(
        name=name,
        fps=fps,
        **out,
        frame="world",
        up_axis="y",
        split=split if opts.split_rule == "native" else "train",
        source=task.source,
        subject=subject,
        action=action,
        camera=camera,
        image_size=image_size(camera) if camera in CAMERAS else None,
        extra={"up_axis_native": "+z"},
    )
