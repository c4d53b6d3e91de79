"""NTU RGB+D action benchmarks on 2D skeletons: ``ntu`` (top-1 / top-5 on a split's val set) and ``ntu120-oneshot``
(one exemplar per novel class, cosine nearest exemplar).

Data: PYSKL's ``ntu60_hrnet.pkl`` / ``ntu120_hrnet.pkl``: {'split': {'xsub_train': [frame_dir, ...], 'xsub_val':
[...], 'xview_...' | 'xset_...'}, 'annotations': [{'frame_dir', 'total_frames', 'img_shape' (h, w), 'keypoint'
(M, T, 17, 2) pixels COCO-17, 'keypoint_score' (M, T, 17), 'label' (0-based: A001 -> 0)}]}. COCO-17 becomes H36M-17
as in ``mocli prepare dataset ntu`` (``skeleton.to_h36m``, scores in the same order).

Or the dataset's raw Kinect skeletons: a folder of ``*.skeleton`` files (searched recursively) or one file, read as
``mocli prepare dataset ntu`` reads them (``mocli.data.ntu_skeleton``: the 2 main bodies' colour-image keypoints,
confidence from the tracking state). Labels and the xsub / xview / xset splits come from the sample names; the
dataset's missing-skeleton list, when the folder holds it (a ``.txt`` with 'missing' in its name), removes the
samples it names (logged). Files are parsed only when their sample is evaluated.

Samples are made as the trainer's validation makes them (``mocli.actions.action_input``): the most confident
``max_persons`` persons (2 for NTU, zero-padded), resampled to the clip length with one frame per equal time bin
(the bin's middle; deterministic), one square box over all confident keypoints with side = the middle of the
training ``scale_range`` times their extent. Every sample of the evaluated set is scored exactly once.

Reading, running a model and scoring are separate: ``score_ntu(samples, predict)`` and ``score_oneshot(exemplars,
queries, embed)`` take functions, so the scoring is tested with known answers.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocli.errors import InputError
from mocli.evaluation.report import Metric, Report, ScoreSums, build_table

__all__ = [
    "NTU_SPLITS",
    "NOVEL_CLASSES",
    "NtuSample",
    "load_pyskl",
    "load_skeletons",
    "val_samples",
    "all_samples",
    "oneshot_sets",
    "class_name",
    "score_ntu",
    "score_oneshot",
    "batched",
    "model_predict",
]

log = logging.getLogger(__name__)

NTU_SPLITS = ("xsub", "xview", "xset")
NOVEL_CLASSES = tuple(range(0, 120, 6))  # NTU-120 one-shot: the 20 novel classes 0, 6, ..., 114
ACCURACY = "%"


@dataclass(frozen=True)
class NtuSample:
    """One annotation: ``name`` (frame_dir), ``label`` (0-based class), ``keypoints`` (M, T, 17, 3) H36M-17 pixels
    + confidence."""

    name: str
    label: int
    keypoints: np.ndarray


def class_name(label: int) -> str:
    """NTU's action id of a 0-based label: 0 -> 'A001'."""
    return f"A{label + 1:03d}"


