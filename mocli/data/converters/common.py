"""Shared pieces of the dataset converters: options, tasks, input discovery, resampling, split rules."""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import re
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mocli.data.rigs import UNIT_SCALES, rotate_to_y_up
from mocli.errors import InputError

__all__ = [
    "TRUNKS",
    "check_rig_options",
    "ConvertOptions",
    "Task",
    "SourceFiles",
    "collect_sources",
    "resample_linear",
    "resample_nearest",
    "split_mod10",
    "unique_names",
    "native_fps_for",
    "ARCHIVE_SUFFIXES",
]

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tar")


TRUNKS = ("rig", "detector")  # ConvertOptions.trunk


@dataclass
class ConvertOptions:
    """Options of ``mocli prepare dataset`` (each converter reads the ones it needs).

    Attributes:
        fps: resample every sequence to this frame rate (None: keep the native rate).
        units: BVH units: 'auto' (detect from the body size), 'm', 'cm' or 'mm'.
        up_axis: BVH up axis: 'auto' (detect) or 'y', 'z', '-y', ...; output is always +Y up.
        split_rule: 'native' (the dataset's own split), 'mod10' (sorted paths per source, index % 10 == 9 is
            'val'), or 'train' (everything train); None picks the converter's default.
        source: name for the ``source`` attribute instead of the folder/archive name.
        native_fps: glob pattern on the relative path -> true frame rate, for files whose header is wrong
            (CMU salsa says 120 but is 60: ``{"salsa/*": 60}``).
        layout: layout of 2D keypoints in the input ('coco', 'h36m', 'halpe', ...) where it is not known.
        smpl_model: SMPL or SMPL-H model file (.npz/.pkl) for AMASS.
        regressor: (17, V) .npy regressor from mesh vertices to H36M joints, for AMASS.
        benchmark: NTU benchmark whose split fills ``split`` ('xsub', 'xview', 'xset').
        min_frames: sequences shorter than this are skipped (with a log line).
        trunk: BVH/ASF pelvis, spine and thorax: 'detector' (the default: derived from the hips and shoulders as
            from a detector's joints, ``mocli.skeleton.derive_trunk``, what the shipped lifter trains on) or 'rig'
            (the rig's own joints).
    """

    fps: float | None = None
    units: str = "auto"
    up_axis: str = "auto"
    split_rule: str | None = None
    source: str | None = None
    native_fps: dict[str, float] = field(default_factory=dict)
    layout: str | None = None
    smpl_model: Path | None = None
    regressor: Path | None = None
    benchmark: str = "xsub"
    min_frames: int = 1
    trunk: str = "detector"


def check_rig_options(opts: ConvertOptions) -> None:
    """One-line InputErrors for the options of the BVH and ASF/AMC converters (units, up axis, trunk), before any
    file is read."""
    if opts.units not in ("auto", *UNIT_SCALES):
        raise InputError(f"unknown units {opts.units!r}; use auto, m, cm or mm")
    if opts.up_axis != "auto":
        rotate_to_y_up(np.zeros(3), opts.up_axis)  # InputError for anything but x, y, z with an optional sign
    if opts.trunk not in TRUNKS:
        raise InputError(f"unknown trunk {opts.trunk!r}; use rig or detector")


@dataclass
class Task:
    """One input file to convert (it may hold one sequence or many).

    Attributes:
        path: the file.
        relpath: its path relative to the source root (POSIX), for names, split and messages.
        source: the source (dataset/archive) name.
        name: the sequence name, for one-sequence-per-file kinds.
        split: a split fixed at planning time (per-file mod10), or None.
        meta: converter-specific extras (e.g. Bandai label files).
    """

    path: Path
    relpath: str
    source: str
    name: str = ""
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceFiles:
    """The input files of one source: a folder, an (extracted) archive, or loose files sharing a parent."""

    name: str
    root: Path
    files: list[Path]

    def relpath(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def _is_archive(path: Path) -> bool:
    return path.is_file() and any(path.name.lower().endswith(s) for s in ARCHIVE_SUFFIXES)


def _archive_stem(path: Path) -> str:
    name = path.name
    for s in ARCHIVE_SUFFIXES:
        if name.lower().endswith(s):
            return name[: -len(s)]
    return path.stem


def _extract(archive: Path, stack: contextlib.ExitStack) -> Path:
    """Extract a tar archive into a temporary folder that lives as long as ``stack``."""
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"mocli-{_archive_stem(archive)}-")))
    log.info("extracting %s to %s", archive.name, tmp)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise InputError(f"cannot extract {archive.name}: {e}") from None
    return tmp


