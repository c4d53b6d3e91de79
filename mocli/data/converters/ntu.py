"""NTU RGB+D 60/120 2D skeletons in PYSKL's pkl (ntu60_hrnet.pkl, ntu120_hrnet.pkl) -> H36M-17 keypoints.

Input: {'split': {'xsub_train': [frame_dir, ...], 'xsub_val': [...], 'xview_train': ..., 'xset_train': ...},
'annotations': [{'frame_dir', 'total_frames', 'img_shape' (h, w), 'keypoint' (M, T, 17, 2) px COCO-17,
'keypoint_score' (M, T, 17), 'label'}]}. Each annotation becomes one sequence with ``keypoints2d`` (M, T, 17, 3)
(all persons kept, COCO converted to H36M with scores in the same order), ``label``, and the split of
``--benchmark`` (its _train list -> 'train', _val list -> 'val'); the other benchmarks' splits are kept as
``split_<benchmark>`` attributes. Videos are 30 fps.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mocli.data.converters.common import ConvertOptions, Task, collect_sources, resample_linear
from mocli.data.converters.h36m import _load_pickle
from mocli.data.h5 import Sequence
from mocli.errors import InputError
from mocli.skeleton import to_h36m

log = logging.getLogger(__name__)

SUFFIXES = (".pkl",)
SPLIT_RULES = ("native", "mod10", "train")
DEFAULT_SPLIT_RULE = "native"
FPS = 30.0


def plan(srcs: list[Path], opts: ConvertOptions, stack: contextlib.ExitStack) -> list[Task]:
    return [
        Task(path=p, relpath=g.relpath(p), source=g.name)
        for g in collect_sources(srcs, SUFFIXES, stack, opts.source)
        for p in g.files
    ]


def _benchmark_splits(split: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{'xsub': {frame_dir: 'train' | 'val'}, ...} from PYSKL's split lists."""
    out: dict[str, dict[str, str]] = {}
    for key, names in split.items():
        bench, _, part = str(key).rpartition("_")
        if part not in ("train", "val", "test") or not bench:
            continue
        table = out.setdefault(bench, {})
        for n in names:
            table[str(n)] = part
    return out


def _parse_frame_dir(frame_dir: str) -> dict[str, str]:
    """'S001C002P003R002A013' -> setup S001, camera C002, subject P003, replication R002, action A013."""
    m = re.match(r"(S\d+)(C\d+)(P\d+)(R\d+)(A\d+)", frame_dir)
    if not m:
        return {}
    return dict(zip(("setup", "camera", "subject", "replication", "action"), m.groups(), strict=True))


def convert(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    data = _load_pickle(task.path)
    name = task.path.name
    if not isinstance(data, dict) or "annotations" not in data:
        raise InputError(f"{name}: expected a dict with 'split' and 'annotations' (PYSKL pkl)")
    benches = _benchmark_splits(data.get("split") or {})
    chosen = benches.get(opts.benchmark) if opts.split_rule == "native" else None
    if opts.split_rule == "native" and chosen is None:
        raise InputError(f"{name}: no {opts.benchmark}_train/_val lists in 'split' (have: {', '.join(benches)})")
    skipped = 0
    for i, ann in enumerate(data["annotations"]):
        seq = _sequence(ann, i, task, opts, benches)
        if chosen is not None:
            if seq.name not in chosen:
                skipped += 1
                continue
            seq.split = chosen[seq.name]
        yield seq
    if skipped:
        log.info("%s: %d annotations are in neither %s list; skipped", name, skipped, opts.benchmark)


def pyskl_keypoints(ann: Any, where: str) -> np.ndarray:
    """One PYSKL annotation's persons as (M, T, 17, 3) H36M-17 pixels + confidence, after checking its fields.

    Raises:
        InputError: not a dict, a missing frame_dir / keypoint / label, or keypoint / keypoint_score shapes that are
            not (M, T, 17, 2) / (M, T, 17) (T >= 1).
    """
    if not isinstance(ann, dict):
        raise InputError(f"{where} is not a dict")
    for key in ("frame_dir", "keypoint", "label"):
        if key not in ann:
            raise InputError(f"{where} lacks field {key!r}")
    kp = np.asarray(ann["keypoint"], dtype=np.float32)
    if kp.ndim != 4 or kp.shape[2] != 17 or kp.shape[3] not in (2, 3) or kp.shape[1] < 1:
        raise InputError(f"{where}['keypoint'] has shape {kp.shape}, expected (M, T, 17, 2)")
    if kp.shape[3] == 2:
        score = np.asarray(ann.get("keypoint_score", np.ones(kp.shape[:3])), dtype=np.float32)
        if score.shape != kp.shape[:3]:
            raise InputError(f"{where}['keypoint_score'] has shape {score.shape}, expected {kp.shape[:3]}")
        kp = np.concatenate([kp, score[..., None]], axis=-1)
    return to_h36m(kp, "coco")


def _sequence(ann: Any, i: int, task: Task, opts: ConvertOptions, benches: dict[str, dict[str, str]]) -> Sequence:
    kp2d = pyskl_keypoints(ann, f"{task.path.name}: annotations[{i}]")  # (M, T, 17, 3)
    fps = FPS
    if opts.fps and opts.fps != FPS:
        kp2d = np.stack([resample_linear(p, FPS, opts.fps) for p in kp2d])
        fps = opts.fps
    frame_dir = str(ann["frame_dir"])
    ids = _parse_frame_dir(frame_dir)
    h_w = ann.get("img_shape")
    extra: dict[str, Any] = {f"split_{b}": t[frame_dir] for b, t in benches.items() if frame_dir in t}
    extra.update({k: v for k, v in ids.items() if k in ("setup", "replication")})
    return Sequence(
        name=frame_dir,
        fps=fps,
        keypoints2d=kp2d,
        split="train",
        source=task.source,
        subject=ids.get("subject", ""),
        action=ids.get("action", ""),
        camera=ids.get("camera", ""),
        image_size=(int(h_w[1]), int(h_w[0])) if h_w is not None else None,
        label=int(ann["label"]),
        extra=extra,
    )
