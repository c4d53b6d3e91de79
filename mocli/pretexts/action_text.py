"""The ``action-text`` pretext (ActionPose): align a pooled motion embedding with text embeddings of action labels.

Model (``ActionTextModel``, in ``mocli.models.action_text``): the DSTformer runs its first ``layer`` levels
(``TextConfig.layer``; 0 = the middle, ceil(depth / 2)); a learned class token reads those (B,T,J,C) features by
one multi-head cross-attention (the token is the query, the T*J joint features are keys and values; the encoder's
own layers are not re-run with the token), then an MLP block, LayerNorm and Linear(C -> text dim) give the motion
embedding, L2-normalised. The remaining levels and the pose head still give the 3D pose, so the lift loss can be
trained alongside (``text.lift_weight``).

Loss (``action_text_loss``, pure): with unit motion embeddings z (B,D), unit text embeddings t (K,D) of the K
labels, logits = z t^T / temperature and p = softmax(logits):

    focal   mean_i  -(1 - p_i[y_i]) ** gamma * log p_i[y_i]
    kl      mean_i  KL(q_i || p_i),  q_i = softmax(t[y_i] t^T / soft_temperature)  (soft targets from the
            text-text similarity of the labels; one-hot when soft_temperature is 0)
    total   focal + kl_weight * kl  (+ lift_weight * the MotionBERT lift loss on the same clips)

Data and masks (``ActionTextDataset``, ``sample_text_masks``, ``mirror_label``): ``mocli.pretexts.action_text_data``
(re-exported here): one sample per labelled sequence, a body part or a window of frames masked in training, mirrored
motions with their side labels.

Checkpoints hold the encoder under 'model' and ``heads['action-text']`` = {"kind": "action-text", "config",
"state_dict" (pooling, projection and the (K, D) label text embeddings), "labels" (the K label strings)}, so a
trained checkpoint ranks its own labels without the text package (``rank_labels``, in ``mocli.action_labels``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mocli.action_labels import LabelRanking, rank_labels
from mocli.config import RunConfig, TextConfig, config_to_dict
from mocli.errors import MocliError
from mocli.losses import LiftLossWeights, lift_loss
from mocli.models.action_text import (
    TASK,
    ActionTextHead,
    ActionTextModel,
    ClassTokenPool,
    build_head,
    load_action_text_model,
    middle_level,
)
from mocli.models.checkpoint import model_from_checkpoint
from mocli.models.dstformer import DSTformer
from mocli.models.registry import arch_config, create_model
from mocli.pretexts.action_text_data import (
    BODY_PARTS,
    ActionTextDataset,
    LabelledMotion,
    body_part_keep,
    load_labelled_motions,
    mirror_label,
    sample_text_masks,
    time_window_keep,
)
from mocli.text import check_text_model, get_embedder, label_text

__all__ = [
    "TASK",
    "BODY_PARTS",
    "body_part_keep",
    "time_window_keep",
    "sample_text_masks",
    "soft_targets",
    "action_text_loss",
    "mirror_label",
    "ClassTokenPool",
    "ActionTextHead",
    "ActionTextModel",
    "ActionTextTask",
    "LabelledMotion",
    "load_labelled_motions",
    "ActionTextDataset",
    "LabelRanking",
    "load_action_text_model",
    "rank_labels",
    "check_config",
    "build",
]

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]


# ----------------------------------------------------------------------------------------------------------------------
# Loss (pure torch)
# ----------------------------------------------------------------------------------------------------------------------


def soft_targets(text_emb: torch.Tensor, labels: torch.Tensor, soft_temperature: float) -> torch.Tensor:
    """(K, D) unit text embeddings, (B,) label ids -> (B, K) targets softmax(t[y] t^T / soft_temperature);
    one-hot when ``soft_temperature`` <= 0."""
    if soft_temperature <= 0:
        return F.one_hot(labels, text_emb.shape[0]).to(text_emb.dtype)
    return torch.softmax(text_emb[labels] @ text_emb.T / soft_temperature, dim=-1)


def action_text_loss(
    motion_emb: torch.Tensor,
    text_emb: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 0.1,
    focal_gamma: float = 2.0,
    soft_temperature: float = 0.05,
    kl_weight: float = 0.5,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Focal contrastive loss plus KL to text-similarity soft targets (see the module docstring).

    Args:
        motion_emb: (B, D) unit motion embeddings.
        text_emb: (K, D) unit text embeddings of the label set.
        labels: (B,) int64 label ids in [0, K).
    Returns:
        total (0-dim) and detached terms {'focal', 'kl', 'top1'} (top1: batch accuracy).
    """
    logits = motion_emb.float() @ text_emb.float().T / temperature  # (B, K)
    logp = torch.log_softmax(logits, dim=-1)
    logp_y = logp.gather(1, labels[:, None])[:, 0]  # (B,)
    focal = (-((1 - logp_y.exp()) ** focal_gamma) * logp_y).mean()
    q = soft_targets(text_emb.float(), labels, soft_temperature)
    kl = (q * (torch.log(q.clamp_min(1e-12)) - logp)).sum(dim=-1).mean()
    top1 = (logits.argmax(dim=-1) == labels).float().mean()
    return focal + kl_weight * kl, {"focal": focal.detach(), "kl": kl.detach(), "top1": top1.detach()}