def load_pyskl(path: str | os.PathLike) -> dict[str, Any]:
    """Read a PYSKL pkl and check its layout ({'split': {name: [frame_dir]}, 'annotations': [dict]}); a folder or a
    ``.skeleton`` file goes to ``load_skeletons``.

    Raises:
        InputError: unreadable, or not the PYSKL layout (one line naming what is wrong).
    """
    from mocli.data.converters.common import ARCHIVE_SUFFIXES
    from mocli.data.converters.h36m import _load_pickle

    path = Path(path)
    if path.is_dir() or path.name.lower().endswith(".skeleton"):
        return load_skeletons(path)
    if path.name.lower().endswith(ARCHIVE_SUFFIXES):
        raise InputError(f"{path.name}: an archive; extract it and give the folder of .skeleton files")
    if not path.is_file():
        raise InputError(f"{path}: no such file (give PYSKL's ntu60_hrnet.pkl or ntu120_hrnet.pkl)")
    data = _load_pickle(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise InputError(f"{path.name}: expected PYSKL's layout, a dict with 'split' and 'annotations' (a list)")
    split = data.get("split")
    if not isinstance(split, dict) or not all(isinstance(v, (list, tuple)) for v in split.values()):
        raise InputError(f"{path.name}: expected PYSKL's layout, 'split' must map names to lists of frame_dir")
    return data


def load_skeletons(path: str | os.PathLike) -> dict[str, Any]:
    """Raw NTU skeletons (a folder of ``*.skeleton`` files, searched recursively, or one file) in PYSKL's layout:
    'split' holds ``<benchmark>_train`` / ``_val`` lists for xsub, xview and xset by the sample names' rules
    (``SampleName.split``), 'annotations' one dict per file: {'frame_dir', 'label', 'skeleton_path'}; the keypoints
    are read when a sample is made. Samples named by a missing-skeleton list in the folder are left out (logged).

    Raises:
        InputError: no .skeleton file, or a file not named like an NTU sample.
    """
    from mocli.data.converters.ntu import collect_ntu
    from mocli.data.ntu_skeleton import BENCHMARKS, parse_sample_name

    path = Path(path)
    with contextlib.ExitStack() as stack:  # a folder or a file: nothing is extracted
        inputs = collect_ntu([path], stack)
    skipped = inputs.skipped()
    if skipped:
        log.info("%d sample(s) named by the missing-skeleton list left out (e.g. %s)", len(skipped), skipped[0])
    split: dict[str, list[str]] = {f"{b}_{part}": [] for b in BENCHMARKS for part in ("train", "val")}
    annotations = []
    for _, file in inputs.skeletons():
        sample = parse_sample_name(file.name[: -len(".skeleton")])
        annotations.append({"frame_dir": sample.name, "label": sample.label, "skeleton_path": str(file)})
        for b in BENCHMARKS:
            split[f"{b}_{sample.split(b)}"].append(sample.name)
    if not annotations:
        raise InputError(f"{path}: no .skeleton files{' left after the missing-skeleton list' if skipped else ''}")
    return {"split": split, "annotations": annotations}


def _sample(ann: Any, where: str) -> NtuSample:
    from mocli.data.converters.ntu import pyskl_keypoints
    from mocli.data.ntu_skeleton import read_skeleton_keypoints

    if isinstance(ann, dict) and "skeleton_path" in ann:  # raw skeletons (load_skeletons)
        return NtuSample(str(ann["frame_dir"]), int(ann["label"]), read_skeleton_keypoints(ann["skeleton_path"]))
    kp = pyskl_keypoints(ann, where)
    return NtuSample(str(ann["frame_dir"]), int(ann["label"]), kp)


def _by_name(data: dict[str, Any], name: str) -> dict[str, tuple[int, Any]]:
    out: dict[str, tuple[int, Any]] = {}
    for i, ann in enumerate(data["annotations"]):
        key = str(ann.get("frame_dir")) if isinstance(ann, dict) else f"#{i}"
        if key in out:
            raise InputError(f"{name}: frame_dir {key} appears twice in 'annotations'")
        out[key] = (i, ann)
    return out


def val_samples(data: dict[str, Any], split: str, name: str = "pkl") -> list[NtuSample]:
    """The samples of ``<split>_val`` in the order of that list (a name listed twice counts once).

    Raises:
        InputError: unknown split, no such list in the file, or a listed frame_dir without an annotation.
    """
    if split not in NTU_SPLITS:
        raise InputError(f"unknown split {split!r}; NTU splits: {', '.join(NTU_SPLITS)}")
    key = f"{split}_val"
    if key not in data["split"]:
        have = ", ".join(sorted(str(k) for k in data["split"])) or "none"
        raise InputError(f"{name}: no {key!r} list in 'split' (have: {have})")
    names = list(dict.fromkeys(str(n) for n in data["split"][key]))
    index = _by_name(data, name)
    missing = [n for n in names if n not in index]
    if missing:
        raise InputError(f"{name}: {len(missing)} frame_dir(s) of {key} have no annotation, e.g. {missing[0]}")
    return [_sample(index[n][1], f"{name}: annotations[{index[n][0]}]") for n in names]


def all_samples(data: dict[str, Any], name: str = "pkl", labels: Sequence[int] | None = None) -> list[NtuSample]:
    """Every annotation (those of ``labels`` only when given), in file order."""
    keep = None if labels is None else set(int(c) for c in labels)
    out = []
    for i, ann in enumerate(data["annotations"]):
        if keep is not None and isinstance(ann, dict) and int(ann.get("label", -1)) not in keep:
            continue
        out.append(_sample(ann, f"{name}: annotations[{i}]"))
    return out


def oneshot_sets(
    samples: Sequence[NtuSample], novel_classes: Sequence[int] = NOVEL_CLASSES, exemplar_names: Sequence[str] = ()
) -> tuple[list[NtuSample], list[NtuSample]]:
    """(exemplars, queries) of the one-shot protocol, by the rule of ``mocli finetune action-oneshot``
    (``finetune_data.oneshot_split``): every sample of a novel class takes part, whatever its split; a class's
    exemplar is the one named in ``exemplar_names``, else its first sample by frame_dir (string order); the rest
    are queries. Exemplars come in class order.

    Raises:
        InputError: a named exemplar that is no sample of a novel class; a novel class without samples.
    """
    from mocli.data.finetune_data import LabelledSequence, oneshot_split

    items = [LabelledSequence("", s.name, int(s.keypoints.shape[1]), "val", s.label) for s in samples]
    split = oneshot_split(items, novel_classes, exemplar_names)
    absent = sorted(set(int(c) for c in novel_classes) - {it.label for it in split.exemplars})
    if absent:
        raise InputError(f"no samples of novel class(es) {', '.join(class_name(c) for c in absent)} in the data")
    by_name = {s.name: s for s in samples}
    return [by_name[it.name] for it in split.exemplars], [by_name[it.name] for it in split.queries]


def batched(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]


def score_ntu(
    samples: Sequence[NtuSample],
    predict: Callable[[Sequence[NtuSample]], np.ndarray],
    *,
    batch_size: int = 16,
    info: dict[str, Any] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Report:
    """Top-1 and top-5 accuracy (%) per class and overall.

    Args:
        samples: the evaluated set (each scored once).
        predict: a batch of samples -> (B, C) class scores (logits or probabilities). Top-k takes the k highest
            scores (ties: the lower class id first); a label outside [0, C) is never correct.
        on_batch: called with the batch size after each batch (progress).
    Returns:
        A Report: table 'top-1 / top-5 accuracy per class' (rows A001, ...; the frames column counts samples),
        headline {'top-1 (%)', 'top-5 (%)'} over all samples.
    """
    sums = ScoreSums()
    for batch in batched(samples, batch_size):
        scores = np.asarray(predict(batch), dtype=np.float64)
        if scores.ndim != 2 or scores.shape[0] != len(batch):
            raise ValueError(f"predict returned shape {scores.shape} for {len(batch)} samples")
        order = np.argsort(-scores, axis=1, kind="stable")
        for s, ranked in zip(batch, order, strict=True):
            group = class_name(s.label)
            sums.add_frames(group, 1)
            sums.add(group, "top1", [100.0 * (ranked[0] == s.label)])
            sums.add(group, "top5", [100.0 * bool(np.isin(s.label, ranked[:5]))])
        if on_batch is not None:
            on_batch(len(batch))
    metrics = [Metric("top1", "top-1", ACCURACY), Metric("top5", "top-5", ACCURACY)]
    table = build_table(sums, "NTU action recognition: accuracy per class", "action", metrics)
    overall = table.summary_row("mean over frames").values
    headline = {"top-1 (%)": overall["top1"], "top-5 (%)": overall["top5"]}
    info = {**(info or {}), "samples": len(samples), "classes": len(sums.groups)}
    return Report("ntu", headline, [table], info)


def score_oneshot(
    exemplars: Sequence[NtuSample],
    queries: Sequence[NtuSample],
    embed: Callable[[Sequence[NtuSample]], np.ndarray],
    *,
    batch_size: int = 16,
    info: dict[str, Any] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Report:
    """One-shot accuracy (%): each query takes the class of its most cosine-similar exemplar.

    Args:
        exemplars: one sample per novel class.
        queries: the other samples of the novel classes (each scored once).
        embed: a batch of samples -> (B, D) embeddings (normalised here before the cosine).
    Returns:
        A Report: table 'one-shot accuracy per novel class', headline {'one-shot top-1 (%)'} over all queries.
    """
    from mocli.metrics import nearest_exemplar

    ex = torch.from_numpy(np.concatenate([np.asarray(embed(b), np.float64) for b in batched(exemplars, batch_size)]))
    ex_labels = torch.tensor([s.label for s in exemplars])
    sums = ScoreSums()
    for batch in batched(queries, batch_size):
        pred = nearest_exemplar(torch.from_numpy(np.asarray(embed(batch), np.float64)), ex, ex_labels).numpy()
        for s, p in zip(batch, pred, strict=True):
            group = class_name(s.label)
            sums.add_frames(group, 1)
            sums.add(group, "top1", [100.0 * (int(p) == s.label)])
        if on_batch is not None:
            on_batch(len(batch))
    table = build_table(
        sums, "NTU-120 one-shot: accuracy per novel class", "action", [Metric("top1", "one-shot top-1", ACCURACY)]
    )
    info = {
        **(info or {}), "queries": len(queries), "novel_classes": [class_name(s.label) for s in exemplars],
        "exemplars": [s.name for s in exemplars],
    }  # fmt: skip
    return Report("ntu120-oneshot", {"one-shot top-1 (%)": table.summary_row("mean over frames").values["top1"]},
                  [table], info)  # fmt: skip


def model_predict(
    action: Any, batch_size: int = 16, device: str | torch.device = "cpu", precision: str = "fp32"
) -> Callable[[Sequence[NtuSample]], np.ndarray]:
    """A ``predict`` / ``embed`` function for ``score_ntu`` / ``score_oneshot`` from a ``mocli.actions.ActionModel``:
    samples -> inputs (``action_input`` with the model's clip length, persons and box ratio) -> the head's outputs
    (action: (B, C) logits; one-shot: (B, D) embeddings)."""
    from mocli.actions import action_input, model_outputs

    def predict(samples: Sequence[NtuSample]) -> np.ndarray:
        x = np.stack(
            [action_input(s.keypoints, action.clip_len, action.max_persons, action.box_ratio) for s in samples]
        )
        return model_outputs(action.model, x, batch_size, device, precision)

    return predict
