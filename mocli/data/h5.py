"""mocli's dataset file: one HDF5 file of motion sequences (with `h5_schema`, the only modules that know the layout).

Layout (schema version 1, documented in docs/hdf5.md)::

    /                         attrs: mocli_schema=1, kind, source, created_by, joint_layout='h36m'
    /sequences/<name>         attrs: fps, num_frames, split, source, subject, action, camera, joint_layout,
                                     image_size (w, h) [optional], label [optional int], any extra labels
        keypoints2d           (T, 17, 3) or (M, T, 17, 3) float32: x, y pixels + confidence
        joints3d              (T, 17, 3) float32 metres; attrs frame ('world', 'camera' or 'image_2.5d'),
                                     up_axis (world frames: 'y' or 'z')
        joints3d_image        (T, 17, 3) float32: x, y pixels + depth in pixels (MotionBERT's H36M label)
        factor_2_5d           (T,) float32: millimetres per pixel at the root depth
        smpl_pose             (T, 72) float32 axis-angle radians
        smpl_shape            (T, 10) or (10,) float32 betas
        smpl_trans            (T, 3) float32 metres

Arrays are chunked along T and gzip-compressed. Writers go through ``atomic_path``: a file is complete or absent.
Readers open the file lazily (once per process, so DataLoader workers can share a ``Dataset``) and load arrays
only when asked.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mocli._version import __version__
from mocli.data.h5_schema import (
    ARRAYS,
    JOINT_LAYOUT,
    SCHEMA_VERSION,
    SPLITS,
    Sequence,
    attr_value,
    check_sequence,
    num_frames_of,
    py_value,
)
from mocli.errors import InputError
from mocli.utils.io import atomic_path

__all__ = [
    "SCHEMA_VERSION",
    "ARRAYS",
    "SPLITS",
    "Sequence",
    "SequenceRef",
    "Dataset",
    "DatasetWriter",
    "open_dataset",
    "write_dataset",
    "validate_dataset",
]

log = logging.getLogger(__name__)
_CHUNK_FRAMES = 512  # frames per HDF5 chunk along T (a writing detail, not the schema)


class DatasetWriter:
    """Write sequences into a new mocli HDF5 file, atomically.

    Usage::

        with DatasetWriter("bandai.h5", kind="bvh", source="bandai") as w:
            w.add(Sequence(name="clip1", fps=30.0, joints3d=j3d))

    The file appears at ``path`` only when the ``with`` block ends without an exception.
    """

    def __init__(self, path: str | os.PathLike, *, kind: str, source: str = "", compression: str | None = "gzip"):
        self.path = Path(path)
        self.kind = kind
        self.source = source
        self.compression = compression
        self._stack = contextlib.ExitStack()
        self._file: h5py.File | None = None

    def __enter__(self) -> DatasetWriter:
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._file = self._stack.enter_context(h5py.File(tmp, "w"))
        self._file.attrs.update(
            {
                "mocli_schema": SCHEMA_VERSION,
                "kind": self.kind,
                "source": self.source,
                "created_by": f"mocli {__version__}",
                "joint_layout": JOINT_LAYOUT,
            }
        )
        self._file.create_group("sequences")
        return self

    def __exit__(self, *exc: object) -> bool | None:
        self._file = None
        return self._stack.__exit__(*exc)

    @property
    def _group(self) -> h5py.Group:
        if self._file is None:
            raise RuntimeError("DatasetWriter is not open (use it in a with block)")
        return self._file["sequences"]

    def __contains__(self, name: str) -> bool:
        return name in self._group

    @property
    def names(self) -> list[str]:
        return list(self._group.keys())

    def set_root_attrs(self, **attrs: Any) -> None:
        """Add or replace file-level attributes (e.g. ``source`` once all inputs are known)."""
        self._file.attrs.update({k: attr_value(v) for k, v in attrs.items()})  # type: ignore[union-attr]

    def add(self, seq: Sequence) -> None:
        """Write one sequence (ValueError if it breaks the schema or its name is taken)."""
        check_sequence(seq)
        if seq.name in self._group:
            raise ValueError(f"sequence {seq.name!r} is already in {self.path.name}")
        grp = self._group.create_group(seq.name)
        for name, arr in seq.arrays().items():
            self._write_array(grp, name, np.asarray(arr, dtype=np.float32))
        if seq.joints3d is not None:
            grp["joints3d"].attrs["frame"] = seq.frame
            if seq.frame == "world" and seq.up_axis:
                grp["joints3d"].attrs["up_axis"] = seq.up_axis
        attrs: dict[str, Any] = {
            "fps": float(seq.fps),
            "num_frames": seq.num_frames,
            "split": seq.split,
            "source": seq.source,
            "subject": seq.subject,
            "action": seq.action,
            "camera": seq.camera,
            "joint_layout": seq.joint_layout,
        }
        if seq.image_size is not None:
            attrs["image_size"] = np.asarray(seq.image_size, dtype=np.int64)
        if seq.label is not None:
            attrs["label"] = int(seq.label)
        attrs.update({k: attr_value(v) for k, v in seq.extra.items()})
        grp.attrs.update(attrs)

    def _write_array(self, grp: h5py.Group, name: str, arr: np.ndarray) -> None:
        if arr.ndim == 0 or arr.size == 0 or (name == "smpl_shape" and arr.ndim == 1):
            grp.create_dataset(name, data=arr)
            return
        frame_axis = arr.ndim - 3 if name in ("keypoints2d", "joints3d", "joints3d_image") else 0
        chunks = list(arr.shape)
        chunks[frame_axis] = min(arr.shape[frame_axis], _CHUNK_FRAMES)
        if frame_axis == 1:
            chunks[0] = 1
        grp.create_dataset(
            name,
            data=arr,
            chunks=tuple(chunks),
            compression=self.compression,
            shuffle=self.compression is not None,
        )

    def update(self, name: str, **attrs: Any) -> None:
        """Change attributes of a written sequence (e.g. ``split='val'`` once all names are known)."""
        if "split" in attrs and attrs["split"] not in SPLITS:
            raise ValueError(f"split {attrs['split']!r} is not one of {SPLITS}")
        self._group[name].attrs.update({k: attr_value(v) for k, v in attrs.items()})

    def attrs(self, name: str) -> dict[str, Any]:
        """Attributes of a written sequence, as Python values."""
        return {k: py_value(v) for k, v in self._group[name].attrs.items()}

    def remove(self, name: str) -> None:
        """Delete a written sequence (used when a source file fails half way)."""
        del self._group[name]


def write_dataset(path: str | os.PathLike, sequences: Iterable[Sequence], *, kind: str, source: str = "") -> int:
    """Write ``sequences`` to a new file at ``path`` (atomically). Returns the number of sequences written."""
    count = 0
    with DatasetWriter(path, kind=kind, source=source) as w:
        for seq in sequences:
            w.add(seq)
            count += 1
    return count


@dataclass(frozen=True)
class SequenceRef:
    """A sequence in an open Dataset: metadata now, arrays on demand (``read(name)``, ``load()``)."""

    dataset: Dataset
    name: str
    attrs: dict[str, Any]
    array_names: tuple[str, ...]

    @property
    def num_frames(self) -> int:
        return int(self.attrs.get("num_frames", 0))

    @property
    def fps(self) -> float:
        return float(self.attrs["fps"])

    @property
    def split(self) -> str:
        return str(self.attrs.get("split", "train"))

    def shape(self, array: str) -> tuple[int, ...]:
        """Shape of one array, from the file's metadata (nothing is read)."""
        return tuple(self.dataset._group(self.name)[array].shape)

    def read(self, array: str, frames: slice | None = None) -> np.ndarray:
        """One array (float32), optionally a slice of frames (e.g. ``slice(0, 243)``) read from disk only."""
        if array not in self.array_names:
            raise KeyError(f"{self.name} has no {array!r} (it has {', '.join(self.array_names)})")
        dset = self.dataset._group(self.name)[array]
        if frames is None:
            return dset[()]
        if array == "keypoints2d" and dset.ndim == 4:
            return dset[:, frames]
        return dset[frames]

    def load(self) -> Sequence:
        """All arrays and metadata as a Sequence."""
        grp = self.dataset._group(self.name)
        arrays = {name: grp[name][()] for name in self.array_names}
        known = {f.name for f in fields(Sequence)}
        meta = {k: v for k, v in self.attrs.items() if k in known and k != "num_frames"}
        if "image_size" in meta:
            meta["image_size"] = tuple(int(x) for x in meta["image_size"])
        extra = {k: v for k, v in self.attrs.items() if k not in known and k != "num_frames"}
        if "joints3d" in grp:
            j3d_attrs = {k: py_value(v) for k, v in grp["joints3d"].attrs.items()}
            meta.update(frame=j3d_attrs.get("frame", "world"), up_axis=j3d_attrs.get("up_axis"))
        return Sequence(name=self.name, **arrays, **meta, extra=extra)