def _find(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under ``root`` (recursive) with one of ``suffixes`` (case-insensitive), hidden files skipped, sorted by
    relative POSIX path."""
    found = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.name.lower().endswith(suffixes)
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def collect_sources(
    srcs: Iterable[Path], suffixes: tuple[str, ...], stack: contextlib.ExitStack, source: str | None = None
) -> list[SourceFiles]:
    """Resolve SRC arguments into sources with their input files (sorted by relative path).

    A folder (searched recursively) or a tar archive (extracted to a temporary folder kept open by ``stack``) is
    one source named after it; loose files form one source per parent folder. ``source`` renames every source.
    """
    groups: list[SourceFiles] = []
    loose: dict[Path, list[Path]] = {}
    for src in srcs:
        src = Path(src)
        if not src.exists():
            raise InputError(f"no such file or folder: {src}")
        if src.is_dir():
            groups.append(SourceFiles(source or src.resolve().name, src, _find(src, suffixes)))
        elif _is_archive(src):
            root = _extract(src, stack)
            groups.append(SourceFiles(source or _archive_stem(src), root, _find(root, suffixes)))
        else:
            if not src.name.lower().endswith(suffixes):
                raise InputError(f"{src.name}: expected a folder, a tar archive or a {'/'.join(suffixes)} file")
            loose.setdefault(src.resolve().parent, []).append(src.resolve())
    for parent, files in loose.items():
        groups.append(SourceFiles(source or parent.name, parent, sorted(set(files))))
    return groups


def native_fps_for(relpath: str, patterns: dict[str, float]) -> float | None:
    """The frame-rate override whose glob pattern matches ``relpath`` (first match), else None."""
    for pattern, fps in patterns.items():
        if fnmatch.fnmatch(relpath, pattern) or fnmatch.fnmatch(relpath, f"*/{pattern}"):
            return float(fps)
    return None


def resample_linear(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Resample a sequence in time by linear interpolation between neighbouring frames.

    Output frame k is at time k / fps_out, for every such time within the input's span [0, (T-1) / fps_in]; so
    30 -> 15 fps keeps frames 0, 2, 4, ... exactly (ceil(T / 2) frames).

    Args:
        x: (T, ...) values (positions in any unit).
    Returns:
        (T', ...) float array, T' = floor((T - 1) * fps_out / fps_in + 1e-9) + 1.
    """
    num_frames = x.shape[0]
    if num_frames == 0 or fps_in == fps_out:
        return x.copy()
    count = int(np.floor((num_frames - 1) * fps_out / fps_in + 1e-9)) + 1
    t = np.arange(count) * (fps_in / fps_out)  # positions in input frames
    lo = np.clip(np.floor(t + 1e-9).astype(np.int64), 0, num_frames - 1)
    hi = np.minimum(lo + 1, num_frames - 1)
    w = np.clip(t - lo, 0.0, 1.0).reshape((-1,) + (1,) * (x.ndim - 1))
    return (1 - w) * x[lo] + w * x[hi]


def resample_nearest(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Like ``resample_linear`` but takes the nearest input frame (for values that must not be blended, such as
    axis-angle rotations). (T, ...) -> (T', ...)."""
    num_frames = x.shape[0]
    if num_frames == 0 or fps_in == fps_out:
        return x.copy()
    count = int(np.floor((num_frames - 1) * fps_out / fps_in + 1e-9)) + 1
    idx = np.clip(np.rint(np.arange(count) * (fps_in / fps_out)).astype(np.int64), 0, num_frames - 1)
    return x[idx]


def split_mod10(count: int) -> list[str]:
    """DATA.md's split for ``count`` sorted items: index % 10 == 9 is 'val', the rest 'train'."""
    return ["val" if i % 10 == 9 else "train" for i in range(count)]


def _safe(name: str) -> str:
    """An HDF5-safe sequence name: no '/', not '.' or '..'."""
    name = name.replace("/", ":")
    return name if name not in ("", ".", "..") else "_"


def unique_names(relpaths: list[tuple[str, str]]) -> list[str]:
    """Short unique sequence names for (source, relpath) pairs: the file stem where it is unique, else the relative
    path without suffix ('/' -> ':'), else 'source:relpath'."""
    stems = [_safe(re.sub(r"\.[^./]+$", "", Path(rel).name)) for _, rel in relpaths]
    paths = [_safe(re.sub(r"\.[^./]+$", "", rel)) for _, rel in relpaths]
    full = [f"{src}:{p}" for (src, _), p in zip(relpaths, paths, strict=True)]
    stem_counts, path_counts = Counter(stems), Counter(paths)
    return [
        s if stem_counts[s] == 1 else p if path_counts[p] == 1 else f
        for s, p, f in zip(stems, paths, full, strict=True)
    ]


def plan_files(srcs: list[Path], suffixes, opts, stack: contextlib.ExitStack) -> list[Task]:
    """One Task per source file (one clip each): split by ``opts.split_rule`` per source, unique sequence names."""
    tasks: list[Task] = []
    for group in collect_sources(srcs, suffixes, stack, opts.source):
        rels = [group.relpath(p) for p in group.files]
        splits = split_mod10(len(rels)) if opts.split_rule == "mod10" else ["train"] * len(rels)
        tasks += [
            Task(path=p, relpath=r, source=group.name, split=s)
            for p, r, s in zip(group.files, rels, splits, strict=True)
        ]
    for task, name in zip(tasks, unique_names([(t.source, t.relpath) for t in tasks]), strict=True):
        task.name = name
    return tasks
