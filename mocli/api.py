"""The public Python API: ``mocli.create_model`` and ``mocli.load_model``."""

from __future__ import annotations

import os

from mocli.models.checkpoint import load_checkpoint, model_from_checkpoint
from mocli.models.dstformer import DSTformer
from mocli.models.registry import create_model, resolve_weights

__all__ = ["create_model", "load_model"]


def load_model(path_or_name: str | os.PathLike, device: str = "cpu") -> DSTformer:
    """A DSTformer in eval mode from a mocli checkpoint file or a weights name (see ``mocli weights list``).

    The model maps (B,T,17,3) normalised 2D + confidence to (B,T,17,3) normalised 3D; the checkpoint dict
    (config, heads, training config, metadata) is kept as ``model.checkpoint_info`` without the tensors.
    """
    path = resolve_weights(path_or_name)
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, where=str(path))
    model.checkpoint_info = {k: v for k, v in ckpt.items() if k not in ("model", "heads")}
    model.checkpoint_info["heads"] = sorted(ckpt.get("heads", {}))
    return model.to(device).eval()
