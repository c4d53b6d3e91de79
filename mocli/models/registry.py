"""Named architectures and where weights live. Plain dicts and one factory: no import-time registration."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from mocli.errors import MocliError
from mocli.models.dstformer import DSTformer, DSTformerConfig
from mocli.models.stmo import STMO, STMOConfig

# Architecture presets: size goes in the name, the training recipe in a weights tag (``arch.tag``).
ARCHS: dict[str, DSTformerConfig | STMOConfig] = {
    "dstformer": DSTformerConfig(),  # MotionBERT: 42,466,317 parameters
    "dstformer-lite": DSTformerConfig(dim_feat=256, mlp_ratio=4.0),  # MotionBERT-Lite: 16,001,549 parameters
    # Small enough that video -> 3D runs in real time on a 2-core CPU: 2.2M parameters, 81-frame clips
    "dstformer-small": DSTformerConfig(dim_feat=128, dim_rep=256, depth=4, num_heads=8, mlp_ratio=2.0, maxlen=81),
    "dstformer-tiny": DSTformerConfig(dim_feat=32, dim_rep=32, depth=2, num_heads=4, mlp_ratio=2.0, maxlen=81),
    # P-STMO's many-to-one lifter (243 frames -> the centre frame): 6,572,646 parameters
    "stmo": STMOConfig(),
    "stmo-tiny": STMOConfig(dim=32, depth=1, num_heads=4, mlp_ratio=2.0, maxlen=27),  # tests: 58,406 parameters
}

# Model classes by architecture kind (a checkpoint's arch["kind"]; checkpoints without one are DSTformers)
KINDS: dict[str, tuple[type, type]] = {"dstformer": (DSTformerConfig, DSTformer), "stmo": (STMOConfig, STMO)}

WEIGHTS_SUFFIX = ".pt"
DEFAULT_WEIGHTS = "dstformer-small.mocap"  # the lifter for exact or synthetic 2D: `mocli eval` without --model
DEFAULT_VIDEO_WEIGHTS = "dstformer-small.video"  # the lifter for a detector's 2D: `mocli infer` without --model
DEFAULT_ACTION_WEIGHTS = "dstformer-small.bandai-action"  # `infer --task action|all` without --model/--action-model
DEFAULT_TEXT_WEIGHTS = "dstformer-small.bandai-text"  # the same with --labels (text-aligned, ActionPose pretext)


def arch_config(name: str, **overrides) -> DSTformerConfig | STMOConfig:
    """The config of a named architecture with fields replaced by ``overrides`` (unknown fields are an error)."""
    try:
        cfg = ARCHS[name]
    except KeyError:
        raise MocliError(f"unknown architecture {name!r}; known: {', '.join(ARCHS)}") from None
    unknown = set(overrides) - set(cfg.to_dict())
    if unknown:
        kind = "STMO" if isinstance(cfg, STMOConfig) else "DSTformer"
        raise MocliError(f"unknown {kind} option(s) {sorted(unknown)}; known: {sorted(cfg.to_dict())}")
    try:
        return replace(cfg, **overrides)
    except ValueError as e:  # an STMO maxlen that is not a power of its stride
        raise MocliError(f"{name}: {e}") from None


def arch_kind(cfg: DSTformerConfig | STMOConfig) -> str:
    """'dstformer' or 'stmo': the kind of a config (``KINDS``)."""
    for kind, (config_class, _) in KINDS.items():
        if isinstance(cfg, config_class):
            return kind
    raise TypeError(f"not an architecture config: {type(cfg).__name__}")


def model_for_config(cfg: DSTformerConfig | STMOConfig) -> DSTformer | STMO:
    """A freshly initialised model of a config (a DSTformer or an STMO)."""
    return KINDS[arch_kind(cfg)][1](cfg)


def create_model(name: str = "dstformer", **overrides) -> DSTformer | STMO:
    """A freshly initialised model of a named architecture (``dstformer``, ``dstformer-lite``, ``dstformer-tiny``,
    ``stmo``, ...), with config fields overridden by keyword, e.g. ``create_model("dstformer", maxlen=81)``."""
    return model_for_config(arch_config(name, **overrides))


def shipped_weights_dir() -> Path:
    """The weights that come with mocli: ``mocli/_weights`` in an installed wheel, ``weights/`` in a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "_weights"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "weights"


