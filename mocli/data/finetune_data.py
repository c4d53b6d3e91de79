"""Datasets of the finetune tasks, read lazily from mocli HDF5 files (sequence lists first, arrays per sample).

- ``ActionClipDataset``: one sample per labelled sequence (NTU style): the 2D keypoints of up to ``max_persons``
  persons (the most confident ones, zero-padded), resampled in time to ``clip_len`` frames and normalised together
  over one square box. Sample: ``input`` (M, T, 17, 3) normalised x, y + confidence, ``label`` () int64.
  Labelled 3D-only mocap (world or camera ``joints3d``, e.g. Bandai's content labels) is one person seen through a
  virtual camera drawn as in pretraining (``mocli.data.cameras.sample_camera`` over the whole sequence; a new
  camera per sample and epoch in training, one fixed camera per sequence in validation), projected to pixels with
  confidence 1, then treated like 2D keypoints (plus MotionBERT's detection noise in training when ``data.noise``).
  ``list_action_sequences`` lists both kinds and maps integer or string class attributes to class ids and names.
- ``OneShotDataset``: the same samples, with batches of ``per_class`` samples of each of ``B / per_class`` classes
  (``epoch_order``); ``oneshot_split`` separates training classes, exemplars and queries.
- ``MeshClipDataset``: windows of ``clip_len`` frames every ``stride`` over sequences with 2D keypoints and SMPL
  parameters. Sample: ``input`` (T, 17, 3), ``pose`` (T, 72) axis-angle radians, ``betas`` (T, 10).

As in ``mocli.data.clips``, every random choice of a sample comes from a generator seeded by (seed, stream, epoch,
sample index), so shuffling, workers, several processes and resuming never change a sample. Training samples draw
the box scale uniformly from ``DataConfig.scale_range``; validation samples use its middle (MotionBERT's action
recipe: [1, 3] for training, 2 for testing).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocli.config import DataConfig
from mocli.data.cameras import identity_camera, image_25d, sample_camera, world_to_camera
from mocli.data.clips import TRAIN_STREAM, VAL_STREAM, clip_starts, view_range
from mocli.data.transforms import flip_clip, normalise_persons, resample_indices, select_persons
from mocli.errors import InputError

__all__ = [
    "LabelledSequence",
    "list_sequences",
    "list_action_sequences",
    "project_sequence",
    "resample_indices",
    "select_persons",
    "normalise_persons",
    "ActionClipDataset",
    "OneShotDataset",
    "class_balanced_order",
    "OneShotSplit",
    "oneshot_split",
    "MeshClipDataset",
]


@dataclass(frozen=True)
class LabelledSequence:
    """A sequence of a mocli HDF5 file: where it is, its frame count, split and class label (-1 when unlabelled).

    ``kind`` is '2d' (``keypoints2d`` is read) or '3d' (3D-only: ``joints3d`` in a world or camera frame, projected
    through a virtual camera).
    """

    path: str
    name: str
    num_frames: int
    split: str
    label: int = -1
    kind: str = "2d"
    source: str = ""  # the sequence's ``source`` attribute (e.g. 'bandai'; list_action_sequences fills it)


def _label(attrs: dict[str, Any], key: str) -> int:
    value = attrs.get(key)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)):
        return -1
    return int(value) if float(value).is_integer() else -1


def list_sequences(
    paths: Sequence[str | os.PathLike], require: Sequence[str], label_key: str | None = None
) -> list[LabelledSequence]:
    """Every sequence of ``paths`` holding the ``require``d arrays (and an integer ``label_key`` attribute if given),
    read from the metadata only.

    Raises:
        InputError: a missing or unreadable file.
    """
    from mocli.data.h5 import open_dataset

    out = []
    for path in paths:
        with open_dataset(path) as ds:
            for ref in ds:
                if not set(require) <= set(ref.array_names):
                    continue
                label = _label(ref.attrs, label_key) if label_key else -1
                if label_key and label < 0:
                    continue
                out.append(LabelledSequence(str(path), ref.name, ref.num_frames, ref.split, label))
    return out


def _joints3d_frame(ref) -> str:
    """The frame of a sequence's joints3d ('world', 'camera' or 'image_2.5d'), from the array's attributes."""
    value = ref.dataset._group(ref.name)["joints3d"].attrs.get("frame", "world")
    return value.decode() if isinstance(value, bytes) else str(value)


def list_action_sequences(
    paths: Sequence[str | os.PathLike], label_key: str, allow_3d: bool = True
) -> tuple[list[LabelledSequence], list[str]]:
    """Labelled sequences for the action task and the class names (index = class id), from the metadata only.

    A sequence takes part when it has ``keypoints2d`` (kind '2d'), or, with ``allow_3d``, ``joints3d`` in a world or
    camera frame (kind '3d'), and a class attribute ``label_key``:

    - integer values are the class ids; a class is named by the sequence attribute ``<label_key>_label`` when there
      is one (Bandai: ``content`` and ``content_label``), else by its id;
    - string values are class names; ids number the sorted distinct names from 0.

    Raises:
        InputError: a missing file; integer and string values mixed; one id named differently by different
            sequences (e.g. Bandai's two datasets number their content labels independently: use the ``_label``
            attribute as the key then).
    """
    from mocli.data.h5 import open_dataset

    found: list[tuple[LabelledSequence, Any]] = []
    for path in paths:
        with open_dataset(path) as ds:
            for ref in ds:
                arrays = set(ref.array_names)
                if "keypoints2d" in arrays:
                    kind = "2d"
                elif allow_3d and "joints3d" in arrays and _joints3d_frame(ref) in ("world", "camera"):
                    kind = "3d"
                else:
                    continue
                value = ref.attrs.get(label_key)
                if isinstance(value, str) and value:
                    key: Any = value
                else:
                    key = _label(ref.attrs, label_key)
                    if key < 0:
                        continue
                    title = ref.attrs.get(f"{label_key}_label")
                    key = (key, title if isinstance(title, str) and title else None)
                source = str(ref.attrs.get("source") or Path(path).stem)
                item = LabelledSequence(str(path), ref.name, ref.num_frames, ref.split, -1, kind, source)
                found.append((item, key))
    if not found:
        return [], []
    strings = [isinstance(key, str) for _, key in found]
    if any(strings) and not all(strings):
        raise InputError(f"class attribute {label_key!r} holds both integers and strings; use one kind")
    if all(strings):
        names = sorted({key for _, key in found})
        index = {n: i for i, n in enumerate(names)}
        return [replace(it, label=index[key]) for it, key in found], names
    named: dict[int, set[str]] = {}
    for _, (cid, name) in found:
        named.setdefault(cid, set())
        if name is not None:
            named[cid].add(name)
    clash = sorted(c for c, n in named.items() if len(n) > 1)
    if clash:
        c = clash[0]
        raise InputError(
            f"class ids of {label_key!r} name different classes in different sequences (id {c}: "
            f"{', '.join(sorted(named[c]))}); use the names as the key: head.label_key={label_key}_label"
        )
    names = [next(iter(named[c])) if named.get(c) else str(c) for c in range(max(named) + 1)]
    return [replace(it, label=cid) for it, (cid, _) in found], names


def project_sequence(
    rng: np.random.Generator, joints: np.ndarray, frame: str, up_axis: str, cfg: DataConfig
) -> np.ndarray:
    """3D joints seen through a virtual camera as 2D keypoints, as pretraining sees 3D data.

    Args:
        rng: draws the camera (``sample_camera`` over all frames; a camera-frame sequence uses the identity camera
            and draws nothing).
        joints: (T, 17, 3) metres in ``frame`` ('world' with ``up_axis``, or 'camera').
        cfg: camera ranges, image size and projection ('perspective' or 'orthographic').
    Returns:
        (T, 17, 3) x, y pixels of the virtual image + confidence 1.
    """
    view = view_range(cfg)
    camera = sample_camera(rng, joints, up_axis or "y", view) if frame == "world" else identity_camera(view)
    cam_points = world_to_camera(joints, camera.R, camera.t)
    label_px, _ = image_25d(cam_points, camera, orthographic=cfg.projection == "orthographic")
    return np.concatenate([label_px[..., :2], np.ones(joints.shape[:-1] + (1,))], axis=-1)


class _Files:
    """Open mocli HDF5 files on first use (per process: ``h5.Dataset`` reopens after a fork)."""

    def __init__(self) -> None:
        self.open: dict[str, Any] = {}

    def ref(self, path: str, name: str):
        if path not in self.open:
            from mocli.data.h5 import open_dataset

            self.open[path] = open_dataset(path)
        return self.open[path][name]


# ----------------------------------------------------------------------------------------------------------------------
# Sampling (the per-sample transforms are ``mocli.data.transforms``': resample_indices, select_persons,
# normalise_persons, shared with inference)
# ----------------------------------------------------------------------------------------------------------------------


def _ratio(cfg: DataConfig, rng: np.random.Generator, train: bool) -> float:
    lo, hi = cfg.scale_range
    return float(rng.uniform(lo, hi)) if train else (lo + hi) / 2


# ----------------------------------------------------------------------------------------------------------------------
# Action and one-shot
# ----------------------------------------------------------------------------------------------------------------------


class ActionClipDataset(torch.utils.data.Dataset):
    """Labelled 2D sequences as (M, T, 17, 3) clips; indexed by ``(epoch, i)`` or ``i`` (epoch 0)."""

    def __init__(
        self,
        items: Sequence[LabelledSequence],
        cfg: DataConfig,
        *,
        max_persons: int = 2,
        seed: int = 0,
        train: bool = True,
    ) -> None:
        self.items = list(items)
        self.cfg, self.max_persons, self.seed, self.train = cfg, max_persons, int(seed), train
        self.stream = TRAIN_STREAM if train else VAL_STREAM
        self.labels = np.array([it.label for it in self.items], dtype=np.int64)
        self.files = _Files()
        self._noise = None

    def __len__(self) -> int:
        return len(self.items)

    def _keypoints(self, rng: np.random.Generator, item: LabelledSequence) -> np.ndarray:
        """(M, T', J, 3) pixels + confidence: the 2D keypoints, or the 3D joints through a virtual camera."""
        ref = self.files.ref(item.path, item.name)
        if item.kind == "3d":
            seq = ref.load()
            return project_sequence(rng, seq.joints3d.astype(np.float64), seq.frame, seq.up_axis, self.cfg)[None]
        kp = ref.read("keypoints2d").astype(np.float64)
        return kp if kp.ndim == 4 else kp[None]

    def _add_noise(self, rng: np.random.Generator, clip: np.ndarray) -> np.ndarray:
        """MotionBERT's detection noise and synthetic confidence on the first person's normalised x, y."""
        from mocli.data.noise import add_detection_noise, load_noise_model

        if self._noise is None:
            self._noise = load_noise_model(self.cfg.noise_file or None)
        out = clip.copy()
        out[0] = add_detection_noise(rng, clip[0, ..., :2], self._noise)
        return out

    def active_clips(self, epoch: int) -> np.ndarray:
        return np.arange(len(self.items))

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        epoch = int(epoch) if self.train else 0  # validation: the same sample (virtual camera) every time
        rng = np.random.default_rng([self.seed, self.stream, epoch, int(i)])
        item = self.items[int(i)]
        people = select_persons(self._keypoints(rng, item), self.max_persons)  # (M, T', J, 3)
        frames = resample_indices(people.shape[1], self.cfg.clip_len, rng if self.train else None)
        clip = normalise_persons(people[:, frames], _ratio(self.cfg, rng, self.train))
        if self.train and rng.random() < self.cfg.flip_prob:
            clip = flip_clip(clip)
        if self.train and item.kind == "3d" and self.cfg.noise:
            clip = self._add_noise(rng, clip)
        return {"input": torch.from_numpy(clip.astype(np.float32)), "label": torch.tensor(item.label)}


def class_balanced_order(
    labels: np.ndarray, seed: int, epoch: int, global_batch: int, per_class: int = 2
) -> np.ndarray:
    """An epoch of ``ceil(N / global_batch)`` batches, each of ``per_class`` samples of ``global_batch / per_class``
    classes drawn at random (classes repeat within a batch only when there are too few of them).

    Args:
        labels: (N,) class of each sample.
    Returns:
        (steps * global_batch,) sample indices; each run of ``per_class`` consecutive indices shares a class.
    """
    if global_batch % per_class:
        raise ValueError(f"batch {global_batch} is not a multiple of {per_class} samples per class")
    rng = np.random.default_rng([seed, 3, epoch])
    classes = np.unique(labels)
    members = {c: np.flatnonzero(labels == c) for c in classes}
    steps = -(-len(labels) // global_batch)
    out = []
    for _ in range(steps):
        chosen = np.resize(rng.permutation(classes), global_batch // per_class)
        for c in chosen:
            out.append(rng.choice(members[c], per_class, replace=len(members[c]) < per_class))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


class OneShotDataset(ActionClipDataset):
    """Action clips whose training batches hold ``per_class`` samples of each class (supervised contrastive)."""

    def __init__(self, items: Sequence[LabelledSequence], cfg: DataConfig, *, per_class: int = 2, **kwargs: Any):
        super().__init__(items, cfg, **kwargs)
        self.per_class = per_class

    def epoch_order(self, seed: int, epoch: int, global_batch: int) -> np.ndarray:
        return class_balanced_order(self.labels, seed, epoch, global_batch, self.per_class)


@dataclass(frozen=True)
class OneShotSplit:
    """The one-shot protocol's three sets: training (auxiliary classes), exemplars and queries (novel classes)."""

    train: list[LabelledSequence]
    exemplars: list[LabelledSequence]
    queries: list[LabelledSequence]


def oneshot_split(
    items: Sequence[LabelledSequence], novel_classes: Sequence[int], exemplar_names: Sequence[str] = ()
) -> OneShotSplit:
    """Split labelled sequences for one-shot recognition (NTU-120: novel classes 0, 6, ..., 114).

    Sequences of the novel classes are the evaluation set, whatever their split attribute: one exemplar per novel
    class (the named one, else the first by name) and the rest as queries; every other sequence is training data.
    """
    novel = set(int(c) for c in novel_classes)
    train = [it for it in items if it.label not in novel]
    evaluation = sorted((it for it in items if it.label in novel), key=lambda it: it.name)
    named = set(exemplar_names)
    unknown = named - {it.name for it in evaluation}
    if unknown:
        raise InputError(f"exemplar(s) {', '.join(sorted(unknown))} are not sequences of the novel classes")
    exemplars: dict[int, LabelledSequence] = {}
    for it in sorted(evaluation, key=lambda it: it.name not in named):  # named exemplars first
        exemplars.setdefault(it.label, it)
    chosen = {id(it) for it in exemplars.values()}
    queries = [it for it in evaluation if id(it) not in chosen]
    return OneShotSplit(train, sorted(exemplars.values(), key=lambda it: it.label), queries)


# ----------------------------------------------------------------------------------------------------------------------
# Mesh
# ----------------------------------------------------------------------------------------------------------------------


MESH_ARRAYS = ("keypoints2d", "smpl_pose", "smpl_shape")


class MeshClipDataset(torch.utils.data.Dataset):
    """Windows of ``clip_len`` frames of 2D keypoints with SMPL pose and shape; indexed by ``(epoch, i)`` or ``i``.

    Sample: ``input`` (T, 17, 3) normalised x, y + confidence (first person), ``pose`` (T, 72) axis-angle radians,
    ``betas`` (T, 10). No flip: a mirrored SMPL pose is not the flipped pose of the same body parts.
    """

    def __init__(
        self,
        items: Sequence[LabelledSequence],
        cfg: DataConfig,
        *,
        seed: int = 0,
        train: bool = True,
        stride: int | None = None,
    ) -> None:
        self.items = list(items)
        self.cfg, self.seed, self.train = cfg, int(seed), train
        self.stream = TRAIN_STREAM if train else VAL_STREAM
        starts = [clip_starts(it.num_frames, cfg.clip_len, stride or cfg.stride) for it in self.items]
        self.source = np.concatenate([np.full(len(s), k) for k, s in enumerate(starts)] or [np.zeros(0)]).astype(int)
        self.start = np.concatenate(starts or [np.zeros(0)]).astype(np.int64)
        self.files = _Files()

    def __len__(self) -> int:
        return len(self.start)

    def active_clips(self, epoch: int) -> np.ndarray:
        return np.arange(len(self))

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.seed, self.stream, int(epoch), int(i)])
        item = self.items[int(self.source[i])]
        ref = self.files.ref(item.path, item.name)
        frames = slice(int(self.start[i]), int(self.start[i]) + self.cfg.clip_len)
        kp = ref.read("keypoints2d", frames).astype(np.float64)
        kp = kp[0] if kp.ndim == 4 else kp
        betas = ref.read("smpl_shape")
        betas = np.broadcast_to(betas, (kp.shape[0], 10)) if betas.ndim == 1 else betas[frames]
        sample = {
            "input": normalise_persons(kp, _ratio(self.cfg, rng, self.train)),
            "pose": ref.read("smpl_pose", frames),
            "betas": betas,
        }
        return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sample.items()}
