"""mocli checkpoints: self-describing files that load with ``torch.load(..., weights_only=True)``.

``load_checkpoint`` is the one way to read one (a file, a run folder or a weights name); ``read_torch_file`` is the
only place mocli unpickles anything, and the MotionBERT import reads release files through it. ``shipping_copy``
(``mocli weights export``) and ``average_checkpoints`` (``mocli weights average``, a model soup) make new ones.

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
                    motionbert_config (the imported run's YAML config values), detector_3d_spread_m (the flip
                    spread, metres, at which ``mocli infer --detector-3d auto`` gives the detector's 3D pose half the
                    weight with these weights; ``mocli.api.model_detector_3d_spread``)
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from mocli._version import __version__
from mocli.errors import CheckpointError
from mocli.models.dstformer import DSTformer, DSTformerConfig
from mocli.models.registry import KINDS, arch_kind, resolve_weights
from mocli.models.stmo import STMO, STMOConfig
from mocli.utils.io import atomic_path

FORMAT = "mocli-checkpoint"
FORMAT_VERSION = 1
DETECTOR_3D_SPREAD_KEY = "detector_3d_spread_m"


def is_spread_m(value: float) -> bool:
    """Whether ``value`` can be ``--detector-3d auto``'s half-weight flip spread: a finite number of metres above 0
    (the one test for the option, the stored meta and the benchmarks' ``auto@S``)."""
    return bool(math.isfinite(value) and value > 0)


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


def load_checkpoint(source: str | os.PathLike) -> dict[str, Any]:
    """The one way mocli reads its checkpoints: resolve, read with ``weights_only=True``, validate.

    Args:
        source: a checkpoint file, a run folder (``runs/pretrain/NAME/``: its model.pt, else best.pt, else
            last.pt) or a weights name (``mocli weights list``).
    Returns:
        The checkpoint dict (see the module docstring); ``resolve_weights(source)`` names the file it came from.
    Raises:
        MocliError: no such file, folder or weights name.
        CheckpointError: the file is not a mocli checkpoint (what it is instead is named), or a newer format.
    """
    path = resolve_weights(source)
    ckpt = read_torch_file(path)
    validate_checkpoint(ckpt, str(path))
    return ckpt


def read_torch_file(path: str | os.PathLike, safe_globals: Sequence[Any] = ()) -> Any:
    """The contents of a file written by ``torch.save``, unpickled with ``weights_only=True``: tensors, numbers,
    strings and containers only (plus ``safe_globals``), so no code in the file ever runs.

    Raises:
        CheckpointError: one line saying what the file is instead (empty, truncated, another format, pickled
            code), never advice to load it unsafely.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file (a folder, pipe or device); a checkpoint is a file")
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for files it cannot read
        raise CheckpointError(f"{path}: {_what_went_wrong(path, e)}") from None


_EXPECTED = "mocli expected a checkpoint written by torch.save"


def _what_went_wrong(path: Path, error: Exception) -> str:
    """What a file that ``torch.load(weights_only=True)`` refused is, in words (torch's own text is not quoted)."""
    if isinstance(error, OSError):
        return f"cannot be read ({error.strerror or type(error).__name__})"
    message = str(error)
    if match := re.search(r"GLOBAL ([\w.]+)", message):
        return (
            f"holds pickled Python code ({match[1]}), which mocli never runs; {_EXPECTED} holding tensors, numbers "
            "and strings only (released MotionBERT files: `mocli weights import motionbert`)"
        )
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if size == 0:
        return f"is empty (0 bytes); {_EXPECTED}"
    if head.startswith(b"PK"):
        if "central directory" in message or "failed reading zip" in message:
            return (
                f"is a truncated or damaged torch file ({size} bytes: its zip index is missing); save or copy it again"
            )
        return f"is a zip archive but not a torch checkpoint (a numpy .npz?); {_EXPECTED}"
    if head.startswith(b"\x80"):
        return f"is a Python pickle that is truncated or was not written by torch.save ({size} bytes); {_EXPECTED}"
    return f"is not a torch checkpoint ({size} bytes, starting {head!r}); {_EXPECTED}"


def _looks_like_motionbert(ckpt: dict[str, Any]) -> bool:
    """A released MotionBERT file: a state dict under 'model_pos' or 'model' with DSTformer tensor names."""
    for key in ("model_pos", "model"):
        state = ckpt.get(key)
        if isinstance(state, dict):
            names = {str(k).removeprefix("module.").removeprefix("backbone.") for k in state}
            if "joints_embed.weight" in names and any(n.startswith("blocks_st.") for n in names):
                return True
    return False


def validate_checkpoint(ckpt: Any, where: str) -> None:
    """Raise a CheckpointError unless ``ckpt`` is a mocli checkpoint this version reads (saying what it is instead)."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"{where}: not a mocli checkpoint (it holds a {type(ckpt).__name__}, {_EXPECTED} by mocli)"
        )
    if ckpt.get("format") != FORMAT:
        if _looks_like_motionbert(ckpt):
            raise CheckpointError(
                f"{where}: a released MotionBERT checkpoint, not a mocli one: convert it with "
                "`mocli weights import motionbert`"
            )
        keys = ", ".join(repr(k) for k in sorted(map(str, ckpt))[:6]) or "none"
        raise CheckpointError(
            f"{where}: not a mocli checkpoint (a dict with keys {keys}; mocli expected format {FORMAT!r}, written by "
            "mocli pretrain, finetune or weights import)"
        )
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


def shipping_copy(
    ckpt: dict[str, Any],
    *,
    half: bool = False,
    license_: str | None = None,
    exported_from: str = "",
    detector_3d_spread_m: float | None = None,
) -> dict[str, Any]:
    """A checkpoint for shipping or sharing: the description and weights only (no optimiser state).

    Args:
        half: float tensors stored as float16 (loaded back as float32).
        license_: a license note for ``meta['license']``.
        exported_from: recorded as ``meta['exported_from']``.
        detector_3d_spread_m: ``--detector-3d auto``'s half-weight flip spread for these weights, metres, for
            ``meta['detector_3d_spread_m']`` (None: the source's, if any).
    Raises:
        CheckpointError: ``detector_3d_spread_m`` not a positive number.
    """
    if detector_3d_spread_m is not None and not is_spread_m(detector_3d_spread_m):
        raise CheckpointError(f"--detector-3d-spread {detector_3d_spread_m:g}: the detector's half-weight spread must "
                              "be a positive number of metres")  # fmt: skip

    def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.half() if half and v.is_floating_point() else v for k, v in state.items()}

    keep = ("format", "format_version", "mocli_version", "arch", "train_config", "meta")
    shipped = {k: ckpt[k] for k in keep if k in ckpt}
    shipped["model"] = convert(ckpt["model"])
    heads = ckpt.get("heads", {})
    shipped["heads"] = {task: {**h, "state_dict": convert(h.get("state_dict", {}))} for task, h in heads.items()}
    shipped["meta"] = {
        **ckpt.get("meta", {}),
        "exported_from": exported_from,
        "dtype": "float16" if half else "float32",
    }
    if license_:
        shipped["meta"]["license"] = license_
    if detector_3d_spread_m is not None:
        shipped["meta"][DETECTOR_3D_SPREAD_KEY] = float(detector_3d_spread_m)
    return shipped


RUN_META = ("metric", "value", "epoch", "step")  # a training run's best validation: not an average's


def _average_states(
    states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float], where: str
) -> dict[str, torch.Tensor]:
    first = states[0]
    for i, state in enumerate(states[1:], start=2):
        if state.keys() != first.keys():
            raise CheckpointError(f"checkpoint {i} has other {where} tensors than the first: not one architecture")
    out = {}
    for key, value in first.items():
        if any(s[key].shape != value.shape for s in states):
            raise CheckpointError(f"{where} tensor {key!r} has other shapes in the checkpoints")
        if value.is_floating_point():
            mean = sum(w * s[key].double() for w, s in zip(weights, states, strict=True))
            out[key] = mean.to(value.dtype)
        elif all(torch.equal(s[key], value) for s in states):
            out[key] = value
        else:
            raise CheckpointError(f"{where} tensor {key!r} (not floating point) differs between the checkpoints")
    return out


def average_checkpoints(
    ckpts: Sequence[dict[str, Any]], weights: Sequence[float] | None = None, names: Sequence[str] | None = None
) -> dict[str, Any]:
    """The weighted mean of the weights of checkpoints of one architecture (a "model soup": runs trained on from
    one starting point average into one model, often better than each); the rest comes from the first.

    Args:
        ckpts: two or more loaded checkpoints (``load_checkpoint``).
        weights: one positive weight per checkpoint, normalised to sum to 1 (default: equal).
        names: what ``meta['averaged_from']`` calls each checkpoint (default: 'checkpoint 1', ...).
    Returns:
        A checkpoint whose model and head tensors are sum_i w_i * tensor_i (in float64, stored in the first's
        dtype; tensors that are not floating point must be equal); ``meta`` is the first's without what describes
        its run's validation (``RUN_META``), ``source`` 'mocli weights average' and ``averaged_from``, each name
        with its normalised weight; everything else is the first's.
    Raises:
        CheckpointError: fewer than two checkpoints, bad weights, other architectures, tensors or heads.
    """
    if len(ckpts) < 2:
        raise CheckpointError("averaging needs two or more checkpoints")
    weights = [1.0] * len(ckpts) if weights is None else [float(w) for w in weights]
    if len(weights) != len(ckpts) or not all(w > 0 and w < float("inf") for w in weights):
        raise CheckpointError(f"give one positive weight per checkpoint ({len(ckpts)}), got {weights}")
    weights = [w / sum(weights) for w in weights]
    first = ckpts[0]
    for i, ckpt in enumerate(ckpts[1:], start=2):
        if ckpt["arch"] != first["arch"]:
            raise CheckpointError(f"checkpoint {i} is not the first's architecture ({first['arch']['name']} with its "
                                  "config): only one architecture averages")  # fmt: skip
        if set(ckpt.get("heads", {})) != set(first.get("heads", {})):
            raise CheckpointError(f"checkpoint {i} has other heads than the first")
    out = {k: v for k, v in first.items() if k not in ("model", "heads", "meta")}
    out["model"] = _average_states([c["model"] for c in ckpts], weights, "model")
    out["heads"] = {
        task: {
            **head,
            "state_dict": _average_states(
                [c["heads"][task].get("state_dict", {}) for c in ckpts], weights, f"{task} head"
            ),
        }
        for task, head in first.get("heads", {}).items()
    }
    names = list(names) if names is not None else [f"checkpoint {i + 1}" for i in range(len(ckpts))]
    if len(names) != len(ckpts):
        raise CheckpointError(f"{len(names)} names for {len(ckpts)} checkpoints")
    out["meta"] = {
        **{k: v for k, v in first.get("meta", {}).items() if k not in RUN_META},
        "source": "mocli weights average",
        "averaged_from": [{"checkpoint": n, "weight": w} for n, w in zip(names, weights, strict=True)],
    }
    return out
