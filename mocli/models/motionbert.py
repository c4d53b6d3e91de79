"""Import the released MotionBERT checkpoints into mocli checkpoints.

The released files are torch pickles holding a state dict under 'model_pos' (3D pose, pretraining) or 'model'
(action, mesh), every key prefixed 'module.' (DataParallel); action and mesh files keep the encoder under
'module.backbone.' and their task head under 'module.head.'. The encoder's tensor names map one to one onto
mocli's DSTformer (``motionbert_name``); every tensor and shape is checked and any mismatch is named.

The files do not record the config they were trained with; it travels beside them as a YAML file
(``configs/pose3d/MB_ft_h36m.yaml`` ...). ``read_config`` reads it, ``check_config`` checks its architecture keys
against the weights' shapes, and the evaluation convention (rootrel, gt_2d, flip, no_conf, clip_len) is recorded in
the checkpoint's meta['eval_convention'] (``eval_convention``). Without a config, a pose checkpoint gets
``ASSUMED_CONVENTION``: rootrel False keeps the model's root output, which is right for the "global" configs and
off by little for rootrel ones (a model trained on root-relative targets outputs a root near 0), whereas zeroing
the root of a global model would move every joint by the root's position in the image.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocli.errors import CheckpointError, InputError, MissingDependencyError
from mocli.models.checkpoint import build_checkpoint, read_torch_file
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
# The evaluation convention of a pose checkpoint imported without its config (see the module docstring).
ASSUMED_CONVENTION = {"rootrel": False, "gt_2d": False, "flip": True}
# MotionBERT config key -> DSTformerConfig field, for the keys the weights' shapes fix.
_CONFIG_SHAPES = {"dim_feat": "dim_feat", "dim_rep": "dim_rep", "depth": "depth", "mlp_ratio": "mlp_ratio",
                  "maxlen": "maxlen", "num_joints": "num_joints"}  # fmt: skip
_CONFIG_BOOLS = ("rootrel", "gt_2d", "flip", "no_conf", "att_fuse")
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
    obj = read_torch_file(path, safe_globals=safe)
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{path}: not a MotionBERT release file (it holds a {type(obj).__name__}; expected a dict with a state "
            "dict under 'model_pos' or 'model')"
        )
    return obj


def split_motionbert(obj: dict[str, Any], where: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], str]:
    """(encoder state dict, task head state dict, task) from a released MotionBERT file's contents, with the
    'module.' and 'backbone.'/'head.' prefixes removed. task: 'pose3d', 'action' or 'mesh'."""
    for key in ("model_pos", "model"):
        if key in obj and isinstance(obj[key], dict):
            state = obj[key]
            break
    else:
        keys = ", ".join(repr(k) for k in sorted(map(str, obj))[:8]) or "none"
        raise CheckpointError(
            f"{where}: not a MotionBERT release file (keys {keys}; expected a state dict under 'model_pos' or 'model')"
        )
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


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """MotionBERT's YAML config (flat ``key: value`` lines) as a dict.

    Raises:
        InputError: a missing, unreadable or malformed file. MissingDependencyError: PyYAML is not installed.
    """
    path = Path(path)
    try:
        import yaml
    except ImportError:
        raise MissingDependencyError("reading a MotionBERT config needs PyYAML: pip install pyyaml") from None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"--config {path}: cannot be read ({e.strerror or e})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
        why = f"line {mark.line + 1}: {problem}" if mark is not None and problem else type(e).__name__
        raise InputError(f"--config {path}: not a readable YAML file ({why})") from None
    if not isinstance(config, dict):
        raise InputError(f"--config {path}: expected MotionBERT's 'key: value' config, got {type(config).__name__}")
    return config


def check_config(config: dict[str, Any], cfg: DSTformerConfig, where: str) -> None:
    """Check a MotionBERT config against the architecture the weights imply; the first mismatch is named.

    Checked when present: dim_feat, dim_rep, depth, mlp_ratio, maxlen, num_joints (shapes), no_conf (2 input
    channels), att_fuse (must be True), num_heads (a positive divisor of dim_feat), clip_len (1..maxlen), and the
    booleans rootrel, gt_2d, flip.
    """
    for key in _CONFIG_BOOLS:
        if key in config and not isinstance(config[key], bool):
            raise CheckpointError(f"{where}: config key {key!r} must be True or False, got {config[key]!r}")
    for key, field_name in _CONFIG_SHAPES.items():
        if key not in config:
            continue
        value, actual = config[key], getattr(cfg, field_name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CheckpointError(f"{where}: config key {key!r} must be a number, got {value!r}")
        if float(value) != float(actual):
            raise CheckpointError(f"{where}: config {key}: {value}, but the weights have {key} {actual:g}")
    if "no_conf" in config and config["no_conf"] != (cfg.dim_in == 2):
        raise CheckpointError(f"{where}: config no_conf: {config['no_conf']}, but the weights take {cfg.dim_in} "
                              "input channels (no_conf: True means 2, x and y)")  # fmt: skip
    if config.get("att_fuse", True) is not True:
        raise CheckpointError(f"{where}: config att_fuse: False (a plain mean of the two streams) is not supported")
    heads = config.get("num_heads", cfg.num_heads)
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1 or cfg.dim_feat % heads:
        raise CheckpointError(f"{where}: config num_heads: {heads!r} does not divide dim_feat {cfg.dim_feat}")
    clip = config.get("clip_len", cfg.maxlen)
    if isinstance(clip, bool) or not isinstance(clip, int) or not 1 <= clip <= cfg.maxlen:
        raise CheckpointError(f"{where}: config clip_len: {clip!r}, but the weights take 1 to {cfg.maxlen} frames")


def eval_convention(config: dict[str, Any] | None, cfg: DSTformerConfig, name: str = "") -> dict[str, Any]:
    """The evaluation convention to record: rootrel, gt_2d, flip from the config (``ASSUMED_CONVENTION`` for keys
    it lacks, or without one), no_conf from the input channels, clip_len from the config (else maxlen), and 'from'
    (the config's name, plus the keys assumed)."""
    config = config or {}
    out = {key: bool(config.get(key, default)) for key, default in ASSUMED_CONVENTION.items()}
    out["no_conf"] = cfg.dim_in == 2
    out["clip_len"] = int(config.get("clip_len", cfg.maxlen))
    assumed = [key for key in (*ASSUMED_CONVENTION, "clip_len") if key not in config]
    if not name:
        out["from"] = "assumed (no --config)"
    else:
        out["from"] = name + (f" (assumed: {', '.join(assumed)})" if assumed else "")
    return out


def describe_convention(convention: dict[str, Any]) -> str:
    """One line: 'rootrel False, gt_2d False, flip True, no_conf False, clip_len 243'."""
    return ", ".join(f"{k} {convention[k]}" for k in ("rootrel", "gt_2d", "flip", "no_conf", "clip_len"))


def import_motionbert(
    src: str | os.PathLike, num_heads: int | None = None, config: str | os.PathLike | None = None
) -> dict[str, Any]:
    """A mocli checkpoint dict from a released MotionBERT file (pose3d, action or mesh).

    ``config``: MotionBERT's YAML config of the run (checked against the weights; its num_heads is used, 8 if
    absent). A pose checkpoint records its evaluation convention in meta['eval_convention'] and meta['clip_len'].
    """
    src = Path(src)
    settings = read_config(config) if config is not None else None
    if settings is not None and num_heads is not None and settings.get("num_heads", num_heads) != num_heads:
        raise CheckpointError(f"--num-heads {num_heads}, but the config has num_heads: {settings['num_heads']}")
    obj = _read(src)
    encoder, head, task = split_motionbert(obj, str(src))
    if task != "pose3d" and "head.weight" not in encoder:
        raise CheckpointError(f"{src}: the backbone has no 3D pose head ('head.weight'); is this a DSTformer?")
    cfg = infer_config(encoder, num_heads or 8)
    if settings is not None:
        check_config(settings, cfg, f"--config {Path(config).name}")
        cfg = replace(cfg, num_heads=settings.get("num_heads", cfg.num_heads))
    model = convert_encoder(encoder, cfg, str(src))
    heads = {}
    if head:
        # Kept verbatim (names without 'module.head.'); mocli's task heads read MotionBERT's names.
        heads[task] = {"kind": f"motionbert-{task}", "config": {}, "state_dict": head}
    meta = {"source": f"MotionBERT release: {src.name}", "task": task, "imported_from": str(src.resolve())}
    epoch = obj.get("epoch")
    if isinstance(epoch, int):
        meta["epoch"] = epoch
    if settings is not None:
        meta["motionbert_config"] = {k: v for k, v in settings.items() if _plain(v)}
    if task == "pose3d":
        meta["eval_convention"] = eval_convention(settings, cfg, Path(config).name if config is not None else "")
        meta["clip_len"] = meta["eval_convention"]["clip_len"]
    return build_checkpoint(model, arch_name_for(cfg), heads=heads, meta=meta)


def _plain(value: Any) -> bool:
    """A config value a weights-only checkpoint can hold: None, bool, int, float, str, or a list of those."""
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))