def user_weights_dir() -> Path:
    """Where imported weights go by default: $MOCLI_HOME/weights, else $XDG_DATA_HOME/mocli/weights, else
    ~/.local/share/mocli/weights."""
    if os.environ.get("MOCLI_HOME"):
        return Path(os.environ["MOCLI_HOME"]).expanduser() / "weights"
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "mocli" / "weights"


def find_weights() -> dict[str, tuple[str, Path]]:
    """Every weights file by name: name -> (origin 'shipped' | 'user', path). User weights shadow shipped ones."""
    found: dict[str, tuple[str, Path]] = {}
    for origin, folder in (("shipped", shipped_weights_dir()), ("user", user_weights_dir())):
        for path in _weights_files(folder, origin):
            found[path.name[: -len(WEIGHTS_SUFFIX)]] = (origin, path)
    return found


def _weights_files(folder: Path, origin: str) -> list[Path]:
    """The ``*.pt`` files of a weights folder, sorted by name ([] when the folder does not exist).

    Raises:
        MocliError: the folder exists but cannot be listed (permissions, I/O error), named in one line.
    """
    try:
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.name.endswith(WEIGHTS_SUFFIX))
    except OSError as e:
        hint = "fix its permissions or set MOCLI_HOME to another folder" if origin == "user" else "reinstall mocli"
        raise MocliError(f"{folder}: cannot read this weights folder ({e.strerror or e}); {hint}") from None


RUN_CHECKPOINTS = ("model.pt", "best.pt", "last.pt")  # what a run folder offers, in the order it is taken


def resolve_weights(path_or_name: str | os.PathLike) -> Path:
    """A checkpoint path from a file path, a run folder or a weights name (``mocli weights list`` shows the names).

    A run folder (``runs/pretrain/NAME/``, ``runs/finetune/NAME/``) gives its ``model.pt``, else ``best.pt``, else
    ``last.pt``.

    Raises:
        MocliError: no such file, folder or name; a folder without a checkpoint; a path that is not a regular file.
    """
    path = Path(path_or_name).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        found = [path / f for f in RUN_CHECKPOINTS if (path / f).is_file()]
        if not found:
            raise MocliError(f"{path}: the folder holds no {', '.join(RUN_CHECKPOINTS[:-1])} or {RUN_CHECKPOINTS[-1]}")
        return found[0]
    if path.exists():
        raise MocliError(f"{path}: not a regular file (a pipe or device); a checkpoint is a file")
    known = find_weights()
    name = str(path_or_name)
    if name in known:
        return known[name][1]
    if path.suffix or os.sep in name:
        raise MocliError(f"checkpoint {name} does not exist")
    hint = ", ".join(known) if known else "none yet; see `mocli weights import --help`"
    raise MocliError(f"no weights named {name!r}; available: {hint}")


def default_weights(name: str = DEFAULT_WEIGHTS) -> Path:
    """A shipped checkpoint used by default: the lifter of ``mocli eval`` (``DEFAULT_WEIGHTS``), of ``mocli infer``
    (``DEFAULT_VIDEO_WEIGHTS``), the action models (``DEFAULT_ACTION_WEIGHTS``, ``DEFAULT_TEXT_WEIGHTS``)."""
    found = find_weights()
    if name in found:
        return found[name][1]
    raise MocliError(
        f"the default weights {name!r} are not in {shipped_weights_dir()}; pass --model NAME|PATH "
        "(see `mocli weights list`)"
    )
