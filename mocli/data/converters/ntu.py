"""NTU RGB+D 60/120 skeletons -> H36M-17 keypoints: PYSKL's pkl, or the dataset's raw Kinect ``.skeleton`` files.

PYSKL (ntu60_hrnet.pkl, ntu120_hrnet.pkl): {'split': {'xsub_train': [frame_dir, ...], 'xsub_val': [...],
'xview_train': ..., 'xset_train': ...}, 'annotations': [{'frame_dir', 'total_frames', 'img_shape' (h, w), 'keypoint'
(M, T, 17, 2) px COCO-17, 'keypoint_score' (M, T, 17), 'label'}]}. Each annotation becomes one sequence with
``keypoints2d`` (M, T, 17, 3) (all persons kept, COCO converted to H36M with scores in the same order), ``label``,
and the split of ``--benchmark`` (its _train list -> 'train', _val list -> 'val'); the other benchmarks' splits are
kept as ``split_<benchmark>`` attributes.

Raw skeletons (``*.skeleton`` files, folders or tar archives of them; read by ``mocli.data.ntu_skeleton``): each file
becomes one sequence named after the sample, with ``keypoints2d`` (M, T, 17, 3) colour-image pixels + confidence of
its (at most 2) main bodies, (0, 0, 0) where a body is absent; ``joints3d`` (T, 17, 3) metres of the main body in the
depth camera's frame (mocli's camera axes) when it is present in every frame; ``label`` = action - 1; and the split
of ``--benchmark`` from the name (``split_xsub``, ``split_xview``, ``split_xset`` attributes for all three).
The dataset's list of samples with missing skeletons is read from a ``.txt`` given as a source, or from the ``.txt``
files with 'missing' in their name inside a given folder or archive; the samples it names are skipped (logged).

Videos are 30 fps.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mocli.data import ntu_skeleton as raw
from mocli.data.converters.common import ConvertOptions, SourceFiles, Task, collect_sources, resample_linear
from mocli.data.converters.h36m import _load_pickle
from mocli.data.h5 import Sequence
from mocli.errors import InputError
from mocli.skeleton import to_h36m

log = logging.getLogger(__name__)

SUFFIXES = (".pkl", ".skeleton")
SPLIT_RULES = ("native", "mod10", "train")
DEFAULT_SPLIT_RULE = "native"
FPS = raw.FPS
MAX_PERSONS = 2


@dataclass
class NtuInputs:
    """NTU inputs found in the sources: ``groups`` (their .pkl and .skeleton files) and ``missing`` (the sample names
    of the missing-skeleton lists)."""

    groups: list[SourceFiles]
    missing: set[str]

    def skeletons(self) -> Iterator[tuple[SourceFiles, Path]]:
        """(source, file) for every .skeleton file not named by a missing-skeleton list."""
        for g in self.groups:
            for p in g.files:
                if p.name.lower().endswith(".skeleton") and p.name[: -len(".skeleton")] not in self.missing:
                    yield g, p

    def skipped(self) -> list[str]:
        """The .skeleton files (relative paths) that a missing-skeleton list names."""
        return [
            g.relpath(p) for g in self.groups for p in g.files
            if p.name.lower().endswith(".skeleton") and p.name[: -len(".skeleton")] in self.missing
        ]  # fmt: skip


def collect_ntu(srcs: Iterable[Path], stack: contextlib.ExitStack, source: str | None = None) -> NtuInputs:
    """Find the NTU inputs of SRC arguments (files, folders, tar archives; see ``common.collect_sources``).

    A ``.txt`` SRC is a missing-skeleton list; inside folders and archives, ``.txt`` files with 'missing' in their
    name are (other ``.txt`` files are ignored).

    Raises:
        InputError: a missing source, an unsupported file, or a list line that is not a sample name.
    """
    srcs = [Path(s) for s in srcs]
    lists = [s for s in srcs if s.is_file() and s.name.lower().endswith(".txt")]
    groups = collect_sources([s for s in srcs if s not in lists], SUFFIXES + (".txt",), stack, source)
    for g in groups:
        found = [p for p in g.files if p.name.lower().endswith(".txt")]
        lists += [p for p in found if "missing" in p.name.lower()]
        g.files = [p for p in g.files if p not in found]
    missing: set[str] = set()
    for path in lists:
        missing |= raw.read_missing_list(path)
    return NtuInputs(groups, missing)


def plan(srcs: list[Path], opts: ConvertOptions, stack: contextlib.ExitStack) -> list[Task]:
    inputs = collect_ntu(srcs, stack, opts.source)
    skipped = inputs.skipped()
    if skipped:
        log.info("%d sample(s) named by the missing-skeleton list skipped (e.g. %s)", len(skipped), skipped[0])
    tasks = [
        Task(path=p, relpath=g.relpath(p), source=g.name)
        for g in inputs.groups
        for p in g.files
        if p.name.lower().endswith(".pkl")
    ]
    tasks += [Task(path=p, relpath=g.relpath(p), source=g.name, name=p.stem) for g, p in inputs.skeletons()]
    has_raw = any(t.path.name.lower().endswith(".skeleton") for t in tasks)
    if has_raw and opts.split_rule == "native" and opts.benchmark not in raw.BENCHMARKS:
        raise InputError(f"unknown NTU benchmark {opts.benchmark!r}; known: {', '.join(raw.BENCHMARKS)}")
    return tasks


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


def _name_fields(sample: raw.SampleName) -> dict[str, str]:
    """Setup S001, camera C002, subject P003, replication R002, action A013 of a sample name."""
    s = sample
    return {"setup": f"S{s.setup:03d}", "camera": f"C{s.camera:03d}", "subject": f"P{s.performer:03d}",
            "replication": f"R{s.replication:03d}", "action": f"A{s.action:03d}"}  # fmt: skip


def _parse_frame_dir(frame_dir: str) -> dict[str, str]:
    """'S001C002P003R002A013' -> its fields (``_name_fields``); {} for another name."""
    try:
        return _name_fields(raw.parse_sample_name(frame_dir))
    except InputError:
        return {}


def convert(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    if task.path.name.lower().endswith(".skeleton"):
        yield from _skeleton_sequence(task, opts)
        return
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


def _resample_gaps(x: np.ndarray, fps_out: float) -> np.ndarray:
    """``resample_linear`` of (T, ...) values with NaN where missing: an output value is NaN unless every input it
    blends with a non-zero weight is finite."""
    ok = np.isfinite(x)
    values = resample_linear(np.where(ok, x, 0.0), FPS, fps_out)
    weight = resample_linear(ok.astype(np.float64), FPS, fps_out)
    return np.where(weight > 1 - 1e-9, values, np.nan)


def _skeleton_sequence(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    """One raw ``.skeleton`` file -> one sequence (none when shorter than ``opts.min_frames``)."""
    sample = raw.parse_sample_name(task.path.name[: -len(".skeleton")])
    skel = raw.read_skeleton(task.path)
    bodies = raw.main_bodies(skel, MAX_PERSONS, task.path.name)
    kp2d = raw.h36m_keypoints(bodies)  # (M, T, 17, 3) pixels + confidence, NaN where absent
    j3d = raw.camera_joints(bodies[0])  # (T, 17, 3) metres, NaN where absent
    fps = FPS
    if opts.fps and opts.fps != FPS:
        kp2d = np.stack([_resample_gaps(p, opts.fps) for p in kp2d])
        j3d, fps = _resample_gaps(j3d, opts.fps), opts.fps
    if kp2d.shape[1] < opts.min_frames:
        log.info("%s: %d frames < --min-frames %d, skipped", task.relpath, kp2d.shape[1], opts.min_frames)
        return
    if not np.isfinite(j3d).all():
        gaps = int((~np.isfinite(j3d).all(axis=(1, 2))).sum())
        log.info("%s: the main body is absent (or not finite) in %d of %d frames: no joints3d", task.relpath, gaps,
                 len(j3d))  # fmt: skip
        j3d = None
    fields = _name_fields(sample)
    yield Sequence(
        name=sample.name,
        fps=fps,
        keypoints2d=raw.fill_missing(kp2d),
        joints3d=None if j3d is None else j3d.astype(np.float32),
        frame="camera",
        up_axis=None,
        split=sample.split(opts.benchmark) if opts.split_rule == "native" else "train",
        source=task.source,
        subject=fields["subject"],
        action=fields["action"],
        camera=fields["camera"],
        image_size=raw.IMAGE_SIZE,
        label=sample.label,
        extra={
            **{f"split_{b}": sample.split(b) for b in raw.BENCHMARKS},
            "setup": fields["setup"], "replication": fields["replication"], "bodies": len(skel.bodies),
        },
    )  # fmt: skip
