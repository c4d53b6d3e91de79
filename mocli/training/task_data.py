"""The training and validation sets of each finetune task (``build_finetune_data``), from the config's HDF5 files:

pose3d          3D sequences as lift clips (``mocli.training.lift_task.build_lift_data``; clean 2D input)
action          labelled 2D keypoints and 3D-only mocap (virtual cameras), resampled to clip_len, 2 persons
action-oneshot  the auxiliary classes in batches of head.samples_per_class per class; the novel classes' one
                exemplar each and their other sequences (queries, the validation set)
mesh            2D keypoints with SMPL pose and shape
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mocli.config import FinetuneConfig
from mocli.errors import MocliError
from mocli.training.lift_task import build_lift_data

__all__ = ["FinetuneData", "build_finetune_data"]


@dataclass
class FinetuneData:
    """Training and validation sets of a task, and what the head and task need from the data."""

    train: Any
    val: Any | None
    num_classes: int = 0  # action
    exemplars: tuple[torch.Tensor, torch.Tensor] | None = None  # one-shot: (K, M, T, J, 3) clips, (K,) classes
    class_names: list[str] = field(default_factory=list)  # action: the name of each class id


def _names(paths: list[str]) -> str:
    return ", ".join(Path(p).name for p in paths)


def _split_items(items: list, paths: list[str], what: str) -> tuple[list, list]:
    """Training items (split 'train') and validation items (split 'val', else 'test')."""
    train = [it for it in items if it.split == "train"]
    val = [it for it in items if it.split == "val"] or [it for it in items if it.split == "test"]
    if not train:
        raise MocliError(f"no training sequences (split 'train') with {what} in {_names(paths)}")
    return train, val


def _action_data(cfg: FinetuneConfig) -> FinetuneData:
    """2D keypoint sequences and 3D-only mocap (projected through virtual cameras) with a class attribute."""
    from mocli.data.finetune_data import ActionClipDataset, list_action_sequences

    d, h = cfg.data, cfg.head
    items, names = list_action_sequences(d.paths, h.label_key)
    what = f"keypoints2d or world/camera joints3d and a class attribute {h.label_key!r}"
    train, val = _split_items(items, d.paths, what)
    top = max(it.label for it in items)
    num_classes = h.num_classes or top + 1
    if top >= num_classes:
        raise MocliError(f"label {top} in the data is out of range for head.num_classes={num_classes}")
    names = names + [str(c) for c in range(len(names), num_classes)]
    args = {"max_persons": h.max_persons, "seed": cfg.seed}
    val_set = ActionClipDataset(val, d, train=False, **args) if val else None
    train_set = ActionClipDataset(train, d, train=True, **args)
    return FinetuneData(train_set, val_set, num_classes=num_classes, class_names=names)


def _oneshot_data(cfg: FinetuneConfig) -> FinetuneData:
    from mocli.data.finetune_data import ActionClipDataset, OneShotDataset, list_sequences, oneshot_split

    d, h = cfg.data, cfg.head
    items = list_sequences(d.paths, ("keypoints2d",), h.label_key)
    if not items:
        raise MocliError(f"no sequences with keypoints2d and an integer {h.label_key!r} attribute in {_names(d.paths)}")
    split = oneshot_split(items, h.novel_classes, h.exemplars)
    if not split.train or not split.exemplars:
        missing = "auxiliary (non-novel)" if not split.train else f"novel ({h.novel_classes})"
        raise MocliError(f"no sequences of the {missing} classes in {_names(d.paths)}; set head.novel_classes")
    args = {"max_persons": h.max_persons, "seed": cfg.seed}
    train = OneShotDataset(split.train, d, train=True, per_class=h.samples_per_class, **args)
    shots = ActionClipDataset(split.exemplars, d, train=False, **args)
    exemplars = torch.stack([shots[i]["input"] for i in range(len(shots))])
    val = ActionClipDataset(split.queries, d, train=False, **args) if split.queries else None
    return FinetuneData(train, val, exemplars=(exemplars, torch.from_numpy(shots.labels)))


def _mesh_data(cfg: FinetuneConfig) -> FinetuneData:
    from mocli.data.finetune_data import MESH_ARRAYS, MeshClipDataset, list_sequences

    d = cfg.data
    train, val = _split_items(list_sequences(d.paths, MESH_ARRAYS), d.paths, "keypoints2d, smpl_pose and smpl_shape")
    train_set = MeshClipDataset(train, d, seed=cfg.seed, train=True)
    if len(train_set) == 0:
        raise MocliError(f"no training clips: every training sequence is shorter than clip_len {d.clip_len}")
    val_set = MeshClipDataset(val, d, seed=cfg.seed, train=False, stride=d.val_stride or d.clip_len) if val else None
    return FinetuneData(train_set, val_set)


def _pose3d_data(cfg: FinetuneConfig) -> FinetuneData:
    from mocli.data.sources import load_sources

    sources = [s for s in load_sources(cfg.data.paths, fps=cfg.data.fps, holdout=cfg.data.holdout) if s.is_3d]
    if not sources:
        raise MocliError(f"no sequences with 3D joints (world or camera frame) in {_names(cfg.data.paths)}")
    return FinetuneData(*build_lift_data(cfg, sources))


def build_finetune_data(cfg: FinetuneConfig) -> FinetuneData:
    """The task's training and validation sets from ``cfg.data.paths``."""
    if not cfg.data.paths:
        raise MocliError("no training data: give --data FILE.h5 (see `mocli prepare dataset --help`)")
    build = {"pose3d": _pose3d_data, "action": _action_data, "action-oneshot": _oneshot_data, "mesh": _mesh_data}
    return build[cfg.task](cfg)
