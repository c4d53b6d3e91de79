"""MotionBERT mesh pkl (mesh_det_pw3d.pkl, mesh_det_h36m.pkl) -> 2D keypoints + SMPL parameters.

Input: {'train': {...}, 'test': {...}} (or one such dict without the split level, taken as train), per frame
joint_2d (N,17,2) px, confidence (N,17,1), source (N,) sequence names, smpl_pose (N,72) axis-angle,
smpl_shape (N,10); optional img_hw (N,2). One sequence per consecutive run of ``source``. ``--layout`` says which
17-joint layout joint_2d uses (default h36m; coco is converted). The frame rate is not in the file: 30 unless
``--native-fps`` says otherwise (3DPW is 30, Human3.6M 50).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mocli.data.converters.common import ConvertOptions, Task, collect_sources, native_fps_for, resample_linear
from mocli.data.converters.h36m import _load_pickle, _runs
from mocli.data.h5 import Sequence
from mocli.errors import InputError
from mocli.skeleton import to_h36m

SUFFIXES = (".pkl",)
SPLIT_RULES = ("native", "mod10", "train")
DEFAULT_SPLIT_RULE = "native"
DEFAULT_FPS = 30.0
_FIELDS = ("joint_2d", "confidence", "source", "smpl_pose", "smpl_shape")


def plan(srcs: list[Path], opts: ConvertOptions, stack: contextlib.ExitStack) -> list[Task]:
    return [
        Task(path=p, relpath=g.relpath(p), source=g.name)
        for g in collect_sources(srcs, SUFFIXES, stack, opts.source)
        for p in g.files
    ]


def _arrays(part: Any, where: str) -> dict[str, np.ndarray]:
    if not isinstance(part, dict):
        raise InputError(f"{where} must be a dict of per-frame arrays")
    for f in _FIELDS:
        if f not in part:
            raise InputError(f"{where} lacks field {f!r}")
    arrays = {f: np.asarray(part[f]) for f in _FIELDS + ("img_hw",) if f in part}
    n = len(arrays["source"])
    for f, a in arrays.items():
        if len(a) != n:
            raise InputError(f"{where}[{f!r}] has {len(a)} frames but 'source' has {n}")
    if arrays["joint_2d"].ndim != 3 or arrays["joint_2d"].shape[2] != 2:
        raise InputError(f"{where}['joint_2d'] has shape {arrays['joint_2d'].shape}, expected (N, J, 2)")
    if arrays["smpl_pose"].reshape(n, -1).shape[1] != 72:
        raise InputError(f"{where}['smpl_pose'] has shape {arrays['smpl_pose'].shape}, expected (N, 72)")
    if arrays["smpl_shape"].reshape(n, -1).shape[1] != 10:
        raise InputError(f"{where}['smpl_shape'] has shape {arrays['smpl_shape'].shape}, expected (N, 10)")
    return arrays


def convert(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    data = _load_pickle(task.path)
    name = task.path.name
    if not isinstance(data, dict):
        raise InputError(f"{name}: expected a dict (MotionBERT mesh pkl)")
    parts = {k: data[k] for k in ("train", "test") if k in data} or {"train": data}
    fps_in = native_fps_for(task.relpath, opts.native_fps) or DEFAULT_FPS
    layout = opts.layout or "h36m"
    for split, part in parts.items():
        arrays = _arrays(part, f"{name}: [{split!r}]" if part is not data else name)
        sources = arrays["source"].astype(str)
        n = len(sources)
        joint_2d = arrays["joint_2d"]
        conf = arrays["confidence"].reshape(n, joint_2d.shape[1], 1)
        kp = np.concatenate([joint_2d, conf], axis=-1).astype(np.float32)
        kp = to_h36m(kp, layout) if layout != "h36m" else kp
        if kp.shape[1] != 17:
            raise InputError(f"{name}: joint_2d has {joint_2d.shape[1]} joints; pass --layout for non-H36M input")
        for a, b in _runs(sources):
            out = {
                "keypoints2d": kp[a:b],
                "smpl_pose": arrays["smpl_pose"][a:b].reshape(b - a, 72),
                "smpl_shape": arrays["smpl_shape"][a:b].reshape(b - a, 10),
            }
            fps = fps_in
            if opts.fps and opts.fps != fps_in:
                out["keypoints2d"] = resample_linear(out["keypoints2d"], fps_in, opts.fps)
                idx = np.clip(np.rint(np.arange(len(out["keypoints2d"])) * fps_in / opts.fps), 0, b - a - 1)
                out["smpl_pose"] = out["smpl_pose"][idx.astype(int)]
                out["smpl_shape"] = out["smpl_shape"][idx.astype(int)]
                fps = opts.fps
            hw = arrays["img_hw"][a] if "img_hw" in arrays else None
            yield Sequence(
                name=str(sources[a]),
                fps=fps,
                **out,
                split=split,
                source=task.source,
                image_size=(int(hw[1]), int(hw[0])) if hw is not None else None,
                extra={"layout_native": layout},
            )