class Dataset:
    """A mocli HDF5 file opened for reading: iterate ``SequenceRef``s (optionally of one split).

    The HDF5 handle is opened on first use and again in a forked/spawned process (pickling drops it), so one
    Dataset can be handed to DataLoader workers.
    """

    def __init__(self, path: str | os.PathLike, split: str | None = None) -> None:
        self.path = Path(path)
        self.split = split
        self._file: h5py.File | None = None
        self._pid = -1
        f = self._h5()
        self.attrs: dict[str, Any] = {k: py_value(v) for k, v in f.attrs.items()}
        schema = self.attrs.get("mocli_schema")
        if schema is None or "sequences" not in f:
            raise InputError(f"{self.path.name} is not a mocli dataset (no mocli_schema attribute or /sequences)")
        if int(schema) > SCHEMA_VERSION:
            raise InputError(f"{self.path.name} was written by a newer mocli (schema {schema}); upgrade mocli")
        if split is not None and split not in SPLITS:
            raise InputError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        self._refs: dict[str, SequenceRef] | None = None

    def _h5(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as e:
                raise InputError(f"cannot open {self.path} as HDF5: {e}") from None
            self._pid = os.getpid()
        return self._file

    def _group(self, name: str) -> h5py.Group:
        return self._h5()["sequences"][name]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    @property
    def schema(self) -> int:
        return int(self.attrs["mocli_schema"])

    @property
    def kind(self) -> str:
        return str(self.attrs.get("kind", ""))

    @property
    def source(self) -> str:
        return str(self.attrs.get("source", ""))

    def _all_refs(self) -> dict[str, SequenceRef]:
        if self._refs is None:
            refs = {}
            for name, grp in self._h5()["sequences"].items():
                attrs = {k: py_value(v) for k, v in grp.attrs.items()}
                refs[name] = SequenceRef(self, name, attrs, tuple(k for k in grp.keys() if k in ARRAYS))
            self._refs = refs
        return self._refs

    def names(self, split: str | None = None) -> list[str]:
        """Sequence names (sorted), of ``split`` if given, else of the Dataset's split (all if None)."""
        split = split or self.split
        return [n for n, r in self._all_refs().items() if split is None or r.split == split]

    def sequences(self, split: str | None = None) -> Iterator[SequenceRef]:
        refs = self._all_refs()
        return (refs[n] for n in self.names(split))

    def __iter__(self) -> Iterator[SequenceRef]:
        return self.sequences()

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> SequenceRef:
        try:
            return self._all_refs()[name]
        except KeyError:
            raise KeyError(f"no sequence {name!r} in {self.path.name}") from None

    def split_counts(self) -> Counter[str]:
        """Number of sequences per split (all splits, ignoring the Dataset's split filter)."""
        return Counter(r.split for r in self._all_refs().values())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_dataset(path: str | os.PathLike, split: str | None = None) -> Dataset:
    """Open a mocli HDF5 file for reading.

    Raises:
        InputError: missing/unreadable file, not a mocli dataset, or written by a newer mocli (schema > supported).
    """
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise InputError(f"{path}: not a regular file (a pipe or device); save the dataset to a file first")
    if not path.is_file():
        raise InputError(f"no such dataset file: {path}")
    return Dataset(path, split=split)


def validate_dataset(path: str | os.PathLike, check_values: bool = False) -> list[str]:
    """Check a file against the schema; return a list of problems (empty if valid).

    Checks the root attributes, every sequence's array shapes and frame counts against ``num_frames``, dtypes,
    splits, fps and the joints3d frame; with ``check_values`` also reads every array and checks it is finite.
    """
    problems: list[str] = []
    with open_dataset(path) as ds:
        for key in ("kind", "joint_layout", "created_by"):
            if key not in ds.attrs:
                problems.append(f"root attribute {key!r} missing")
        for ref in ds:
            try:
                seq_problems = _validate_ref(ref, check_values)
            except (KeyError, ValueError, OSError) as e:
                seq_problems = [str(e)]
            problems += [f"{ref.name}: {p}" for p in seq_problems]
    return problems


def _validate_ref(ref: SequenceRef, check_values: bool) -> list[str]:
    problems = []
    grp = ref.dataset._group(ref.name)
    if not ref.array_names:
        problems.append("no arrays")
    for key in ("fps", "num_frames", "split"):
        if key not in ref.attrs:
            problems.append(f"attribute {key!r} missing")
    if ref.attrs.get("split") not in SPLITS:
        problems.append(f"split {ref.attrs.get('split')!r} not one of {SPLITS}")
    arrays = {name: grp[name] for name in ref.array_names}
    for name, dset in arrays.items():
        if dset.dtype != np.float32:
            problems.append(f"{name} has dtype {dset.dtype}, expected float32")
        if check_values and not np.isfinite(dset[()]).all():
            problems.append(f"{name} holds NaN or inf")
    if arrays and num_frames_of(arrays) != ref.num_frames:
        problems.append(f"num_frames {ref.num_frames} but arrays hold {num_frames_of(arrays)} frames")
    try:
        check_sequence(_shape_only(ref, arrays))
    except ValueError as e:
        problems.append(str(e).split(": ", 1)[-1])
    return problems


def _shape_only(ref: SequenceRef, arrays: dict[str, h5py.Dataset]) -> Sequence:
    """A Sequence with zero-strided stand-ins of the right shapes, to run the shape checks without reading data."""
    stand_ins = {name: np.broadcast_to(np.float32(0), dset.shape) for name, dset in arrays.items()}
    frame = str(arrays["joints3d"].attrs.get("frame", "")) if "joints3d" in arrays else "world"
    return Sequence(
        name=ref.name, fps=float(ref.attrs.get("fps", 0)), split=str(ref.attrs.get("split")), frame=frame, **stand_ins
    )
