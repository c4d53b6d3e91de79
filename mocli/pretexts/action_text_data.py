"""Data of the ``action-text`` pretext (ActionPose): labelled sequences, the training masks, mirrored labels.

Masks (pure numpy): with ``part_mask_prob`` one of the six ``BODY_PARTS`` is zeroed in every frame; with
``time_mask_prob`` a window of frames (length a fraction ``time_mask_ratio`` of the clip) is zeroed.

Data (``ActionTextDataset``): one sample per labelled sequence of mocli HDF5 files (labels: the sequence attributes
``text.label_keys``, joined by ', '), a window of at most ``text.max_frames`` frames resampled to ``clip_len``, seen
through a random virtual camera like the lift pretext (noise, MotionBERT's masks). A horizontal flip mirrors the 3D
motion, and a label naming a side ('raise-up-left-hand') becomes its mirror ('raise-up-right-hand') when that label
is in the label set. The loss, the task and the pretext interface are ``mocli.pretexts.action_text``'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mocli.config import DataConfig, TextConfig
from mocli.data.clips import ClipIndex, LiftClipDataset
from mocli.data.sources import MotionSource, subsample
from mocli.data.transforms import resample_indices
from mocli.skeleton import H36M_17

__all__ = [
    "BODY_PARTS",
    "body_part_keep",
    "time_window_keep",
    "sample_text_masks",
    "mirror_label",
    "LabelledMotion",
    "load_labelled_motions",
    "ActionTextDataset",
]

# The six body parts of the H36M-17 skeleton (joint indices; every joint is in exactly one part).
BODY_PARTS: dict[str, tuple[int, ...]] = {
    "torso": (0, 7, 8),  # pelvis, spine, thorax
    "head": (9, 10),  # nose, head top
    "left_arm": (11, 12, 13),  # shoulder, elbow, wrist
    "right_arm": (14, 15, 16),
    "left_leg": (4, 5, 6),  # hip, knee, ankle
    "right_leg": (1, 2, 3),
}


# ----------------------------------------------------------------------------------------------------------------------
# Masks (pure numpy)
# ----------------------------------------------------------------------------------------------------------------------


def body_part_keep(num_frames: int, num_joints: int, part: str) -> np.ndarray:
    """(T, J) bool keep mask that drops the joints of one of ``BODY_PARTS`` in every frame."""
    keep = np.ones((num_frames, num_joints), dtype=bool)
    keep[:, list(BODY_PARTS[part])] = False
    return keep


def time_window_keep(num_frames: int, num_joints: int, start: int, length: int) -> np.ndarray:
    """(T, J) bool keep mask that drops every joint of frames ``start .. start + length - 1``."""
    keep = np.ones((num_frames, num_joints), dtype=bool)
    keep[max(0, start) : start + length] = False
    return keep


def sample_text_masks(rng: np.random.Generator, num_frames: int, num_joints: int, text: TextConfig) -> np.ndarray:
    """(T, J) bool keep mask: one random body part with ``part_mask_prob``, a random window of
    ``time_mask_ratio`` (fractions of T, at least one frame) with ``time_mask_prob``."""
    keep = np.ones((num_frames, num_joints), dtype=bool)
    if rng.random() < text.part_mask_prob:
        keep &= body_part_keep(num_frames, num_joints, list(BODY_PARTS)[rng.integers(len(BODY_PARTS))])
    if rng.random() < text.time_mask_prob:
        lo, hi = text.time_mask_ratio
        length = max(1, int(round(rng.uniform(lo, hi) * num_frames)))
        start = int(rng.integers(0, max(1, num_frames - length + 1)))
        keep &= time_window_keep(num_frames, num_joints, start, length)
    return keep


def mirror_label(label: str) -> str:
    """The label of the mirrored motion: words 'left' and 'right' swapped ('walk-turn-left' -> 'walk-turn-right')."""
    swap = {"left": "right", "right": "left"}
    return re.sub(r"(?<![A-Za-z])(left|right)(?![A-Za-z])", lambda m: swap[m.group(1)], label)


# ----------------------------------------------------------------------------------------------------------------------
# ----------------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledMotion:
    """A sequence and its label string (the ``label_keys`` attributes joined by ', ')."""

    source: MotionSource
    label: str


def load_labelled_motions(paths: Sequence[str | os.PathLike], label_keys: Sequence[str], fps: float = 0.0):
    """Every sequence of mocli HDF5 files with 3D joints (or 2D keypoints) and every ``label_keys`` attribute.

    Returns:
        list of LabelledMotion, subsampled to ``fps`` when given.
    Raises:
        InputError: a missing or unreadable file.
    """
    from mocli.data.h5 import open_dataset
    from mocli.data.sources import _sources_of_sequence

    out = []
    for path in paths:
        with open_dataset(path) as ds:
            for ref in ds:
                parts = [ref.attrs.get(k) for k in label_keys]
                if any(p is None or not str(p).strip() for p in parts):
                    continue
                label = ", ".join(str(p).strip() for p in parts)
                for src in _sources_of_sequence(ref.load(), Path(path).name):
                    out.append(LabelledMotion(subsample(src, fps), label))
    return out


def _mirror_world(joints: np.ndarray, up_axis: str) -> np.ndarray:
    """(T, J, 3) world joints -> their mirror image: one horizontal axis negated, left and right joints swapped."""
    from mocli.data.cameras import up_vector

    axis = int(np.flatnonzero(np.abs(up_vector(up_axis)) < 0.5)[0])
    out = joints[:, H36M_17.flip_permutation].copy()
    out[..., axis] *= -1
    return out


class ActionTextDataset(LiftClipDataset):
    """One sample per labelled sequence; indexed by ``(epoch, i)`` or ``i``.

    Sample: the lift pretext's dict (``input`` (T,17,3) normalised x, y + confidence with noise and masks,
    ``target`` (T,17,3) normalised 3D, ``weight_2d``, ``factor``, ``has_3d``; see ``LiftClipDataset``) for a window
    of at most ``text.max_frames`` frames resampled to ``clip_len`` (random window and bin positions in training,
    the centred window and bin middles in validation), plus ``label`` () int64. Training adds the body-part and
    time-window masks and mirrors the motion (with its side label) with probability ``data.flip_prob``.
    """

    def __init__(
        self,
        items: Sequence[LabelledMotion],
        label_ids: dict[str, int],
        cfg: DataConfig,
        text: TextConfig,
        *,
        seed: int = 0,
        train: bool = True,
    ) -> None:
        super().__init__([it.source for it in items], cfg, seed=seed, train=train)
        self.text = text
        n = len(self.sources)
        self.index = ClipIndex(np.arange(n), np.zeros(n, np.int64), np.array([not s.is_3d for s in self.sources]))
        self.labels = np.array([label_ids[it.label] for it in items], dtype=np.int64)
        names = sorted(label_ids, key=label_ids.get)
        self.mirror = np.array([label_ids.get(mirror_label(name), k) for k, name in enumerate(names)], np.int64)

    def active_clips(self, epoch: int) -> np.ndarray:
        return np.arange(len(self.sources))

    def _flip(self, rng: np.random.Generator) -> bool:
        return False  # mirroring happens on the 3D motion (with its label) in __getitem__

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.seed, self.stream, int(epoch), int(i)])
        src = self.sources[int(i)]
        window = min(src.num_frames, self.text.max_frames) if self.text.max_frames > 0 else src.num_frames
        spare = src.num_frames - window
        start = int(rng.integers(0, spare + 1)) if self.train else spare // 2
        frames = start + resample_indices(window, self.cfg.clip_len, rng if self.train else None)
        label = int(self.labels[int(i)])
        if src.joints3d is not None:
            joints = src.joints3d[frames].astype(np.float64)
            if self.train and rng.random() < self.cfg.flip_prob:
                joints, label = _mirror_world(joints, src.up_axis), int(self.mirror[label])
            sample = self._sample_3d(rng, src, joints)
        else:
            sample = self._sample_2d(rng, src.keypoints2d[frames].astype(np.float64))
        if self.train:
            keep = sample_text_masks(rng, *sample["input"].shape[:2], self.text)
            sample["input"] = sample["input"] * keep[..., None]
        out = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sample.items()}
        out["label"] = torch.tensor(label, dtype=torch.int64)
        return out
