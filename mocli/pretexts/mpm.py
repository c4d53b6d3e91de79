"""The ``mpm`` pretext: P-STMO's masked pose modelling (MPM) of 2D sequences, with an STMO or DSTformer encoder.

Data: ``LiftClipDataset`` clips (3D mocap through random virtual cameras, or 2D keypoints) with its own corruption
off: no detection noise, no MotionBERT masks, absolute (not root-relative) targets, and 2D-only sequences from the
first epoch (``mpm_data_config``). The clean normalised 2D is both the input and the target; the masks are the
corruption. ``MaskedPoseDataset`` adds per sample, keyed by (seed, stream, epoch, clip) (exact resume, fixed
validation masks):

    visible     (Tv,) int64 sorted indices of the frames the encoder sees
    masked      (Tm,) int64 sorted indices of the frames masked whole (Tm = round(frame_ratio * T), Tv = T - Tm)
    joint_mask  (T, J) bool, True = the joint is replaced by the learned spatial token; exactly
                ``joints_per_frame`` joints in every visible frame, none in masked frames

Model: ``mocli.models.mpm.MaskedPoseModel`` (the encoder sees only the visible frames, with their temporal
positions; a light decoder fills the masked frames with a learned token and reconstructs all T frames' x, y).

Loss (normalised units): the confidence-weighted mean Euclidean 2D error ``reconstruction_error`` over all frames
(``mpm.loss_frames='all'``, P-STMO: the whole sequence, visible frames included) or over the masked frames only
('masked', MAE). Validation: ``masked_2d`` (best.pt), the error over the masked frames, and ``all_2d`` over all
frames, in normalised units; 1 normalised unit = half the side of the clip's crop box in pixels (the square box over
all of the clip's joints, ``mocli.data.transforms.crop_box``), so a person who spans 500 px of the 1000-px virtual
image has errors in pixels of about 250 x the normalised value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from mocli.config import DataConfig, MpmConfig, RunConfig
from mocli.data.clips import LiftClipDataset
from mocli.data.sources import MotionSource
from mocli.errors import MocliError
from mocli.models.checkpoint import model_from_checkpoint
from mocli.models.dstformer import DSTformer
from mocli.models.mpm import HEAD_NAME, MaskedPoseDecoder, MaskedPoseModel, feature_dim
from mocli.models.registry import arch_config, arch_kind, create_model
from mocli.models.stmo import STMO
from mocli.training.runs import build_datasets, load_init
from mocli.utils.seed import seed_everything

__all__ = [
    "mask_counts",
    "sample_frame_joint_mask",
    "reconstruction_error",
    "mpm_data_config",
    "MaskedPoseDataset",
    "MaskedPoseTask",
    "decoder_config",
    "build_model",
    "check_config",
    "build",
]

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
MASK_STREAM = 7  # the masks' random stream, apart from LiftClipDataset's own draws


# ----------------------------------------------------------------------------------------------------------------------
# Masks and loss (pure)
# ----------------------------------------------------------------------------------------------------------------------


def mask_counts(num_frames: int, frame_ratio: float) -> tuple[int, int]:
    """(visible, masked) frame counts: masked = round(frame_ratio * T), at most T - 1 (one frame stays visible)."""
    masked = min(num_frames - 1, int(round(frame_ratio * num_frames)))
    return num_frames - masked, masked


def sample_frame_joint_mask(
    rng: np.random.Generator, num_frames: int, num_joints: int, frame_ratio: float, joints_per_frame: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P-STMO's masks of one clip: whole frames (temporal) and joints of the visible frames (spatial).

    Returns:
        visible (Tv,) int64 sorted, masked (Tm,) int64 sorted (together a partition of 0..T-1, ``mask_counts``),
        joint_mask (T, J) bool with exactly ``joints_per_frame`` True per visible frame (drawn without
        replacement) and none in masked frames.
    """
    _, n_masked = mask_counts(num_frames, frame_ratio)
    perm = rng.permutation(num_frames)
    masked, visible = np.sort(perm[:n_masked]), np.sort(perm[n_masked:])
    joint_mask = np.zeros((num_frames, num_joints), dtype=bool)
    if joints_per_frame > 0:
        picks = rng.random((len(visible), num_joints)).argsort(axis=1)[:, :joints_per_frame]  # (Tv, m)
        joint_mask[visible[:, None], picks] = True
    return visible.astype(np.int64), masked.astype(np.int64), joint_mask


