"""Action recognition on a person's 2D keypoints with a finetuned action head (``mocli infer --task action``).

Data flow for one person of one input:

    keypoints (T,17,3) px + conf
      -> windows of the model's clip length L, every ``stride`` frames (default L // 2), the last one ending on the
         last frame (``mocli.predict``, policy 'windows'); a sequence shorter than L is one window
      -> per window: the sample the trainer's validation builds (``action_input``): up to ``max_persons`` persons
         (here one, zero-padded to the head's count), resampled to L frames (one frame per equal time bin, the
         bin's middle: the identity for a full window), one square box over all confident keypoints, side =
         ``box_ratio`` times their extent (the middle of the training ``scale_range``) -> (M,L,17,3) normalised
      -> the encoder and action head -> logits -> softmax -> (N_windows, C) class probabilities
      -> per window: the top-k classes; whole clip: the top-k of the mean of the window probabilities (every
         window with the person weighs the same; windows without any frame of the person are left out)

The class names come from the checkpoint (``heads['action']['classes']``, written by ``mocli finetune action``),
else the class ids as strings. A text-aligned checkpoint (``heads['action-text']``, ``mocli pretrain --pretext
action-text``) ranks free-text labels instead (``--labels``; without them its own label set): the window inputs are
made the same way (one person, its training clip length and box scale) and ``action_labels.rank_labels``
gives the probabilities (softmax of the motion-text cosines over the labels, at the training temperature).
Pure numpy for the windows, inputs and rankings; ``ActionModel`` holds the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocli.data.transforms import normalise_persons, resample_indices, select_persons
from mocli.errors import MocliError
from mocli.predict import Runtime, plan_sequence, run_batches

__all__ = [
    "ActionModel",
    "load_action_model",
    "action_input",
    "window_inputs",
    "action_windows",
    "model_outputs",
    "predict_probs",
    "top_k",
    "clip_probs",
    "summarise_actions",
    "ActionRecogniser",
    "ACTION_HINT",
]

ACTION_HINT = (
    "pass --model with an action checkpoint, e.g. runs/finetune/NAME/best.pt from "
    "`mocli finetune action --data DATA.h5 --init weights/dstformer-small.mocap.pt --name NAME`"
)
TEXT_HINT = "--labels needs a text-aligned model (mocli pretrain --pretext action-text)"
LABEL_SOURCES = {"action": "checkpoint classes (action head)",
                 "action-text": "text labels (action-text model): softmax of motion-text cosines"}  # fmt: skip
CLIP_METHOD = "mean of the window probabilities (windows with the person, each weighs the same)"


# ----------------------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class ActionModel:
    """An encoder + action head and how its inputs were made in training.

    Attributes:
        model: ``HeadModel`` in eval mode: (B,M,L,17,3) normalised 2D + conf -> (B,C) logits.
        class_names: (C,) name of each class id.
        clip_len: L, frames per sample (the training ``data.clip_len``, at most the encoder's maxlen).
        max_persons: M, persons per sample (the training ``head.max_persons``).
        box_ratio: box side over the keypoints' extent (the middle of the training ``data.scale_range``).
        info: {'path', 'arch', 'meta'} of the checkpoint, for the outputs.
        kind: 'action' (a classifier head), 'action-oneshot' (an embedding head) or 'action-text' (``model`` is an
            ``ActionTextModel`` and ``class_names`` the free-text labels it ranks).
        embedder: action-text: the text embedder for labels outside the checkpoint's set (None: not needed).
        window_len: frames of the video per window, resampled to ``clip_len`` (0: ``clip_len``, i.e. the native
            rate; action-text models trained on windows of ``text.max_frames`` frames use that).
    """

    model: torch.nn.Module
    class_names: list[str]
    clip_len: int
    max_persons: int
    box_ratio: float
    info: dict[str, Any] = field(default_factory=dict)
    kind: str = "action"
    embedder: Any = None
    window_len: int = 0

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _training_settings(ckpt: dict[str, Any], maxlen: int) -> tuple[int, int, float]:
    """(clip_len, max_persons, box_ratio) from the checkpoint's training config, else the action preset's."""
    from mocli.config import load_preset

    train = ckpt.get("train_config") or {}
    preset = load_preset("finetune_action")
    mine = train.get("task") in ("action", "action-oneshot")  # else e.g. imported MotionBERT weights: the preset
    data = {**preset.get("data", {}), **(train.get("data") or {})} if mine else preset["data"]
    head = (train.get("head") or {}) if mine else {}
    clip = int((ckpt.get("meta") or {}).get("clip_len") or data.get("clip_len") or maxlen)
    lo, hi = data.get("scale_range") or (1.0, 1.0)
    return min(clip, maxlen), int(head.get("max_persons", 2)), (float(lo) + float(hi)) / 2


def _checkpoint(path_or_name: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    from mocli.models.checkpoint import load_checkpoint
    from mocli.models.registry import resolve_weights

    path = resolve_weights(path_or_name)
    return path, load_checkpoint(path)


def _info(path: Path, ckpt: dict[str, Any]) -> dict[str, Any]:
    return {"path": str(path), "arch": (ckpt.get("arch") or {}).get("name"), "meta": ckpt.get("meta") or {}}


def load_action_model(
    path_or_name: str | os.PathLike, device: str | torch.device = "cpu", task: str = "action",
    ckpt: dict[str, Any] | None = None,
) -> ActionModel:  # fmt: skip
    """The encoder and ``task`` head ('action' or 'action-oneshot') of a checkpoint (file or weights name; ``ckpt``:
    the checkpoint already loaded from there).

    Raises:
        MocliError: the checkpoint has no such head (one line naming the command that makes one).
    """
    from mocli.models.checkpoint import model_from_checkpoint
    from mocli.models.heads import HeadModel, head_from_entry

    if ckpt is None:
        path, ckpt = _checkpoint(path_or_name)
    else:
        path = Path(path_or_name)
    entry = (ckpt.get("heads") or {}).get(task)
    if entry is None:
        heads = ", ".join(sorted(ckpt.get("heads") or {})) or "none"
        if task == "action":
            raise MocliError(f"{path} has no action head (heads: {heads}); {ACTION_HINT}")
        raise MocliError(
            f"{path} has no {task} head (heads: {heads}); make one with `mocli finetune {task} --data DATA.h5`"
        )
    encoder = model_from_checkpoint(ckpt, str(path))
    kind, config, head = head_from_entry(entry, encoder.cfg.dim_rep, encoder.cfg.num_joints)
    if kind != task:
        raise MocliError(f"{path}: heads[{task!r}] is a {kind} head")
    num = int(config.get("num_classes", 0)) if task == "action" else 0
    names = [str(n) for n in (entry.get("classes") or [])]
    names = names[:num] + [str(c) for c in range(len(names), num)] if task == "action" else names
    clip_len, max_persons, ratio = _training_settings(ckpt, encoder.cfg.maxlen)
    model = HeadModel(encoder, head, task, kind, config, names).to(device).eval()
    return ActionModel(model, names, clip_len, max_persons, ratio, _info(path, ckpt), kind)


def load_text_model(
    path: str | os.PathLike, ckpt: dict[str, Any], device: str | torch.device = "cpu", labels: list[str] | None = None
) -> ActionModel:
    """A text-aligned checkpoint (``heads['action-text']``) as an ActionModel ranking ``labels`` (None: its own
    label set). Inputs: one person, the training ``data.clip_len`` and the middle of its ``scale_range``.

    Raises:
        MocliError: no action-text head; the text model for new labels is not installed.
    """
    from mocli.models.action_text import load_action_text_model
    from mocli.text import get_embedder

    if "action-text" not in (ckpt.get("heads") or {}):
        raise MocliError(TEXT_HINT)
    net = load_action_text_model(ckpt).to(device).eval()
    names = list(labels) if labels else list(net.labels)
    embedder = get_embedder(net.config["text_model"]) if set(names) - set(net.labels) else None
    data = (ckpt.get("train_config") or {}).get("data") or {}
    lo, hi = data.get("scale_range") or (1.0, 1.0)
    clip = min(int(data.get("clip_len") or net.cfg.maxlen), int(net.cfg.maxlen))
    window = int(((ckpt.get("train_config") or {}).get("text") or {}).get("max_frames") or 0)
    return ActionModel(net, names, clip, 1, (float(lo) + float(hi)) / 2, _info(Path(path), ckpt), "action-text",
                       embedder, max(window, clip))  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------------
# Inputs (pure numpy)
# ----------------------------------------------------------------------------------------------------------------------


def action_input(keypoints: np.ndarray, clip_len: int, max_persons: int, box_ratio: float) -> np.ndarray:
    """The model input of one sample, as the trainer's validation builds it (``ActionClipDataset``, train=False).

    Args:
        keypoints: (M', T, 17, 3) or (T, 17, 3) pixels + confidence (confidence 0: missing).
        clip_len: L, frames of the sample (one per equal time bin, the bin's middle).
        max_persons: M, the most confident persons kept, zero-padded.
        box_ratio: box side over the extent of all confident keypoints.
    Returns:
        (M, L, 17, 3) float32 normalised x, y + confidence (all zero where missing or padded).
    """
    people = select_persons(keypoints if keypoints.ndim == 4 else keypoints[None], max_persons)
    frames = resample_indices(people.shape[1], clip_len)
    return normalise_persons(people[:, frames].astype(np.float64), box_ratio).astype(np.float32)


def action_windows(num_frames: int, clip_len: int, stride: int | None = None) -> list[tuple[int, int]]:
    """Windows (start, end exclusive) of ``clip_len`` frames every ``stride`` (default clip_len // 2) covering
    every frame; the last ends on the last frame; a shorter sequence is one window."""
    return plan_sequence(num_frames, clip_len, "windows", stride).windows


def window_inputs(
    keypoints: np.ndarray, windows: list[tuple[int, int]], clip_len: int, max_persons: int, box_ratio: float,
    min_conf: float = 0.0,
) -> np.ndarray:  # fmt: skip
    """(N, M, L, 17, 3) model inputs of one person's windows.

    Args:
        keypoints: (T, 17, 3) pixels + confidence; NaN or confidence <= ``min_conf`` where missing (zeroed, as
            MotionBERT's masked joints).
    """
    kp = np.array(keypoints, dtype=np.float64)
    missing = ~np.isfinite(kp[..., :2]).all(-1) | ~(kp[..., 2] > min_conf)
    kp[missing] = 0.0
    return np.stack([action_input(kp[s:e], clip_len, max_persons, box_ratio) for s, e in windows])


def model_outputs(
    model: torch.nn.Module, inputs: np.ndarray, batch_size: int = 8, device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> np.ndarray:  # fmt: skip
    """(N, M, L, 17, 3) inputs -> (N, K) float64 outputs of a head model (action: logits; one-shot: embeddings),
    ``batch_size`` at a time (``mocli.predict.run_batches``: device, autocast at ``precision``)."""
    if len(inputs) == 0:
        return np.zeros((0, 0))
    return run_batches(model, inputs, Runtime(batch_size, device, precision)).astype(np.float64)


def predict_probs(
    model: torch.nn.Module, inputs: np.ndarray, batch_size: int = 8, device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> np.ndarray:  # fmt: skip
    """(N, M, L, 17, 3) inputs -> (N, C) float64 softmax class probabilities of an action model (logits out)."""
    logits = model_outputs(model, inputs, batch_size, device, precision)
    if logits.size == 0:
        return logits
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------------------------------------------------
# Rankings (pure numpy)
# ----------------------------------------------------------------------------------------------------------------------


def top_k(scores: np.ndarray, k: int, names: list[str]) -> list[dict[str, Any]]:
    """The ``k`` best classes of a (C,) score vector: [{'id', 'label', 'score'}], best first (ties: lower id)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[: max(0, k)]
    return [{"id": int(c), "label": names[c], "score": round(float(scores[c]), 6)} for c in order]


def clip_probs(probs: np.ndarray, used: np.ndarray | None = None) -> np.ndarray:
    """(N, C) window probabilities -> (C,) whole-clip probabilities: the mean over the ``used`` (N,) windows."""
    keep = probs if used is None else probs[np.asarray(used, bool)]
    return keep.mean(axis=0) if len(keep) else np.zeros(probs.shape[1])


def summarise_actions(
    probs: np.ndarray, windows: list[tuple[int, int]], frames_with_person: np.ndarray, fps: float,
    names: list[str], k: int,
) -> dict[str, Any]:  # fmt: skip
    """The ``clip`` and ``windows`` parts of actions.json.

    Args:
        probs: (N, C) class probabilities of each window.
        windows: N (start, end) frames, end exclusive.
        frames_with_person: (N,) frames of each window with the person; windows with 0 get no ranking.
        fps: frames per second (0: unknown, seconds are null).
        names: (C,) class names.
        k: classes per ranking.
    """
    used = np.asarray(frames_with_person) > 0

    def secs(frame: int) -> float | None:
        return round(frame / fps, 3) if fps > 0 else None

    rows = []
    for i, ((s, e), n) in enumerate(zip(windows, frames_with_person, strict=True)):
        rows.append({
            "index": i, "start_frame": int(s), "end_frame": int(e), "start_s": secs(s), "end_s": secs(e),
            "frames_with_person": int(n), "top": top_k(probs[i], k, names) if used[i] else [],
        })  # fmt: skip
    clip = {"method": CLIP_METHOD, "windows_used": int(used.sum()), "top": []}
    if used.any():
        clip["top"] = top_k(clip_probs(probs, used), k, names)
    return {"clip": clip, "windows": rows}


# ----------------------------------------------------------------------------------------------------------------------
# infer --task action
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class ActionRecogniser:
    """What ``mocli infer`` needs to write actions.json for each person: the model and the ranking options."""

    action: ActionModel
    top_k: int = 5
    stride: int | None = None  # default clip_len // 2
    batch_size: int = 8
    device: str = "cpu"
    precision: str = "fp32"

    @classmethod
    def load(
        cls, model: str | os.PathLike, device: str | torch.device = "cpu", *, top_k: int = 5,
        labels: list[str] | None = None, batch_size: int = 8, precision: str = "fp32",
    ) -> ActionRecogniser:  # fmt: skip
        """Load the checkpoint: its action head (class names), or with free-text ``labels`` (or no action head) its
        action-text head.

        Raises:
            MocliError: --top-k below 1; ``labels`` without an action-text head; neither head.
        """
        if top_k < 1:
            raise MocliError(f"--top-k {top_k}: must be at least 1")
        path, ckpt = _checkpoint(model)
        heads = ckpt.get("heads") or {}
        if labels or ("action" not in heads and "action-text" in heads):
            action = load_text_model(path, ckpt, device, labels)
        else:
            action = load_action_model(path, device, ckpt=ckpt)
        return cls(action, top_k, None, batch_size, str(device), precision)

    def probs(self, inputs: np.ndarray) -> np.ndarray:
        """(N, M, L, 17, 3) window inputs -> (N, C) probabilities over ``action.class_names``."""
        a = self.action
        if a.kind != "action-text":
            return predict_probs(a.model, inputs, self.batch_size, self.device, self.precision)
        from mocli.action_labels import rank_labels

        x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        ranking = rank_labels(a.model, x, a.class_names, top_k=1, embedder=a.embedder, batch_size=self.batch_size,
                              precision=self.precision)  # fmt: skip
        return ranking.probs.numpy().astype(np.float64)

    def recognise(self, keypoints: np.ndarray, missing: np.ndarray, fps: float) -> dict[str, Any]:
        """actions.json for one person: keypoints (T,17,3) pixels + conf, ``missing`` (K,) frames without them."""
        a = self.action
        T = len(keypoints)
        present = np.ones(T, bool)
        present[np.asarray(missing, dtype=np.int64)] = False
        span = a.window_len or a.clip_len
        stride = self.stride or max(1, span // 2)
        windows = action_windows(T, span, stride)
        inputs = window_inputs(keypoints, windows, a.clip_len, a.max_persons, a.box_ratio)
        probs = self.probs(inputs)
        counts = np.array([int(present[s:e].sum()) for s, e in windows])
        out = {
            "task": "action", "labels": LABEL_SOURCES[a.kind], "classes": list(a.class_names), "model": a.info,
            "frames": T, "fps": float(fps), "clip_len": a.clip_len, "window_frames": span, "stride": stride,
            "max_persons": a.max_persons, "box_ratio": a.box_ratio, "top_k": self.top_k,
            "frames_note": "end_frame is exclusive; seconds = frame / fps",
        }  # fmt: skip
        out.update(summarise_actions(probs, windows, counts, fps, a.class_names, self.top_k))
        return out

    def write(self, result, path: str | Path, person: int | None = None) -> Path:
        """actions.json (atomically) for one person's ``MotionResult`` (its keypoints2d, missing frames, fps)."""
        from mocli.results import write_json

        report = self.recognise(result.keypoints2d, result.missing, result.fps)
        if person is not None:
            report = {"person": int(person), **report}
        return write_json(report, path)