# Model: ``mocli.models.action_text`` (ActionTextModel, its head and loading)
# ----------------------------------------------------------------------------------------------------------------------


def _head_config(encoder: DSTformer, text: TextConfig, text_dim: int, num_labels: int) -> dict[str, Any]:
    layer = text.layer or middle_level(encoder.cfg.depth)
    return {
        "dim": encoder.cfg.dim_feat, "num_heads": encoder.cfg.num_heads, "text_dim": int(text_dim),
        "num_labels": int(num_labels), "layer": int(layer), "text_model": text.model, "prompt": text.prompt,
        "temperature": float(text.temperature),
    }  # fmt: skip


# Ranking free-text labels with a trained model (inference): ``mocli.action_labels`` (rank_labels, LabelRanking)


# ----------------------------------------------------------------------------------------------------------------------
# Task
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class ActionTextTask:
    """The action-text loss (plus the lift loss); validation top-1 / top-5 over the label set and MPJPE."""

    text: TextConfig
    lift_weights: LiftLossWeights
    name: str = TASK
    head_prefixes: tuple[str, ...] = ("text_head.",)
    best_metric: str = "top1_error"

    def _loss_terms(self, out: dict[str, Any], batch: Batch, text_emb: torch.Tensor):
        t = self.text
        return action_text_loss(
            out["embedding"], text_emb, batch["label"], temperature=t.temperature, focal_gamma=t.focal_gamma,
            soft_temperature=t.soft_temperature, kl_weight=t.kl_weight,
        )  # fmt: skip

    def loss(self, module: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        use_lift = self.text.lift_weight > 0
        out = module(batch["input"], pose=use_lift)
        base = module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module
        total, terms = self._loss_terms(out, batch, base.text_head.label_emb)
        if use_lift:
            lift, lift_terms = lift_loss(
                out["pose"].float(), batch["target"], batch["weight_2d"], batch["has_3d"], self.lift_weights
            )
            total = total + self.text.lift_weight * lift
            terms.update({"lift": lift.detach(), "mpjpe": lift_terms["mpjpe"]})
        return total, terms

    def eval_sums(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        from mocli.training.lift_task import LiftTask

        out = model(batch["input"], pose=True)
        text_emb = model.text_head.label_emb
        loss, _ = self._loss_terms(out, batch, text_emb)
        logits = out["embedding"].float() @ text_emb.float().T  # (B, K)
        top5 = logits.topk(min(5, logits.shape[1]), dim=-1).indices
        label = batch["label"]
        n = float(label.shape[0])
        pose = out["pose"].float()
        lift = LiftTask(self.lift_weights).eval_sums(lambda _x: pose, batch)  # the pose the forward already made
        return {
            "text_loss": loss.detach() * n,
            "correct1": (top5[:, 0] == label).sum().float(),
            "correct5": (top5 == label[:, None]).any(dim=-1).sum().float(),
            "mpjpe_mm": lift["mpjpe_mm"],
            "pa_mpjpe_mm": lift["pa_mpjpe_mm"],
            "joints_3d": lift["joints_3d"],
            "samples": torch.tensor(n),
        }

    def summarise(self, sums: dict[str, float]) -> dict[str, float]:
        n = max(sums["samples"], 1.0)
        out = {
            "loss": sums["text_loss"] / n,
            "top1": sums["correct1"] / n,
            "top5": sums["correct5"] / n,
            "top1_error": 1.0 - sums["correct1"] / n,
        }
        if sums.get("joints_3d", 0) > 0:
            out["mpjpe_mm"] = sums["mpjpe_mm"] / sums["joints_3d"]
            out["pa_mpjpe_mm"] = sums["pa_mpjpe_mm"] / sums["joints_3d"]
        return out


# ----------------------------------------------------------------------------------------------------------------------
# The pretext interface of mocli.train
# ----------------------------------------------------------------------------------------------------------------------


def check_config(cfg: RunConfig, world: int = 1, ckpt: dict[str, Any] | None = None) -> None:
    """One-line MocliErrors for settings that cannot work (before any data is read)."""

    t, d = cfg.text, cfg.data
    if ckpt is not None:
        maxlen, depth = ckpt["arch"]["config"]["maxlen"], ckpt["arch"]["config"]["depth"]
    elif cfg.init:
        maxlen, depth = None, None  # checked in build, once the --init checkpoint is read
    else:
        arch = arch_config(cfg.model)
        maxlen, depth = arch.maxlen, arch.depth
    if maxlen is not None and d.clip_len > maxlen:
        raise MocliError(
            f"clip length {d.clip_len} is longer than the model's maxlen {maxlen}: use --clip-len {maxlen} or less"
        )
    if d.clip_len < 2:
        raise MocliError(f"clip length must be at least 2 frames, not {d.clip_len}")
    if depth is not None and not 0 <= t.layer <= depth:
        raise MocliError(f"text.layer must be 0 (middle) or 1..{depth} (the encoder's levels), not {t.layer}")
    if not t.label_keys:
        raise MocliError("text.label_keys is empty: name the sequence attributes with labels, e.g. content_label")
    if t.temperature <= 0:
        raise MocliError(f"text.temperature must be > 0, not {t.temperature}")
    for key in ("part_mask_prob", "time_mask_prob"):
        if not 0 <= getattr(t, key) <= 1:
            raise MocliError(f"text.{key} must be in [0, 1], not {getattr(t, key)}")
    lo, hi = t.time_mask_ratio
    if not 0 <= lo <= hi <= 1:
        raise MocliError(f"text.time_mask_ratio must be two fractions 0 <= low <= high <= 1, not {lo},{hi}")
    if "{label}" not in t.prompt:
        raise MocliError(f"text.prompt must contain {{label}}, not {t.prompt!r}")
    if ckpt is None:  # a resumed run has its label embeddings cached
        check_text_model(t.model)


def _label_embeddings(names: list[str], text: TextConfig, resume: dict[str, Any] | None) -> torch.Tensor:
    """(K, D) text embeddings of the label set: from the resumed checkpoint, else embedded now."""
    if resume is not None:
        entry = resume.get("heads", {}).get(TASK, {})
        if entry.get("labels") != names:
            raise MocliError("--resume: the data's labels differ from the run's label set")
        return entry["state_dict"]["label_emb"]
    embedder = get_embedder(text.model)
    log.info("embedding %d labels with %s", len(names), embedder.name)
    return torch.from_numpy(embedder.embed([label_text(n, text.prompt) for n in names]))


def build(cfg: RunConfig, sources, resume: dict[str, Any] | None):
    """(model, task, train_set, val_set) of the action-text pretext (``sources`` is not supported: the labels are
    HDF5 sequence attributes)."""
    from mocli.training.runs import load_init
    from mocli.utils.seed import seed_everything

    t, d = cfg.text, cfg.data
    if sources is not None:
        raise MocliError("the action-text pretext reads its labels from HDF5 files: give --data FILE.h5")
    if not d.paths:
        raise MocliError("no training data: give --data FILE.h5 with labelled sequences")
    items = load_labelled_motions(d.paths, t.label_keys, fps=d.fps)
    train = [it for it in items if it.source.split == "train"]
    val = [it for it in items if it.source.split == "val"]
    if not train:
        names = ", ".join(Path(p).name for p in d.paths)
        raise MocliError(f"no training sequences (split 'train') with labels {', '.join(t.label_keys)} in {names}")
    names = sorted({it.label for it in items})
    label_ids = {name: k for k, name in enumerate(names)}
    text_emb = _label_embeddings(names, t, resume)

    seed_everything(cfg.seed)
    init = None
    if resume is not None:
        encoder = model_from_checkpoint(resume, "last.pt")
    elif cfg.init:
        init = load_init(cfg.init)
        encoder = model_from_checkpoint(init, f"--init {cfg.init}")
        arch = init["arch"]["name"]
        if arch != cfg.model:
            log.info("--init: architecture %s (from the checkpoint) replaces %s", arch, cfg.model)
            cfg.model = arch
        check_config(cfg, ckpt=init)
    else:
        encoder = create_model(cfg.model)
    config = _head_config(encoder, t, text_emb.shape[1], len(names))
    head = build_head(config)
    entry = (init or {}).get("heads", {}).get(TASK)
    if entry is not None and entry.get("config") == config and entry.get("labels") == names:
        head.load_state_dict(entry["state_dict"])
        log.info("the action-text head starts from the --init checkpoint's")
    head.label_emb.copy_(text_emb)
    model = ActionTextModel(encoder, head, config, names)
    if t.lift_weight <= 0:  # the levels after the pooled one and the pose head get no gradient: freeze them
        for part in (*encoder.levels[config["layer"] :], encoder.norm, encoder.pre_logits, encoder.head):
            part.requires_grad_(False)
    task = ActionTextTask(t, LiftLossWeights(**config_to_dict(cfg.loss)))
    train_set = ActionTextDataset(train, label_ids, d, t, seed=cfg.seed, train=True)
    val_set = ActionTextDataset(val, label_ids, d, t, seed=cfg.seed, train=False) if val else None
    log.info("action-text: %d labels, %d training and %d validation sequences", len(names), len(train), len(val))
    return model, task, train_set, val_set
