"""mocli checkpoints: self-describing files that load with ``torch.load(..., weights_only=True)``.

Layout (a plain dict of tensors, numbers, strings, lists and dicts, so no pickled code is ever executed)::

    format          "mocli-checkpoint"
    format_version  1
    mocli_version   "0.1.0"
    arch            {"name": "dstformer-lite", "kind": "dstformer", "config": {DSTformerConfig fields}}
                    (kind 'dstformer' or 'stmo', see ``mocli.models.registry.KINDS``; absent in older files:
                    'dstformer')
    model           state dict of the model (DSTformer: encoder + 3D pose head; STMO: the whole lifter)
    heads           {task: {"kind": str, "config": {...}, "state_dict": {...}}}  (action, mesh, ...)
    train_config    the resolved training config (or {})
    meta            {"source": ..., "license": ..., "step": ..., free-form strings/numbers}; known keys:
                    clip_len (the window length infer and eval use), eval_convention (imported MotionBERT pose
                    weights: {rootrel, gt_2d, flip, no_conf, clip_len, from}, read by ``mocli eval h36m``),
                    motionbert_config (the imported run's YAML config values)
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from mocli._version import __version__
from mocli.errors import CheckpointError
from mocli.models.dstformer import DSTformer, DSTformerConfig
from mocli.models.registry import KINDS, arch_kind
from mocli.models.stmo import STMO, STMOConfig
from mocli.utils.io import atomic_path

FORMAT = "mocli-checkpoint"
FORMAT_VERSION = 1


def build_checkpoint(
    model: DSTformer | STMO,
    arch_name: str,
    *,
    heads: dict[str, dict[str, Any]] | None = None,
    train_config: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint dict for a model (tensors are detached CPU copies)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mocli_version": __version__,
        "arch": {"name": arch_name, "kind": arch_kind(model.cfg), "config": model.cfg.to_dict()},
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "heads": heads or {},
        "train_config": train_config or {},
        "meta": meta or {},
    }


def save_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint dict atomically (a temporary name, renamed when complete)."""
    validate_checkpoint(ckpt, str(path))
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a mocli checkpoint with ``weights_only=True``."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as e:  # unpickling refused, truncated file, not a torch file
        if "Unsupported global" in str(e):
            raise CheckpointError(
                f"{path}: holds pickled Python objects, which mocli never executes; for a released MotionBERT "
                "file use `mocli weights import motionbert`"
            ) from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a loadable checkpoint ({first[:200]})") from None
    validate_checkpoint(ckpt, str(path))
    return ckpt


def validate_checkpoint(ckpt: Any, where: str) -> None:
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        hint = ""
        if isinstance(ckpt, dict) and ({"model_pos", "model"} & set(ckpt)):
            hint = " (it looks like a MotionBERT checkpoint: convert it with `mocli weights import motionbert`)"
        raise CheckpointError(f"{where}: not a mocli checkpoint{hint}")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: written by a newer mocli (checkpoint format {ckpt['format_version']}, this mocli reads "
            f"<= {FORMAT_VERSION}); upgrade mocli"
        )
    for key in ("arch", "model"):
        if key not in ckpt:
            raise CheckpointError(f"{where}: checkpoint has no {key!r} entry")


def config_from_checkpoint(ckpt: dict[str, Any]) -> DSTformerConfig | STMOConfig:
    """The architecture config of a checkpoint: arch["kind"] (default 'dstformer') picks the config class."""
    kind = ckpt["arch"].get("kind", "dstformer")
    if kind not in KINDS:
        known_kinds = ", ".join(KINDS)
        raise CheckpointError(f"checkpoint architecture kind {kind!r} is unknown (known: {known_kinds}); upgrade mocli")
    config_class = KINDS[kind][0]
    known = {f.name for f in fields(config_class)}
    cfg = ckpt["arch"].get("config", {})
    unknown = set(cfg) - known
    if unknown:
        raise CheckpointError(f"checkpoint architecture has unknown fields {sorted(unknown)}; upgrade mocli")
    try:
        return config_class(**cfg)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint architecture config is invalid: {e}") from None


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Raise a CheckpointError naming missing, unexpected and mis-shaped keys (up to a few of each)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            problems.append(f"{label}: {', '.join(items[:3])}{more}")
    if problems:
        raise CheckpointError(f"{where}: weights do not fit the architecture; " + "; ".join(problems))


def model_from_checkpoint(ckpt: dict[str, Any], where: str = "checkpoint") -> DSTformer | STMO:
    """Rebuild the model (DSTformer or STMO) a checkpoint describes and load its weights (strict, with named
    mismatches)."""
    cfg = config_from_checkpoint(ckpt)
    model = KINDS[arch_kind(cfg)][1](cfg)
    check_state_dict(model, ckpt["model"], where)
    model.load_state_dict(ckpt["model"])
    return model
