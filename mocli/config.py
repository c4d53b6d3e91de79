"""Training configuration: dataclasses as the schema, JSON presets, and ``--set section.key=value`` overrides.

``TrainingConfig`` holds what every run has (model, run folder, seed, and the sections data, train and loss);
``RunConfig`` (pretraining) adds the pretext and the pretexts' sections mpm, mpm2d3d and text; ``FinetuneConfig``
adds the task and the sections head and mesh_loss. A key of a section the run does not have is an error.

Precedence: dataclass defaults (MotionBERT's pretraining recipe with the Lite model) < preset (``--preset``) <
command-line options < ``--set``. Overrides are converted with the field's declared type (never ``eval``); an
unknown key is an error that suggests the closest known keys. The resolved config is saved as JSON in the run
folder and in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mocli.errors import MocliError

__all__ = [
    "FINETUNE_TASKS", "DataConfig", "TrainConfig", "LossConfig", "MpmConfig", "TextConfig", "Mpm2d3dConfig",
    "HeadConfig", "MeshLossConfig", "TrainingConfig", "RunConfig", "FinetuneConfig", "finetune_config",
    "finetune_config_from_dict", "PRESETS_DIR", "config_keys", "set_value", "apply_overrides", "apply_dict",
    "config_to_dict", "config_from_dict", "list_presets", "load_preset",
]  # fmt: skip

PRESETS_DIR = Path(__file__).with_name("presets")


@dataclass
class DataConfig:
    """Clips, virtual cameras, normalisation and corruption of the training data."""

    paths: list[str] = field(default_factory=list)  # mocli HDF5 files (sequences of split 'train' and 'val')
    clip_len: int = 243  # T, frames per clip
    stride: int = 81  # frames between training clip starts
    val_stride: int = 0  # frames between validation clip starts (0: clip_len, no overlap)
    fps: float = 0.0  # subsample every sequence to about this rate (0: keep each file's rate)
    root_relative: bool = True  # 3D target relative to the pelvis of each frame
    flip_prob: float = 0.5  # random horizontal flip (training only)
    noise: bool = True  # MotionBERT detection noise + synthetic confidence on the 2D input (else confidence 1)
    mask_joint_ratio: float = 0.05  # fraction of joints zeroed per frame
    mask_frame_ratio: float = 0.10  # fraction of whole frames zeroed
    projection: str = "perspective"  # 'perspective' (pinhole) or 'orthographic' (scaled, as in the paper)
    yaw_deg: tuple[float, float] = (0.0, 360.0)  # camera azimuth around the up axis
    pitch_deg: tuple[float, float] = (-15.0, 30.0)  # camera elevation (positive: above, looking down)
    roll_deg: float = 10.0  # camera roll, uniform in [-roll, roll]
    distance_m: tuple[float, float] = (3.0, 8.0)  # camera to subject, metres
    fov_deg: tuple[float, float] = (35.0, 75.0)  # horizontal field of view (focal length from image width)
    aim_offset_m: tuple[float, float] = (0.0, 0.0)  # camera aim point above the mean pelvis, metres (camera height)
    image_size: tuple[int, int] = (1000, 1000)  # virtual image (w, h), pixels
    scale_range: tuple[float, float] = (1.0, 1.0)  # crop box side / keypoint extent
    join_2d_epoch: int = 30  # curriculum: 2D-only sequences join the training set from this epoch (0-based)
    val_max_clips: int = 0  # validate on at most this many clips (0: all)
    num_workers: int = 0  # DataLoader worker processes per training process
    noise_file: str = ""  # noise model JSON (empty: MotionBERT's, shipped with mocli)
    holdout: bool = False  # leave out what `mocli eval generalisation` scores (mocli.data.holdout)
    repeat: tuple[int, ...] = ()  # per file of `paths`: its training clips this many times an epoch (empty: once)
    # Augmentations of training clips of 3D data (train=True only, per clip; each default is off, docs/pretrain.md)
    body_scale: tuple[float, float] = (1.0, 1.0)  # whole-body length factor
    bone_scale: tuple[float, float] = (1.0, 1.0)  # length factor of each bone group (legs, arms, torso, ...)
    bone_asymmetry: float = 0.0  # largest left/right length difference within a bone group (fraction)
    bend_prob: float = 0.0  # probability of folding a clip's legs further (kneeling, sitting, crouching)
    bend_hip_deg: tuple[float, float] = (-10.0, 90.0)  # extra hip flexion (thigh forward), both legs, degrees
    bend_knee_deg: tuple[float, float] = (0.0, 110.0)  # extra knee flexion (shin backward), degrees
    trunk_prob: float = 0.0  # probability of bending a clip's upper body forward or back about the pelvis
    trunk_deg: tuple[float, float] = (-15.0, 70.0)  # trunk bend range, degrees (> 0 forward)
    tilt_prob: float = 0.0  # probability of tilting the body about a horizontal axis through its pelvis
    tilt_deg: tuple[float, float] = (0.0, 90.0)  # tilt angle range (90: lying)
    tilt_ramp_prob: float = 0.0  # probability that a tilted clip's angle changes over the clip (lying down, getting up)
    speed_fps: tuple[float, float] = (0.0, 0.0)  # play clips as if filmed at a rate in this range (0, 0: off)
    shift_prob: float = 0.0  # probability that a clip's 2D input shows joints defined elsewhere on the body
    shift_m: float = 0.04  # std of those shifts along the bones, metres (mocli.data.definitions)
    occlusion_rate: float = 0.0  # detector-like loss of a joint or limb, events per 100 frames
    occlusion_frames: tuple[int, int] = (5, 30)  # frames an occlusion lasts
    occlusion_limb_prob: float = 0.5  # probability that an occlusion takes a limb or the head, not one joint
    swap_rate: float = 0.0  # left/right swaps of the arms or the legs, events per 100 frames
    swap_frames: tuple[int, int] = (2, 8)  # frames a swap lasts
    jitter_rate: float = 0.0  # low-confidence jitter bursts of one joint, events per 100 frames
    jitter_frames: tuple[int, int] = (3, 15)  # frames a jitter burst lasts
    jitter_std: float = 0.05  # jitter per frame and axis, normalised units


@dataclass
class TrainConfig:
    """Optimiser, schedule, precision and checkpointing."""

    epochs: int = 90
    batch_size: int = 64  # global batch (split evenly over processes)
    lr: float = 5e-4  # backbone learning rate
    lr_head: float = 0.0  # head learning rate (0: same as lr)
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "exp"  # 'exp' (lr * lr_decay ** epoch, MotionBERT), 'cosine' (per step) or 'constant'
    lr_decay: float = 0.99
    warmup_steps: int = 0  # linear warm-up (any schedule)
    min_lr_ratio: float = 0.0  # cosine floor, as a fraction of lr
    grad_clip: float = 1.0  # max global gradient norm (0: off; MotionBERT does not clip)
    precision: str = "auto"  # 'auto' (bf16 on CUDA, fp32 on CPU), 'fp32', 'bf16', 'fp16' (CUDA only)
    compile: bool = False  # torch.compile the training forward (the first step compiles; on CPU needs a C++ compiler)
    save_every: int = 1000  # also write last.pt every N steps (0: only at the end of each epoch and run)
    save_minutes: float = 10.0  # also write last.pt when this many minutes passed since the last write (0: off)
    log_every: int = 10  # steps per train row of log.jsonl


@dataclass
class LossConfig:
    """Loss weights (MotionBERT's pretraining values)."""

    mpjpe: float = 1.0
    n_mpjpe: float = 0.5
    velocity: float = 20.0
    proj_2d: float = 1.0  # confidence-weighted 2D loss of 2D-only data
    n_mpjpe_max_scale: float = 0.0  # N-MPJPE's scale clamped to [1/x, x] (0: unbounded, MotionBERT; docs/pretrain.md)
    bone_length: float = 0.0  # mean |bone length - target's| over the 16 bones of 3D clips (0: off; docs/pretrain.md)


@dataclass
class Mpm2d3dConfig:
    """The mpm2d3d pretext (MPM): masked 2D, masked 3D and masked 2D -> 3D modelling in turn (docs/pretrain.md)."""

    joint_ratio: float = 5 / 16  # fraction of joints masked in each masked frame (rounded to a whole count)
    frame_ratio: float = 0.6  # fraction of frames that get joint_ratio of their joints masked
    drop_frame_ratio: float = 0.0  # fraction of the other frames masked whole (gaps; 0: none)
    tasks: str = "2d,3d,lift"  # the tasks trained, comma-separated, in schedule order
    schedule: str = "round-robin"  # task of global step s: 'round-robin' (tasks[s % n]) or 'random' (from seed, s)
    w_2d: float = 1.0  # weight of the masked 2D loss (normalised units)
    w_3d: float = 1.0  # weight of the masked 3D loss (normalised units)
    w_lift: float = 1.0  # weight of the lifting loss (normalised units)
    hidden_dim: int = 0  # width of the 3D input encoder and the 2D/3D decoders (0: the encoder's dim_rep)


@dataclass
class TextConfig:
    """The action-text pretext (ActionPose): motion embeddings aligned with text embeddings of labels."""

    label_keys: list[str] = field(default_factory=lambda: ["content_label"])  # sequence attrs joined as ', '
    model: str = "all-minilm-l6-v2"  # text embedder: 'all-minilm-l6-v2' (pip package) or 'hash' (tests, no model)
    prompt: str = "{label}"  # template of the embedded text ('-' and '_' in labels become spaces)
    layer: int = 0  # encoder levels run before pooling (0: the middle one, ceil(depth / 2))
    temperature: float = 0.1  # of the motion-text cosine logits
    focal_gamma: float = 2.0  # focal weight (1 - p_label) ** gamma on the contrastive term (0: plain)
    soft_temperature: float = 0.05  # soft targets softmax(text-text cosine / this) (0: one-hot targets)
    kl_weight: float = 0.5  # weight of KL(soft targets || prediction)
    lift_weight: float = 1.0  # weight of the lift loss on the same clips (keeps the encoder a lifter; 0: off)
    part_mask_prob: float = 0.3  # training: probability of zeroing one of six body parts for the whole clip
    time_mask_prob: float = 0.3  # training: probability of zeroing a window of frames
    time_mask_ratio: tuple[float, float] = (0.1, 0.3)  # window length range, fraction of the clip
    max_frames: int = 150  # a window of at most this many frames of a sequence is resampled to clip_len (0: all)


@dataclass
class MpmConfig:
    """The mpm pretext (P-STMO masked pose modelling): mask frames and joints of clean 2D, reconstruct the 2D."""

    frame_ratio: float = 0.9  # fraction of frames masked whole (P-STMO: 0.8-0.9); the encoder sees only the rest
    joints_per_frame: int = 2  # joints of each visible frame replaced by a learned token
    loss_frames: str = "all"  # reconstruction loss on 'all' frames (P-STMO) or only the 'masked' ones (MAE)
    decoder_dim: int = 256  # width of the light decoder
    decoder_depth: int = 2  # decoder transformer layers (attending over all T frames)
    decoder_heads: int = 8
    decoder_mlp_ratio: float = 2.0


FINETUNE_TASKS = ("pose3d", "action", "action-oneshot", "mesh")


@dataclass
class HeadConfig:
    """A finetune task head and its data (0 / negative sizes: the task's MotionBERT default,
    ``mocli.finetune.HEAD_DEFAULTS``)."""

    num_classes: int = 0  # action: number of classes (0: 1 + the largest label in the data)
    hidden_dim: int = 0  # hidden width (0: action and one-shot 2048, mesh 1024)
    dropout: float = -1.0  # dropout on E in the head (negative: action 0.5, one-shot 0, mesh 0.1)
    max_persons: int = 2  # action: persons per sample, zero-padded (NTU: 2)
    label_key: str = "label"  # sequence attribute with the class: integer id or name (Bandai: 'content_label')
    temperature: float = 0.1  # one-shot: supervised contrastive temperature
    samples_per_class: int = 2  # one-shot: samples of each class in a batch
    novel_classes: list[int] = field(default_factory=lambda: list(range(0, 120, 6)))  # one-shot (NTU-120's 20)
    exemplars: list[str] = field(default_factory=list)  # one-shot: exemplar sequence names (default: first by name)
    smpl_dir: str = ""  # mesh: folder of the SMPL files (empty: $MOCLI_SMPL_DIR)


@dataclass
class MeshLossConfig:
    """Mesh loss weights (MotionBERT's)."""

    mpjpe: float = 0.5  # root-relative 17-joint MPJPE, mm
    velocity: float = 10.0  # joint velocity error, mm per frame
    pose: float = 1000.0  # L1 of the 24 rotation matrices
    shape: float = 1.0  # L1 of the betas
    norm: float = 20.0  # mean L2 norm of theta = (72 axis-angle, 10 betas)


@dataclass
class TrainingConfig:
    """What every training run has: the model, where to write it, and the sections data, train and loss."""

    model: str = "dstformer-lite"  # architecture name (see mocli.models.registry.ARCHS)
    name: str = ""  # run folder name under out_dir (empty: an unused 'run', 'run2', ...)
    out_dir: str = "runs/pretrain"
    device: str = "auto"
    seed: int = 0
    max_steps: int = 0  # stop this invocation once the global step reaches this (0: train all epochs)
    init: str = ""  # start from these weights (run folder, checkpoint, weights name); empty: random initialisation
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class RunConfig(TrainingConfig):
    """One pretraining run: the pretext (mocli.pretexts.PRETEXTS) and the pretexts' sections."""

    pretext: str = "lift"
    mpm: MpmConfig = field(default_factory=MpmConfig)
    mpm2d3d: Mpm2d3dConfig = field(default_factory=Mpm2d3dConfig)
    text: TextConfig = field(default_factory=TextConfig)


@dataclass
class FinetuneConfig(TrainingConfig):
    """One finetuning run: the task (``FINETUNE_TASKS``; loss = the pose3d lift loss) and its sections."""

    out_dir: str = "runs/finetune"
    task: str = "pose3d"  # one of FINETUNE_TASKS
    init: str = "scratch"  # pretrain run folder, mocli checkpoint, weights name, or 'scratch' (``model`` then)
    freeze_backbone: bool = False  # train the head only (partial finetuning)
    head: HeadConfig = field(default_factory=HeadConfig)
    mesh_loss: MeshLossConfig = field(default_factory=MeshLossConfig)


# ----------------------------------------------------------------------------------------------------------------------
# Keys and typed conversion
# ----------------------------------------------------------------------------------------------------------------------


def _leaves(obj: Any, prefix: str = "") -> dict[str, tuple[Any, str, Any]]:
    """Dotted key -> (owner dataclass instance, field name, declared type) for every non-dataclass field."""
    out: dict[str, tuple[Any, str, Any]] = {}
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(_leaves(value, key + "."))
        else:
            out[key] = (obj, f.name, hints[f.name])
    return out


def config_keys(cfg: Any) -> list[str]:
    """Every settable dotted key of a config, e.g. ['pretext', ..., 'train.lr', ...]."""
    return list(_leaves(cfg))


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Convert a string (from --set) or a JSON value (from a preset) to the declared type ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], key)
    if origin in (tuple, list):
        items = [s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str) else list(value)
        if origin is tuple and len(args) and args[-1] is not Ellipsis:
            if len(items) != len(args):
                raise MocliError(f"{key}: expected {len(args)} comma-separated values, got {value!r}")
            return tuple(_convert(v, a, key) for v, a in zip(items, args, strict=True))
        elem = args[0] if args else str
        seq = [_convert(v, elem, key) for v in items]
        return tuple(seq) if origin is tuple else seq
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise MocliError(f"{key}: expected true or false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool) or (tp is int and isinstance(value, float) and not value.is_integer()):
            raise MocliError(f"{key}: expected {tp.__name__}, got {value!r}")
        try:
            return tp(value) if not isinstance(value, str) else tp(value.strip())
        except ValueError:
            if tp is int and isinstance(value, str):
                try:
                    as_float = float(value)
                except ValueError:
                    as_float = None
                if as_float is not None and as_float.is_integer():
                    return int(as_float)
            raise MocliError(f"{key}: expected {tp.__name__}, got {value!r}") from None
    if tp is str:
        return str(value)
    raise MocliError(f"{key}: cannot set a field of type {tp}")  # pragma: no cover - schema uses the types above


def _unknown_key(key: str, known: list[str]) -> MocliError:
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    if not close:  # try the last part alone: 'lr' -> 'train.lr'
        tails = {k.rsplit(".", 1)[-1]: k for k in known}
        close = [tails[t] for t in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(tails), n=3, cutoff=0.6)]
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    section, dot, _ = key.partition(".")
    sections = ", ".join(_sections(known))
    if dot and section not in _sections(known):  # e.g. text.temperature in a finetune run
        return MocliError(f"config key {key!r} does not apply to this run; its sections: {sections}{hint}")
    return MocliError(f"unknown config key {key!r}{hint or f'; sections: {sections}'}")


