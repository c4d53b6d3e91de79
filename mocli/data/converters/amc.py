"""ASF/AMC motion capture (HDM05, the CMU mocap database) -> H36M-17 world joints.

Each .amc file becomes one sequence: ``joints3d`` (T, 17, 3) metres, +Y up, world frame, at 120 fps (the files do
not carry a rate; ``--native-fps`` gives another) or ``--fps``. The skeleton is the .asf beside the clip: the one
whose name followed by '_' begins the clip's name (HDM_bk.asf for HDM_bk_hopBothLegs1hops_020_120.amc, 01.asf for
CMU's 01_01.amc; the longest such name wins), else the only .asf in the folder.

Names ``HDM_<actor>_<motion>_<take>_<fps>`` give subject (actor), action (motion) and take; CMU's
``<subject>_<take>`` gives subject and take; an HDM05 class folder (``train/4/...``) is kept as ``hdm05_class``.
Split rule ``native`` (the default): a 'train', 'val' or 'test' folder in the path decides; clips outside such
folders are split by ``mod10`` over their source's sorted paths.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from mocli.data.amc import read_amc
from mocli.data.asf import read_asf
from mocli.data.converters.common import (
    ConvertOptions,
    Task,
    check_rig_options,
    native_fps_for,
    plan_files,
    resample_linear,
    split_mod10,
)
from mocli.data.h5 import SPLITS, Sequence
from mocli.data.rigs import asf_to_h36m
from mocli.errors import InputError
from mocli.skeleton import derive_trunk

log = logging.getLogger(__name__)

SUFFIXES = (".amc",)
SPLIT_RULES = ("native", "mod10", "train")
DEFAULT_SPLIT_RULE = "native"
DEFAULT_FPS = 120.0

_HDM05 = re.compile(r"^HDM_(?P<subject>[A-Za-z]+)_(?P<action>.+)_(?P<take>\d+)_(?P<fps>\d+)$")
_CMU = re.compile(r"^(?P<subject>\d+)_(?P<take>\d+)$")


def native_split(relpath: str) -> str | None:
    """'train', 'val' or 'test' from the innermost folder of that name in ``relpath`` ('validation' -> 'val')."""
    for part in reversed(PurePosixPath(relpath).parts[:-1]):
        name = {"validation": "val"}.get(part.lower(), part.lower())
        if name in SPLITS:
            return name
    return None


def plan(srcs: list[Path], opts: ConvertOptions, stack: contextlib.ExitStack) -> list[Task]:
    """One task per .amc file, names unique; ``native`` splits from the folders, ``mod10`` for the rest."""
    check_rig_options(opts)
    tasks = plan_files(srcs, SUFFIXES, opts, stack)  # native: all 'train' for now
    if opts.split_rule != "native":
        return tasks
    unsplit: dict[str, list[Task]] = {}
    for task in tasks:
        split = native_split(task.relpath)
        if split is None:
            unsplit.setdefault(task.source, []).append(task)
        else:
            task.split = split
    for group in unsplit.values():  # already sorted by relative path
        for task, split in zip(group, split_mod10(len(group)), strict=True):
            task.split = split
    return tasks


def find_asf(amc_path: Path) -> Path:
    """The .asf skeleton of a clip, from its folder (see the module docstring).

    Raises:
        InputError: no .asf in the folder, or several and none named after the clip.
    """
    candidates = sorted(p for p in amc_path.parent.iterdir() if p.suffix.lower() == ".asf" and p.is_file())
    stem = amc_path.stem
    named = [p for p in candidates if stem.lower().startswith(p.stem.lower() + "_")]
    if named:
        return max(named, key=lambda p: len(p.stem))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise InputError(f"{amc_path.name}: no .asf skeleton in its folder (expected e.g. HDM_bk.asf or 01.asf)")
    names = ", ".join(p.name for p in candidates[:6])
    raise InputError(f"{amc_path.name}: {len(candidates)} .asf files beside it and none named after it: {names}")


def clip_labels(relpath: str) -> dict[str, Any]:
    """Subject, action, take (and HDM05 class folder) from a clip's path; {} for names of no known pattern.

    'train/4/HDM_bk_hopBothLegs1hops_020_120.amc' -> {'subject': 'bk', 'action': 'hopBothLegs1hops', 'take': 20,
    'hdm05_class': 4}; '01/01_03.amc' -> {'subject': '01', 'take': 3}.
    """
    path = PurePosixPath(relpath)
    hdm = _HDM05.match(path.stem)
    if hdm:
        out: dict[str, Any] = {"subject": hdm["subject"], "action": hdm["action"], "take": int(hdm["take"])}
        if path.parent.name.isdigit():
            out["hdm05_class"] = int(path.parent.name)
        return out
    cmu = _CMU.match(path.stem)
    return {"subject": cmu["subject"], "take": int(cmu["take"])} if cmu else {}


def convert(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    """Read the clip and its skeleton, map to H36M-17 (metres, +Y up) and resample."""
    asf_path = find_asf(task.path)
    asf = read_asf(asf_path)
    amc = read_amc(task.path, asf)
    fps_native = native_fps_for(task.relpath, opts.native_fps) or DEFAULT_FPS
    motion = asf_to_h36m(asf, amc, fps=fps_native, units=opts.units, up_axis=opts.up_axis)
    joints = derive_trunk(motion.joints) if opts.trunk == "detector" else motion.joints
    fps = fps_native
    if opts.fps and opts.fps != fps_native:
        joints, fps = resample_linear(joints, fps_native, opts.fps), opts.fps
    if joints.shape[0] < opts.min_frames:
        log.info("%s: %d frames < --min-frames %d, skipped", task.relpath, joints.shape[0], opts.min_frames)
        return
    labels = clip_labels(task.relpath)
    extra: dict[str, Any] = {
        "path": task.relpath,
        "asf": asf_path.name,
        "fps_native": float(fps_native),
        "units_native": motion.units,
        "up_axis_native": motion.up_axis,
        "head_top": "virtual" if motion.mapping.virtual_head_top else "end_site",
        "trunk": opts.trunk,
        "first_frame": amc.first_frame,
    }
    extra.update({k: v for k, v in labels.items() if k not in ("subject", "action")})
    yield Sequence(
        name=task.name,
        fps=fps,
        joints3d=joints,
        frame="world",
        up_axis="y",
        split=task.split or "train",
        source=task.source,
        subject=labels.get("subject", ""),
        action=labels.get("action", ""),
        extra=extra,
    )
