"""InstaVariety-style 2D tracks: one .npy per clip holding (T, J, 3) pixels + confidence (or (T, J, 2), conf 1).

This is mocli's documented assumption about preprocessed in-the-wild 2D data (InstaVariety ships TFRecords; export
each tracklet to one .npy). The layout comes from ``--layout`` or the joint count: 17 -> coco (the default for 17;
pass ``--layout h36m`` for H36M-ordered input), 26 -> halpe, 25 -> openpose, 33 -> mediapipe. The frame rate is not
in the files: 30 unless ``--native-fps`` says otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mocli.data.converters.common import (
    ConvertOptions,
    Task,
    native_fps_for,
    plan_files,
    resample_linear,
)
from mocli.data.h5 import Sequence
from mocli.errors import InputError
from mocli.skeleton import to_h36m

SUFFIXES = (".npy",)
SPLIT_RULES = ("mod10", "train")
DEFAULT_SPLIT_RULE = "mod10"
DEFAULT_FPS = 30.0
LAYOUT_BY_JOINTS = {17: "coco", 26: "halpe", 25: "openpose", 33: "mediapipe"}


def plan(srcs: list[Path], opts: ConvertOptions, stack: contextlib.ExitStack) -> list[Task]:
    return plan_files(srcs, SUFFIXES, opts, stack)


def convert(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    try:
        kp = np.load(task.path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"{task.path.name}: not a readable .npy array ({e})") from None
    if kp.ndim != 3 or kp.shape[2] not in (2, 3):
        raise InputError(f"{task.path.name}: array has shape {kp.shape}, expected (T, J, 3) pixels + confidence")
    kp = kp.astype(np.float32)
    if kp.shape[2] == 2:
        kp = np.concatenate([kp, np.ones(kp.shape[:2] + (1,), np.float32)], axis=-1)
    layout = opts.layout or LAYOUT_BY_JOINTS.get(kp.shape[1])
    if layout is None:
        raise InputError(f"{task.path.name}: {kp.shape[1]} joints; pass --layout (coco, h36m, halpe, ...)")
    try:
        kp2d = to_h36m(kp, layout)
    except ValueError as e:
        raise InputError(f"{task.path.name}: {e}") from None
    fps_in = native_fps_for(task.relpath, opts.native_fps) or DEFAULT_FPS
    fps = fps_in
    if opts.fps and opts.fps != fps_in:
        kp2d, fps = resample_linear(kp2d, fps_in, opts.fps), opts.fps
    if len(kp2d) < opts.min_frames:
        return
    yield Sequence(
        name=task.name,
        fps=fps,
        keypoints2d=kp2d,
        split=task.split or "train",
        source=task.source,
        extra={"path": task.relpath, "layout_native": layout},
    )
