"""BVH motion capture (Bandai Namco, CMU, ReActIdle, any rig with recognisable joint names) -> H36M-17 world joints.

Each .bvh file becomes one sequence: ``joints3d`` (T, 17, 3) metres, +Y up, world frame, at the native frame rate
or ``--fps``. Bandai label sidecars (``<stem>.json`` = {"content": i, "style": j}) become attributes, with the label
strings from ``dataset-N_content_label.txt`` beside the clip or ``../cfg/content_label.txt`` (the archive layout).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mocli.data.bvh import read_bvh
from mocli.data.converters.common import (
    ConvertOptions,
    Task,
    check_rig_options,
    native_fps_for,
    plan_files,
    resample_linear,
)
from mocli.data.h5 import Sequence
from mocli.data.rigs import bvh_to_h36m
from mocli.errors import InputError
from mocli.skeleton import derive_trunk

log = logging.getLogger(__name__)

SUFFIXES = (".bvh",)
SPLIT_RULES = ("mod10", "train")
DEFAULT_SPLIT_RULE = "mod10"


def plan(srcs: list[Path], opts: ConvertOptions, stack: contextlib.ExitStack) -> list[Task]:
    """One task per .bvh file; names unique, splits by DATA.md's rule over each source's sorted paths."""
    check_rig_options(opts)
    return plan_files(srcs, SUFFIXES, opts, stack)


def convert(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    """Read, map to H36M-17 (metres, +Y up) and resample one clip."""
    bvh = read_bvh(task.path)
    motion = bvh_to_h36m(bvh, units=opts.units, up_axis=opts.up_axis)
    fps_native = native_fps_for(task.relpath, opts.native_fps) or motion.fps
    joints = derive_trunk(motion.joints) if opts.trunk == "detector" else motion.joints
    fps = fps_native
    if opts.fps and opts.fps != fps_native:
        joints = resample_linear(joints, fps_native, opts.fps)
        fps = opts.fps
    if joints.shape[0] < opts.min_frames:
        log.info("%s: %d frames < --min-frames %d, skipped", task.relpath, joints.shape[0], opts.min_frames)
        return
    extra: dict[str, Any] = {
        "path": task.relpath,
        "fps_native": float(fps_native),
        "units_native": motion.units,
        "up_axis_native": motion.up_axis,
        "head_top": "virtual" if motion.mapping.virtual_head_top else "end_site",
        "trunk": opts.trunk,
    }
    labels = read_labels(task.path)
    extra.update(labels)
    folder = Path(task.relpath).parent.name
    yield Sequence(
        name=task.name,
        fps=fps,
        joints3d=joints,
        frame="world",
        up_axis="y",
        split=task.split or "train",
        source=task.source,
        action=str(labels.get("content_label", folder if folder not in ("", "data") else "")),
        extra=extra,
    )


def read_labels(bvh_path: Path) -> dict[str, Any]:
    """Bandai labels of a clip: {'content': i, 'style': j, 'content_label': 'walk', 'style_label': 'happy'} from the
    ``<stem>.json`` sidecar and the label lists (names found only when the lists are found); {} without a sidecar."""
    sidecar = bvh_path.with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{sidecar.name}: not readable JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{sidecar.name}: expected a JSON object like {{'content': 0, 'style': 0}}")
    out: dict[str, Any] = {}
    for key in ("content", "style"):
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, int):
            raise InputError(f"{sidecar.name}: field {key!r} must be an integer, got {value!r}")
        out[key] = value
        names = _label_list(bvh_path, key)
        if names is not None:
            if not 0 <= value < len(names):
                raise InputError(f"{sidecar.name}: field {key!r} = {value} is outside the {len(names)} labels")
            out[f"{key}_label"] = names[value]
    return out


def _label_list(bvh_path: Path, key: str) -> tuple[str, ...] | None:
    """Label strings for 'content' or 'style' of a Bandai clip, or None if no list is found."""
    m = re.match(r"(dataset-\d+)_", bvh_path.name)
    candidates = [bvh_path.parent / f"{key}_label.txt", bvh_path.parent.parent / "cfg" / f"{key}_label.txt"]
    if m:
        candidates.insert(0, bvh_path.parent / f"{m.group(1)}_{key}_label.txt")
    for path in candidates:
        if path.is_file():
            return _read_label_file(path)
    return None


@functools.lru_cache(maxsize=64)
def _read_label_file(path: Path) -> tuple[str, ...]:
    """Lines of a label list with the 'dataset-N_' prefix dropped ('dataset-1_walk' -> 'walk')."""
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return tuple(re.sub(r"^dataset-\d+_", "", ln) for ln in lines)
