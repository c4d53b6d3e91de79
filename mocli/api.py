"""The public Python API: ``mocli.create_model`` and ``mocli.load_model``."""

from __future__ import annotations

import os

import torch

from mocli.errors import CheckpointError
from mocli.lift import DETECTOR_3D_SPREAD_M
from mocli.models.checkpoint import DETECTOR_3D_SPREAD_KEY, is_spread_m, load_checkpoint, model_from_checkpoint
from mocli.models.dstformer import DSTformer
from mocli.models.registry import create_model, resolve_weights
from mocli.models.stmo import STMO, ManyToOne

__all__ = ["create_model", "load_model", "load_lifter", "model_clip_len", "model_detector_3d_spread"]


def load_model(path_or_name: str | os.PathLike, device: str = "cpu") -> DSTformer | STMO:
    """A model in eval mode from a mocli checkpoint file, a run folder (``runs/pretrain/NAME/``: its model.pt, else
    best.pt, else last.pt) or a weights name (see ``mocli weights list``).

    A DSTformer maps (B,T,17,3) normalised 2D + confidence to (B,T,17,3) normalised 3D; an STMO (arch kind 'stmo')
    maps exactly ``cfg.maxlen`` frames to their centre frame (B,1,17,3) (see ``mocli.models.stmo``). The checkpoint dict
    (config, heads, training config, metadata) is kept as ``model.checkpoint_info`` without the tensors.
    """
    path = resolve_weights(path_or_name)
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, where=str(path))
    model.checkpoint_info = {k: v for k, v in ckpt.items() if k not in ("model", "heads")}
    model.checkpoint_info["heads"] = sorted(ckpt.get("heads", {}))
    return model.to(device).eval()


def load_lifter(path_or_name: str | os.PathLike, device: str = "cpu") -> DSTformer | ManyToOne:
    """``load_model`` for the per-frame lifting of ``mocli infer`` and ``mocli eval``: (B,T,17,C) -> (B,T,17,3).

    A DSTformer is returned as is; an STMO (many-to-one) is wrapped in ``ManyToOne``, which lifts every frame as the
    centre of its own window of ``cfg.maxlen`` frames (one STMO pass per output frame, see ``mocli.models.stmo``).
    """
    model = load_model(path_or_name, device)
    return ManyToOne(model).eval() if isinstance(model, STMO) else model


def model_clip_len(model: torch.nn.Module) -> int:
    """The clip length a model was trained with: meta['clip_len'], else the training config's, else its maxlen."""
    info = getattr(model, "checkpoint_info", {}) or {}
    meta, train = info.get("meta", {}) or {}, info.get("train_config", {}) or {}
    maxlen = int(model.cfg.maxlen)
    clip = meta.get("clip_len") or (train.get("data", {}) or {}).get("clip_len") or maxlen
    return min(int(clip), maxlen)


def model_detector_3d_spread(model: torch.nn.Module) -> float:
    """The flip spread (metres) at which ``--detector-3d auto`` gives the detector's 3D pose half the weight, for this
    lifter: meta['detector_3d_spread_m'] (chosen for the weights on rendered validation videos, their model card),
    else ``mocli.lift.DETECTOR_3D_SPREAD_M``.

    Raises:
        CheckpointError: a stored value that is not a positive number.
    """
    info = getattr(model, "checkpoint_info", {}) or {}
    value = (info.get("meta", {}) or {}).get(DETECTOR_3D_SPREAD_KEY)
    if value is None:
        return DETECTOR_3D_SPREAD_M
    try:
        spread = float(value)
    except (TypeError, ValueError):
        spread = float("nan")
    if not is_spread_m(spread):
        raise CheckpointError(f"the weights' {DETECTOR_3D_SPREAD_KEY} ({value!r}) is not a positive number of metres")
    return spread