def _sections(known: list[str]) -> list[str]:
    return sorted({k.split(".", 1)[0] for k in known if "." in k})


def set_value(cfg: Any, key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``cfg`` in place, converting ``value`` with the field's type."""
    leaves = _leaves(cfg)
    if key not in leaves:
        raise _unknown_key(key, list(leaves))
    owner, name, tp = leaves[key]
    setattr(owner, name, _convert(value, tp, key))


def apply_overrides(cfg: Any, overrides: list[str]) -> Any:
    """Apply ``["train.lr=2e-4", "data.clip_len=81", ...]`` in order (in place); returns ``cfg``."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MocliError(f"--set {item!r}: expected section.key=value, e.g. train.lr=2e-4")
        set_value(cfg, key.strip(), value.strip())
    return cfg


def _flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in nested.items():
        if k.startswith("_"):  # comments in presets: {"_comment": "..."}
            continue
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def apply_dict(cfg: Any, nested: dict[str, Any]) -> Any:
    """Apply a nested dict of values (a preset or a saved config) in place; keys starting with '_' are ignored."""
    for key, value in _flatten(nested).items():
        set_value(cfg, key, value)
    return cfg


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready nested dict (tuples become lists)."""
    return json.loads(json.dumps(asdict(cfg)))


def config_from_dict(nested: dict[str, Any]) -> RunConfig:
    """A RunConfig from ``config_to_dict`` output (missing keys keep their defaults; unknown keys are an error)."""
    return apply_dict(RunConfig(), nested)


def finetune_config(task: str, **fields: Any) -> FinetuneConfig:
    """The config of a finetune ``task`` from its preset ``finetune_<task>`` (MotionBERT's recipe), with top-level
    fields set."""
    if task not in FINETUNE_TASKS:
        raise MocliError(f"unknown finetune task {task!r}; tasks: {', '.join(FINETUNE_TASKS)}")
    cfg = apply_dict(FinetuneConfig(task=task), load_preset(f"finetune_{task}"))
    for k, v in fields.items():
        setattr(cfg, k, v)
    return cfg


# The pretext keys that finetune runs saved while FinetuneConfig inherited RunConfig: ignored when read back
_OLD_FINETUNE_KEYS = ("pretext", "mpm", "mpm2d3d", "text")


def finetune_config_from_dict(nested: dict[str, Any]) -> FinetuneConfig:
    """A FinetuneConfig from ``config_to_dict`` output (unknown keys are an error)."""
    return apply_dict(FinetuneConfig(), {k: v for k, v in nested.items() if k not in _OLD_FINETUNE_KEYS})


def list_presets() -> list[str]:
    """Names of the presets shipped with mocli."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


def load_preset(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """A preset as a nested dict, by name (``mocli/presets/<name>.json``) or as a path to a JSON file."""
    path = Path(name_or_path)
    if not path.is_file():
        path = PRESETS_DIR / f"{name_or_path}.json"
    if not path.is_file():
        close = difflib.get_close_matches(str(name_or_path), list_presets(), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else f"; presets: {', '.join(list_presets())}"
        raise MocliError(f"no preset or file {str(name_or_path)!r}{hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MocliError(f"cannot read preset {path}: {e}") from None
    if not isinstance(data, dict):
        raise MocliError(f"preset {path} must hold a JSON object")
    return data