def reconstruction_error(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean Euclidean 2D error: sum(w * ||pred - target||) / sum(w).

    Args:
        pred, target: (..., J, >=2) normalised x, y (only the first two channels are used).
        weight: (..., J) >= 0 (confidence times the frames the loss covers).
    Returns:
        0-dim float32 tensor in normalised units (0 when every weight is 0).
    """
    dist = torch.linalg.vector_norm(pred[..., :2].float() - target[..., :2].float(), dim=-1)
    w = weight.float()
    return (w * dist).sum() / w.sum().clamp_min(1e-6)


# ----------------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------------


def mpm_data_config(data: DataConfig) -> DataConfig:
    """The DataConfig the pretext reads clips with: clean 2D (no noise, no MotionBERT masks), absolute targets, and
    2D-only sequences from epoch 0 (2D is all this pretext needs)."""
    return replace(data, noise=False, mask_joint_ratio=0.0, mask_frame_ratio=0.0, root_relative=False, join_2d_epoch=0)


class MaskedPoseDataset(LiftClipDataset):
    """``LiftClipDataset`` samples (input = clean normalised x, y + confidence) plus the P-STMO masks (module doc)."""

    def __init__(
        self, sources, cfg: DataConfig, mpm: MpmConfig, *, seed: int = 0, train: bool = True, stride: int | None = None
    ) -> None:
        super().__init__(sources, mpm_data_config(cfg), seed=seed, train=train, stride=stride)
        self.frame_ratio, self.joints_per_frame = mpm.frame_ratio, mpm.joints_per_frame

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        sample = super().__getitem__((epoch, i))
        rng = np.random.default_rng([self.seed, self.stream, int(epoch), int(i), MASK_STREAM])
        T, J = sample["input"].shape[:2]
        visible, masked, joint_mask = sample_frame_joint_mask(rng, T, J, self.frame_ratio, self.joints_per_frame)
        sample.update(
            visible=torch.from_numpy(visible), masked=torch.from_numpy(masked), joint_mask=torch.from_numpy(joint_mask)
        )
        return sample


def _build_data(cfg: RunConfig, sources: list[MotionSource] | None):
    return build_datasets(
        cfg.data,
        sources,
        lambda s, train, stride: MaskedPoseDataset(s, cfg.data, cfg.mpm, seed=cfg.seed, train=train, stride=stride),
    )


# ----------------------------------------------------------------------------------------------------------------------
# Task
# ----------------------------------------------------------------------------------------------------------------------


def _frame_weights(batch: Batch, which: str) -> torch.Tensor:
    """(B,T,J) loss weights: the joints' confidence (``weight_2d``) on the frames ``which`` covers."""
    conf = batch["weight_2d"].float()
    if which == "all":
        return conf
    frames = torch.zeros(conf.shape[:2], device=conf.device).scatter(1, batch["masked"], 1.0)  # (B,T)
    return conf * frames[..., None]


@dataclass
class MaskedPoseTask:
    """Reconstruct the clean 2D of masked clips (module doc). Metrics in normalised units."""

    loss_frames: str = "all"
    name: str = "mpm"
    head_prefixes: tuple[str, ...] = ("decoder.",)
    best_metric: str = "masked_2d"

    def _predict(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        return module(batch["input"], batch["visible"], batch["joint_mask"])

    def loss(self, module: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pred = self._predict(module, batch)
        target = batch["input"]
        loss = reconstruction_error(pred, target, _frame_weights(batch, self.loss_frames))
        with torch.no_grad():
            masked = reconstruction_error(pred, target, _frame_weights(batch, "masked"))
        return loss, {"masked_2d": masked}

    def eval_sums(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        pred = self._predict(model, batch).float()
        target = batch["input"]
        dist = torch.linalg.vector_norm(pred - target[..., :2].float(), dim=-1)  # (B,T,J)
        w_all, w_masked = _frame_weights(batch, "all"), _frame_weights(batch, "masked")
        loss = reconstruction_error(pred, target, _frame_weights(batch, self.loss_frames))
        n = float(pred.shape[0])
        return {
            "loss": loss * n,
            "samples": torch.tensor(n),
            "err_all": (w_all * dist).sum(),
            "w_all": w_all.sum(),
            "err_masked": (w_masked * dist).sum(),
            "w_masked": w_masked.sum(),
        }

    def summarise(self, sums: dict[str, float]) -> dict[str, float]:
        out = {"loss": sums["loss"] / max(sums["samples"], 1.0)}
        if sums["w_all"] > 0:
            out["all_2d"] = sums["err_all"] / sums["w_all"]
        if sums["w_masked"] > 0:
            out["masked_2d"] = sums["err_masked"] / sums["w_masked"]
        return out


# ----------------------------------------------------------------------------------------------------------------------
# Model, checks, build
# ----------------------------------------------------------------------------------------------------------------------


def decoder_config(backbone: DSTformer | STMO, mpm: MpmConfig) -> dict[str, Any]:
    """Constructor arguments of the ``MaskedPoseDecoder`` for a backbone (stored in the checkpoint head entry)."""
    cfg = backbone.cfg
    return {
        "feat_dim": feature_dim(backbone), "dim_in": cfg.dim_in, "num_joints": cfg.num_joints, "maxlen": cfg.maxlen,
        "dim": mpm.decoder_dim, "depth": mpm.decoder_depth, "num_heads": mpm.decoder_heads,
        "mlp_ratio": mpm.decoder_mlp_ratio, "norm_eps": cfg.norm_eps,
    }  # fmt: skip


def build_model(
    backbone: DSTformer | STMO, mpm: MpmConfig, init_heads: dict[str, Any] | None = None, num_frames: int = 0
) -> MaskedPoseModel:
    """The pretext model around ``backbone``: a new decoder, or ``init_heads['mpm']`` when it has the same config.

    Backbone parameters the pretext does not use are frozen (STMO's strided part and heads; the DSTformer's pose
    head), as are the tokens of an empty mask (``num_frames``: the clip length, default maxlen), so every trainable
    parameter gets a gradient (DDP needs that).
    """
    config = decoder_config(backbone, mpm)
    decoder = MaskedPoseDecoder(**config)
    entry = (init_heads or {}).get(HEAD_NAME)
    if entry is not None and entry.get("config") == config:
        decoder.load_state_dict(entry["state_dict"])
        log.info("the mpm decoder starts from the checkpoint's")
    if isinstance(backbone, STMO):
        keep = backbone.encoder_prefixes()
        for name, p in backbone.named_parameters():
            p.requires_grad_(name.startswith(keep))
    else:
        backbone.head.requires_grad_(False)
    if mpm.joints_per_frame == 0:
        decoder.spatial_token.requires_grad_(False)
    if mask_counts(num_frames or backbone.cfg.maxlen, mpm.frame_ratio)[1] == 0:
        decoder.mask_token.requires_grad_(False)
    return MaskedPoseModel(backbone, decoder, config)


def _check_clip(cfg: RunConfig, arch: Any) -> None:
    """One-line errors for a clip length or masks the architecture ``arch`` (its config) cannot take."""
    T, maxlen = cfg.data.clip_len, arch.maxlen
    if arch_kind(arch) == "stmo" and T != maxlen:
        raise MocliError(f"{cfg.model} takes exactly {maxlen} frames: use --clip-len {maxlen}")
    if not 2 <= T <= maxlen:
        raise MocliError(f"clip length {T} must be between 2 and {cfg.model}'s maxlen {maxlen}")
    if not 0 <= cfg.mpm.joints_per_frame < arch.num_joints:
        raise MocliError(
            f"mpm.joints_per_frame must be between 0 and {arch.num_joints - 1}, not {cfg.mpm.joints_per_frame}"
        )


def check_config(cfg: RunConfig, world: int = 1, ckpt: dict[str, Any] | None = None) -> None:
    """Raise a one-line MocliError for settings that cannot work (before any data is read)."""
    from mocli.models.checkpoint import config_from_checkpoint

    m = cfg.mpm
    if not 0.0 <= m.frame_ratio < 1.0:
        raise MocliError(f"mpm.frame_ratio must be in [0, 1), not {m.frame_ratio}")
    if m.loss_frames not in ("all", "masked"):
        raise MocliError(f"mpm.loss_frames must be 'all' or 'masked', not {m.loss_frames!r}")
    if m.decoder_dim < 1 or m.decoder_heads < 1 or m.decoder_dim % m.decoder_heads or m.decoder_depth < 0:
        raise MocliError(
            f"mpm.decoder_dim {m.decoder_dim} must be a positive multiple of mpm.decoder_heads {m.decoder_heads}, "
            f"and mpm.decoder_depth >= 0"
        )
    if ckpt is not None or not cfg.init:  # --init replaces the architecture: checked once it is loaded
        _check_clip(cfg, config_from_checkpoint(ckpt) if ckpt is not None else arch_config(cfg.model))


def build(cfg: RunConfig, sources: list[MotionSource] | None, resume: dict[str, Any] | None):
    """(model, task, train_set, val_set) of an mpm run; ``resume`` is a loaded last.pt (its weights are loaded by
    the loop), ``cfg.init`` a checkpoint to continue from (its architecture replaces ``cfg.model``)."""
    init_heads = None
    if resume is not None:
        backbone = model_from_checkpoint(resume, "last.pt")
    elif cfg.init:
        ckpt = load_init(cfg.init)
        if ckpt is None:
            raise MocliError(f"--init {cfg.init}: nothing to start from")
        backbone = model_from_checkpoint(ckpt, f"--init {cfg.init}")
        if cfg.model != ckpt["arch"]["name"]:
            log.info("--init: architecture %s (from the checkpoint) replaces %s", ckpt["arch"]["name"], cfg.model)
            cfg.model = ckpt["arch"]["name"]
        _check_clip(cfg, backbone.cfg)
        init_heads = ckpt.get("heads", {})
    else:
        backbone = None
    train_set, val_set = _build_data(cfg, sources)
    seed_everything(cfg.seed)
    backbone = backbone if backbone is not None else create_model(cfg.model)
    model = build_model(backbone, cfg.mpm, init_heads, num_frames=cfg.data.clip_len)
    return model, MaskedPoseTask(loss_frames=cfg.mpm.loss_frames), train_set, val_set
