"""PoseTrack (2017/2018 COCO-style json, one file per video) -> per-track H36M-17 2D keypoint sequences.

Input: {'images': [{'id', 'file_name', 'frame_id'?, 'vid_id'?, 'width'?, 'height'?}], 'annotations':
[{'image_id', 'track_id', 'keypoints': [x, y, v] * 17}], 'categories': [{'keypoints': [names]}]}. Frames are the
images of a video in ``frame_id`` (else file name) order; each track becomes one sequence from its first to its
last frame, with confidence 1 where v > 0 and 0 elsewhere (missing frames included). PoseTrack's 17 points are
COCO's with head_bottom/head_top in the eye slots: H36M head (10) is head_top, H36M nose (9) is the nose where
labelled, else head_bottom. The frame rate is not in the files: 30 unless ``--native-fps`` says otherwise.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mocli.data.converters.common import ConvertOptions, Task, collect_sources, native_fps_for, resample_linear
from mocli.data.h5 import Sequence
from mocli.errors import InputError
from mocli.skeleton import to_h36m

SUFFIXES = (".json",)
SPLIT_RULES = ("native", "mod10", "train")
DEFAULT_SPLIT_RULE = "native"
DEFAULT_FPS = 30.0


def plan(srcs: list[Path], opts: ConvertOptions, stack: contextlib.ExitStack) -> list[Task]:
    return [
        Task(path=p, relpath=g.relpath(p), source=g.name)
        for g in collect_sources(srcs, SUFFIXES, stack, opts.source)
        for p in g.files
    ]


def _native_split(relpath: str) -> str:
    """'val' or 'test' when a folder of the path says so (PoseTrack's annotations/val/...), else 'train'."""
    parts = [p.lower() for p in Path(relpath).parts[:-1]]
    return "test" if "test" in parts else "val" if "val" in parts else "train"


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path.name}: not readable JSON ({e})") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise InputError(f"{path.name}: expected a PoseTrack json with 'images' and 'annotations'")
    return data


def _frame_order(images: list[dict[str, Any]], name: str) -> dict[str, list[Any]]:
    """Video id -> image ids in frame order."""
    videos: dict[str, list[tuple[Any, Any]]] = {}
    for k, img in enumerate(images):
        if "id" not in img:
            raise InputError(f"{name}: images[{k}] lacks field 'id'")
        key = img.get("frame_id", img.get("file_name", k))
        videos.setdefault(str(img.get("vid_id", Path(name).stem)), []).append((key, img["id"]))
    return {v: [i for _, i in sorted(items, key=lambda t: t[0])] for v, items in videos.items()}


def _to_h36m(kp: np.ndarray, names: list[str]) -> np.ndarray:
    """(T, 17, 3) PoseTrack/COCO keypoints -> (T, 17, 3) H36M-17."""
    out = to_h36m(kp, "coco")
    if "head_top" in names and "head_bottom" in names:
        top, bottom = names.index("head_top"), names.index("head_bottom")
        out[:, 10] = kp[:, top]
        nose_seen = kp[:, 0, 2:3] > 0
        out[:, 9] = np.where(nose_seen, kp[:, 0], kp[:, bottom])
    return out


def convert(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    name = task.path.name
    data = _load(task.path)
    images = {img["id"]: img for img in data["images"] if isinstance(img, dict) and "id" in img}
    order = _frame_order(data["images"], name)
    cats = data.get("categories") or [{}]
    kp_names = [str(n) for n in cats[0].get("keypoints", [])]
    fps_in = native_fps_for(task.relpath, opts.native_fps) or DEFAULT_FPS
    tracks: dict[tuple[str, int], dict[Any, np.ndarray]] = {}
    for k, ann in enumerate(data["annotations"]):
        for key in ("image_id", "track_id", "keypoints"):
            if key not in ann:
                raise InputError(f"{name}: annotations[{k}] lacks field {key!r}")
        kp = np.asarray(ann["keypoints"], dtype=np.float32)
        if kp.size != 51:
            raise InputError(f"{name}: annotations[{k}]['keypoints'] has {kp.size} values, expected 51 (17 x 3)")
        if ann["image_id"] not in images:
            raise InputError(f"{name}: annotations[{k}]['image_id'] {ann['image_id']} is not in 'images'")
        video = str(images[ann["image_id"]].get("vid_id", task.path.stem))
        kp = kp.reshape(17, 3)
        kp[:, 2] = (kp[:, 2] > 0).astype(np.float32)
        kp[kp[:, 2] == 0, :2] = 0.0
        tracks.setdefault((video, int(ann["track_id"])), {})[ann["image_id"]] = kp
    for (video, track), frames in sorted(tracks.items()):
        ids = order[video]
        where = {image_id: k for k, image_id in enumerate(ids)}
        pos = [where[i] for i in frames]
        first, last = min(pos), max(pos)
        kp = np.zeros((last - first + 1, 17, 3), dtype=np.float32)
        for image_id, p in zip(frames, pos, strict=True):
            kp[p - first] = frames[image_id]
        kp = _to_h36m(kp, kp_names)
        fps = fps_in
        if opts.fps and opts.fps != fps_in:
            kp, fps = resample_linear(kp, fps_in, opts.fps), opts.fps
        img = images[ids[first]]
        size = (int(img["width"]), int(img["height"])) if "width" in img and "height" in img else None
        yield Sequence(
            name=f"{video}:{track}",
            fps=fps,
            keypoints2d=kp,
            split=_native_split(task.relpath),
            source=task.source,
            image_size=size,
            extra={"track_id": track, "first_frame": first, "path": task.relpath},
        )
