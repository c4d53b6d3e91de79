"""Import the released MotionBERT checkpoints into mocli checkpoints.

The released files are torch pickles holding a state dict under 'model_pos' (3D pose, pretraining) or 'model'
(action, mesh), every key prefixed 'module.' (DataParallel); action and mesh files keep the encoder under
'module.backbone.' and their task head under 'module.head.'. The encoder's tensor names map one to one onto
mocli's DSTformer (``motionbert_name``); every tensor and shape is checked and any mismatch is named.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocli.errors import CheckpointError
from mocli.models.checkpoint import build_checkpoint
from mocli.models.dstformer import DSTformer, DSTformerConfig
from mocli.models.registry import ARCHS

# mocli stream/block names -> MotionBERT's per-block suffixes
_BLOCK = {"st": "blocks_st", "ts": "blocks_ts"}
_AXIS = {"spatial": "s", "temporal": "t"}
_TOP = {
    "embed.weight": "joints_embed.weight",
    "embed.bias": "joints_embed.bias",
    "joint_pos": "pos_embed",
    "time_pos": "temp_embed",
    "norm.weight": "norm.weight",
    "norm.bias": "norm.bias",
    "pre_logits.weight": "pre_logits.fc.weight",
    "pre_logits.bias": "pre_logits.fc.bias",
    "head.weight": "head.weight",
    "head.bias": "head.bias",
}
_LEVEL = re.compile(r"levels\.(\d+)\.(st|ts)\.(spatial|temporal)\.(norm1|norm2|attn|mlp)\.(.+)")
_FUSE = re.compile(r"levels\.(\d+)\.fuse\.(weight|bias)")


def motionbert_name(key: str) -> str:
    """The MotionBERT name of a mocli DSTformer tensor, e.g. 'levels.0.st.spatial.attn.qkv.weight' ->
    'blocks_st.0.attn_s.qkv.weight', 'levels.2.fuse.bias' -> 'ts_attn.2.bias'."""
    if key in _TOP:
        return _TOP[key]
    if m := _FUSE.fullmatch(key):
        return f"ts_attn.{m[1]}.{m[2]}"
    if m := _LEVEL.fullmatch(key):
        level, stream, axis, part, rest = m.groups()
        return f"{_BLOCK[stream]}.{level}.{part}_{_AXIS[axis]}.{rest}"
    raise KeyError(f"no MotionBERT name for {key!r}")


def infer_config(encoder: dict[str, torch.Tensor], num_heads: int = 8) -> DSTformerConfig:
    """The DSTformer config implied by the shapes of a MotionBERT encoder state dict (heads are not visible in
    the shapes: MotionBERT always uses 8)."""
    try:
        dim_feat, dim_in = encoder["joints_embed.weight"].shape
        depth = 1 + max(int(k.split(".")[1]) for k in encoder if k.startswith("blocks_st."))
        hidden = encoder["blocks_st.0.mlp_s.fc1.weight"].shape[0]
        return DSTformerConfig(
            dim_in=dim_in,
            dim_out=encoder["head.weight"].shape[0] if "head.weight" in encoder else 3,
            dim_feat=dim_feat,
            dim_rep=encoder["pre_logits.fc.weight"].shape[0],
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=hidden / dim_feat,
            num_joints=encoder["pos_embed"].shape[1],
            maxlen=encoder["temp_embed"].shape[1],
        )
    except (KeyError, ValueError, IndexError) as e:
        raise CheckpointError(f"not a MotionBERT DSTformer state dict (cannot read its shapes: {e})") from None


def _read(path: Path) -> dict[str, Any]:
    # The released files also hold optimiser state and numpy scalars (e.g. min_loss): allow exactly those
    # numpy reconstruction helpers, nothing else, under weights_only.
    safe = [np.core.multiarray.scalar, np.dtype, np.ndarray, np.core.multiarray._reconstruct]
    safe += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32")]
    try:
        with torch.serialization.safe_globals(safe):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({first[:200]})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict with 'model_pos' or 'model', got {type(obj).__name__}")
    return obj


def split_motionbert(obj: dict[str, Any], where: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], str]:
    """(encoder state dict, task head state dict, task) from a released MotionBERT file's contents, with the
    'module.' and 'backbone.'/'head.' prefixes removed. task: 'pose3d', 'action' or 'mesh'."""
    for key in ("model_pos", "model"):
        if key in obj and isinstance(obj[key], dict):
            state = obj[key]
            break
    else:
        raise CheckpointError(f"{where}: no 'model_pos' or 'model' state dict (keys: {sorted(obj)[:8]})")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if not any(k.startswith("backbone.") for k in state):
        return state, {}, "pose3d"
    encoder = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    head = {k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")}
    other = [k for k in state if not k.startswith(("backbone.", "head."))]
    if other:
        raise CheckpointError(f"{where}: unexpected tensors outside backbone/head: {', '.join(other[:5])}")
    # The mesh head regresses SMPL pose and shape; the action head is fc1/bn/fc2 on pooled features.
    task = "mesh" if any("pose" in k or "shape" in k or "smpl" in k for k in head) else "action"
    return encoder, head, task


def convert_encoder(encoder: dict[str, torch.Tensor], cfg: DSTformerConfig, where: str) -> DSTformer:
    """A mocli DSTformer holding a MotionBERT encoder's weights; every tensor and shape checked, none left over."""
    model = DSTformer(cfg)
    target = model.state_dict()
    converted, problems = {}, []
    for key, ref in target.items():
        src = motionbert_name(key)
        if src not in encoder:
            problems.append(f"missing {src}")
        elif tuple(encoder[src].shape) != tuple(ref.shape):
            problems.append(f"{src} has shape {tuple(encoder[src].shape)}, expected {tuple(ref.shape)}")
        else:
            converted[key] = encoder[src].to(ref.dtype)
    used = {motionbert_name(k) for k in target}
    problems += [f"unexpected {k}" for k in encoder if k not in used]
    if problems:
        more = f" (+{len(problems) - 4} more)" if len(problems) > 4 else ""
        raise CheckpointError(f"{where}: MotionBERT weights do not match: {'; '.join(problems[:4])}{more}")
    model.load_state_dict(converted)
    return model


def arch_name_for(cfg: DSTformerConfig) -> str:
    for name, preset in ARCHS.items():
        if preset == cfg:
            return name
    return "dstformer-custom"


def import_motionbert(src: str | os.PathLike, num_heads: int = 8) -> dict[str, Any]:
    """A mocli checkpoint dict from a released MotionBERT file (pose3d, action or mesh)."""
    src = Path(src)
    obj = _read(src)
    encoder, head, task = split_motionbert(obj, str(src))
    if task != "pose3d" and "head.weight" not in encoder:
        raise CheckpointError(f"{src}: the backbone has no 3D pose head ('head.weight'); is this a DSTformer?")
    cfg = infer_config(encoder, num_heads)
    model = convert_encoder(encoder, cfg, str(src))
    heads = {}
    if head:
        # Kept verbatim (names without 'module.head.'); mocli's task heads read MotionBERT's names.
        heads[task] = {"kind": f"motionbert-{task}", "config": {}, "state_dict": head}
    meta = {"source": f"MotionBERT release: {src.name}", "task": task, "imported_from": str(src.resolve())}
    epoch = obj.get("epoch")
    if isinstance(epoch, int):
        meta["epoch"] = epoch
    return build_checkpoint(model, arch_name_for(cfg), heads=heads, meta=meta)
