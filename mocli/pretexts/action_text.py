"""The ``action-text`` pretext (ActionPose): align a pooled motion embedding with text embeddings of action labels.

Model (``ActionTextModel``): the DSTformer runs its first ``layer`` levels (``TextConfig.layer``; 0 = the middle,
ceil(depth / 2)); a learned class token reads those (B,T,J,C) features by one multi-head cross-attention (the token
is the query, the T*J joint features are keys and values; the encoder's own layers are not re-run with the token),
then an MLP block, LayerNorm and Linear(C -> text dim) give the motion embedding, L2-normalised. The remaining levels
and the pose head still give the 3D pose, so the lift loss can be trained alongside (``text.lift_weight``).

Loss (``action_text_loss``, pure): with unit motion embeddings z (B,D), unit text embeddings t (K,D) of the K
labels, logits = z t^T / temperature and p = softmax(logits):

    focal   mean_i  -(1 - p_i[y_i]) ** gamma * log p_i[y_i]
    kl      mean_i  KL(q_i || p_i),  q_i = softmax(t[y_i] t^T / soft_temperature)  (soft targets from the
            text-text similarity of the labels; one-hot when soft_temperature is 0)
    total   focal + kl_weight * kl  (+ lift_weight * the MotionBERT lift loss on the same clips)

Masks (training, pure numpy): with ``part_mask_prob`` one of the six ``BODY_PARTS`` is zeroed in every frame; with
``time_mask_prob`` a window of frames (length a fraction ``time_mask_ratio`` of the clip) is zeroed.

Data (``ActionTextDataset``): one sample per labelled sequence of mocli HDF5 files (labels: the sequence attributes
``text.label_keys``, joined by ', '), a window of at most ``text.max_frames`` frames resampled to ``clip_len``, seen
through a random virtual camera like the lift pretext (noise, MotionBERT's masks). A horizontal flip mirrors the 3D
motion, and a label naming a side ('raise-up-left-hand') becomes its mirror ('raise-up-right-hand') when that label
is in the label set.

Checkpoints hold the encoder under 'model' and ``heads['action-text']`` = {"kind": "action-text", "config",
"state_dict" (pooling, projection and the (K, D) label text embeddings), "labels" (the K label strings)}, so a
trained checkpoint ranks its own labels without the text package (``rank_labels``).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mocli.config import DataConfig, RunConfig, TextConfig, config_to_dict
from mocli.data.clips import ClipIndex, LiftClipDataset, MotionSource, subsample
from mocli.data.finetune_data import resample_indices
from mocli.errors import CheckpointError, MocliError
from mocli.losses import LiftLossWeights, lift_loss
from mocli.models.checkpoint import check_state_dict, load_checkpoint, model_from_checkpoint
from mocli.models.dstformer import DSTformer
from mocli.models.registry import arch_config, create_model, resolve_weights
from mocli.skeleton import H36M_17
from mocli.text import TextEmbedder, check_text_model, get_embedder, label_text

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

TASK = "action-text"  # the heads[] entry and the head kind

# The six body parts of the H36M-17 skeleton (joint indices; every joint is in exactly one part).
BODY_PARTS: dict[str, tuple[int, ...]] = {
    "torso": (0, 7, 8),  # pelvis, spine, thorax
    "head": (9, 10),  # nose, head top
    "left_arm": (11, 12, 13),  # shoulder, elbow, wrist
    "right_arm": (14, 15, 16),
    "left_leg": (4, 5, 6),  # hip, knee, ankle
    "right_leg": (1, 2, 3),
}

Batch = dict[str, torch.Tensor]


# ----------------------------------------------------------------------------------------------------------------------
# Masks (pure numpy)
# ----------------------------------------------------------------------------------------------------------------------


def body_part_keep(num_frames: int, num_joints: int, part: str) -> np.ndarray:
    """(T, J) bool keep mask that drops the joints of one of ``BODY_PARTS`` in every frame."""
    keep = np.ones((num_frames, num_joints), dtype=bool)
    keep[:, list(BODY_PARTS[part])] = False
    return keep


def time_window_keep(num_frames: int, num_joints: int, start: int, length: int) -> np.ndarray:
    """(T, J) bool keep mask that drops every joint of frames ``start .. start + length - 1``."""
    keep = np.ones((num_frames, num_joints), dtype=bool)
    keep[max(0, start) : start + length] = False
    return keep


def sample_text_masks(rng: np.random.Generator, num_frames: int, num_joints: int, text: TextConfig) -> np.ndarray:
    """(T, J) bool keep mask: one random body part with ``part_mask_prob``, a random window of
    ``time_mask_ratio`` (fractions of T, at least one frame) with ``time_mask_prob``."""
    keep = np.ones((num_frames, num_joints), dtype=bool)
    if rng.random() < text.part_mask_prob:
        keep &= body_part_keep(num_frames, num_joints, list(BODY_PARTS)[rng.integers(len(BODY_PARTS))])
    if rng.random() < text.time_mask_prob:
        lo, hi = text.time_mask_ratio
        length = max(1, int(round(rng.uniform(lo, hi) * num_frames)))
        start = int(rng.integers(0, max(1, num_frames - length + 1)))
        keep &= time_window_keep(num_frames, num_joints, start, length)
    return keep


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


def mirror_label(label: str) -> str:
    """The label of the mirrored motion: words 'left' and 'right' swapped ('walk-turn-left' -> 'walk-turn-right')."""
    swap = {"left": "right", "right": "left"}
    return re.sub(r"(?<![A-Za-z])(left|right)(?![A-Za-z])", lambda m: swap[m.group(1)], label)


# ----------------------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------------------


class ClassTokenPool(nn.Module):
    """A learned class token reads (B,T,J,C) features: cross-attention (token = query, the T*J joint features =
    keys/values, ``num_heads`` heads), residual, then a pre-LayerNorm MLP block. Output (B,C)."""

    def __init__(self, dim: int, num_heads: int, eps: float = 1e-6) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.token = nn.Parameter(torch.zeros(1, 1, dim))
        self.norm_kv = nn.LayerNorm(dim, eps=eps)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.fc2 = nn.Linear(2 * dim, dim)
        nn.init.trunc_normal_(self.token, std=0.02)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        B, T, J, C = feats.shape
        H = self.num_heads
        kv = self.kv(self.norm_kv(feats).reshape(B, T * J, C)).view(B, T * J, 2, H, C // H)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, T*J, C/H) each
        q = self.q(self.token).view(1, H, 1, C // H).expand(B, H, 1, C // H)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, 1, C/H)
        x = self.token[:, 0] + self.proj(out.reshape(B, C))  # (B, C)
        return x + self.fc2(F.gelu(self.fc1(self.norm_mlp(x))))


class ActionTextHead(nn.Module):
    """Pooling and projection to the text space, plus the label set's text embeddings (buffer ``label_emb`` (K, D)).

    (B,T,J,dim) features -> (B, text_dim) unit motion embeddings.
    """

    def __init__(self, dim: int, num_heads: int, text_dim: int, num_labels: int) -> None:
        super().__init__()
        self.pool = ClassTokenPool(dim, num_heads)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.proj = nn.Linear(dim, text_dim)
        self.register_buffer("label_emb", torch.zeros(num_labels, text_dim))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.norm(self.pool(feats))).float(), dim=-1)


def _middle(depth: int) -> int:
    return max(1, math.ceil(depth / 2))


class ActionTextModel(nn.Module):
    """The encoder and the action-text head.

    ``forward(x)`` with x (B,T,J,3) normalised x, y + confidence returns {'embedding': (B, text_dim) unit vectors,
    'pose': (B,T,J,3) normalised 3D from the full encoder, or None with ``pose=False``}.

    ``config`` (stored with the head): dim, num_heads, text_dim, num_labels, layer (levels before pooling),
    text_model, prompt, temperature; ``labels`` the K label strings (index = label id).
    """

    def __init__(self, encoder: DSTformer, head: ActionTextHead, config: dict[str, Any], labels: Sequence[str]):
        super().__init__()
        self.encoder, self.text_head = encoder, head
        self.config, self.labels = dict(config), list(labels)
        self.layer = int(config["layer"])

    @property
    def cfg(self):
        """The encoder's DSTformerConfig."""
        return self.encoder.cfg

    def forward(self, x: torch.Tensor, pose: bool = True) -> dict[str, torch.Tensor | None]:
        enc = self.encoder
        B, T, J, _ = x.shape
        if T > enc.cfg.maxlen:
            raise ValueError(f"clip of {T} frames is longer than this model's maxlen {enc.cfg.maxlen}")
        h = enc.embed(x) + enc.joint_pos + enc.time_pos[:, :T]  # (B,T,J,C), as DSTformer.forward_features
        for level in enc.levels[: self.layer]:
            h = level(h)
        emb = self.text_head(h)
        if not pose:
            return {"embedding": emb, "pose": None}
        for level in enc.levels[self.layer :]:
            h = level(h)
        return {"embedding": emb, "pose": enc.forward_head(torch.tanh(enc.pre_logits(enc.norm(h))))}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B,T,J,3) -> (B, text_dim) unit motion embeddings; (B,M,T,J,3) persons -> their mean, re-normalised
        (persons with no confident joint, i.e. zero padding, are left out)."""
        if x.ndim == 4:
            return self(x, pose=False)["embedding"]
        B, M = x.shape[:2]
        emb = self(x.flatten(0, 1), pose=False)["embedding"].unflatten(0, (B, M))  # (B, M, D)
        present = (x[..., 2] > 0).flatten(2).any(dim=-1).float()  # (B, M)
        present[:, 0] = torch.where(present.sum(1) > 0, present[:, 0], torch.ones_like(present[:, 0]))
        return F.normalize((emb * present[..., None]).sum(1), dim=-1)

    def checkpoint_parts(self) -> tuple[DSTformer, dict[str, dict[str, Any]]]:
        state = {k: v.detach().cpu() for k, v in self.text_head.state_dict().items()}
        entry = {"kind": TASK, "config": dict(self.config), "state_dict": state, "labels": list(self.labels)}
        return self.encoder, {TASK: entry}

    def load_checkpoint_parts(self, ckpt: dict[str, Any]) -> None:
        check_state_dict(self.encoder, ckpt["model"], "encoder")
        self.encoder.load_state_dict(ckpt["model"])
        entry = ckpt.get("heads", {}).get(TASK)
        if entry is None:
            raise CheckpointError(f"checkpoint has no {TASK!r} head (heads: {', '.join(ckpt.get('heads', {}))})")
        check_state_dict(self.text_head, entry["state_dict"], f"{TASK} head")
        self.text_head.load_state_dict(entry["state_dict"])


def _head_config(encoder: DSTformer, text: TextConfig, text_dim: int, num_labels: int) -> dict[str, Any]:
    layer = text.layer or _middle(encoder.cfg.depth)
    return {
        "dim": encoder.cfg.dim_feat, "num_heads": encoder.cfg.num_heads, "text_dim": int(text_dim),
        "num_labels": int(num_labels), "layer": int(layer), "text_model": text.model, "prompt": text.prompt,
        "temperature": float(text.temperature),
    }  # fmt: skip


def _build_head(config: dict[str, Any]) -> ActionTextHead:
    return ActionTextHead(config["dim"], config["num_heads"], config["text_dim"], config["num_labels"])


def load_action_text_model(source: ActionTextModel | dict[str, Any] | str | os.PathLike) -> ActionTextModel:
    """An ActionTextModel (eval mode) from a model, a loaded checkpoint, a checkpoint path or a weights name."""
    if isinstance(source, ActionTextModel):
        return source
    ckpt = source if isinstance(source, dict) else load_checkpoint(resolve_weights(source))
    entry = ckpt.get("heads", {}).get(TASK)
    if entry is None:
        raise MocliError(f"this checkpoint has no {TASK} head (train one with `mocli pretrain --pretext action-text`)")
    encoder = model_from_checkpoint(ckpt)
    head = _build_head(entry["config"])
    check_state_dict(head, entry["state_dict"], f"{TASK} head")
    head.load_state_dict(entry["state_dict"])
    return ActionTextModel(encoder, head, entry["config"], entry["labels"]).eval()


# ----------------------------------------------------------------------------------------------------------------------
# Ranking free-text labels (inference)
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class LabelRanking:
    """Labels ranked for each of B clips.

    Attributes:
        labels: the K candidate labels, in the order given (or the checkpoint's label set).
        similarity: (B, K) float32 cosine similarity of each clip's motion embedding with each label's text.
        probs: (B, K) float32 softmax(similarity / temperature) over the K labels (the training temperature).
        top_indices: (B, k) int64 indices into ``labels``, best first (k = min(top_k, K)).
        top_labels: B lists of k labels, best first.
        top_probs: (B, k) float32 probabilities of those labels.
    """

    labels: list[str]
    similarity: torch.Tensor
    probs: torch.Tensor
    top_indices: torch.Tensor
    top_labels: list[list[str]]
    top_probs: torch.Tensor


def rank_labels(
    model: ActionTextModel | dict[str, Any] | str | os.PathLike,
    clips: torch.Tensor,
    labels: Sequence[str] | None = None,
    top_k: int = 5,
    *,
    embedder: TextEmbedder | None = None,
    batch_size: int = 64,
) -> LabelRanking:
    """Rank text labels for motion clips with an action-text model.

    Args:
        model: an ActionTextModel, a loaded checkpoint dict, a checkpoint path or a weights name (a checkpoint
            written by ``mocli pretrain --pretext action-text``).
        clips: (B, T, J, 3) normalised x, y (crop-scale box, about [-1, 1]) + confidence, T <= the model's maxlen
            (the model was trained on whole actions resampled to ``clip_len`` frames); or (B, M, T, J, 3) with M
            persons (their embeddings are averaged). Float tensor on any device; the model runs on its own device.
        labels: free-text candidates ('walk', 'wave the right hand'); None: the checkpoint's own label set (cached
            text embeddings, no text package needed). Labels are embedded with the checkpoint's text model and
            prompt; labels of the checkpoint's set reuse its cached embeddings.
        top_k: how many labels to return per clip.
        embedder: a loaded text embedder to reuse (default: loaded on demand, several seconds for the MiniLM model).
        batch_size: clips per forward pass.
    Raises:
        MocliError: no action-text head, no labels, or the text package is missing for free-text labels.
    """
    net = load_action_text_model(model)
    cfg = net.config
    names = list(net.labels) if labels is None else [str(s).strip() for s in labels if str(s).strip()]
    if not names:
        raise MocliError("no labels to rank: give at least one non-empty label")
    cached = {name: k for k, name in enumerate(net.labels)}
    text_emb = torch.zeros(len(names), int(cfg["text_dim"]))
    new = [i for i, name in enumerate(names) if name not in cached]
    for i, name in enumerate(names):
        if name in cached:
            text_emb[i] = net.text_head.label_emb[cached[name]].cpu()
    if new:
        embedder = embedder or get_embedder(cfg["text_model"])
        if embedder.name != cfg["text_model"] or embedder.dim != int(cfg["text_dim"]):
            raise MocliError(f"labels must be embedded with {cfg['text_model']}, not {embedder.name}")
        vectors = embedder.embed([label_text(names[i], cfg["prompt"]) for i in new])
        text_emb[new] = torch.from_numpy(vectors)
    if clips.ndim not in (4, 5) or clips.shape[-1] != 3:
        raise MocliError(f"clips must be (B, T, J, 3) or (B, M, T, J, 3), not {tuple(clips.shape)}")
    device = next(net.parameters()).device
    net.eval()
    with torch.no_grad():
        emb = torch.cat([net.embed(c.to(device).float()).cpu() for c in clips.split(batch_size)]) if len(clips) else (
            torch.zeros(0, text_emb.shape[1])
        )  # fmt: skip
    sim = emb @ text_emb.T  # (B, K)
    probs = torch.softmax(sim / float(cfg["temperature"]), dim=-1)
    k = max(1, min(int(top_k), len(names)))
    top_p, top_i = probs.topk(k, dim=-1)
    return LabelRanking(names, sim, probs, top_i, [[names[j] for j in row] for row in top_i.tolist()], top_p)


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
        from mocli.train import LiftTask

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
# Data
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledMotion:
    """A sequence and its label string (the ``label_keys`` attributes joined by ', ')."""

    source: MotionSource
    label: str


def load_labelled_motions(paths: Sequence[str | os.PathLike], label_keys: Sequence[str], fps: float = 0.0):
    """Every sequence of mocli HDF5 files with 3D joints (or 2D keypoints) and every ``label_keys`` attribute.

    Returns:
        list of LabelledMotion, subsampled to ``fps`` when given.
    Raises:
        InputError: a missing or unreadable file.
    """
    from mocli.data.clips import _sources_of_sequence
    from mocli.data.h5 import open_dataset

    out = []
    for path in paths:
        with open_dataset(path) as ds:
            for ref in ds:
                parts = [ref.attrs.get(k) for k in label_keys]
                if any(p is None or not str(p).strip() for p in parts):
                    continue
                label = ", ".join(str(p).strip() for p in parts)
                for src in _sources_of_sequence(ref.load(), Path(path).name):
                    out.append(LabelledMotion(subsample(src, fps), label))
    return out


def _mirror_world(joints: np.ndarray, up_axis: str) -> np.ndarray:
    """(T, J, 3) world joints -> their mirror image: one horizontal axis negated, left and right joints swapped."""
    from mocli.data.cameras import up_vector

    axis = int(np.flatnonzero(np.abs(up_vector(up_axis)) < 0.5)[0])
    out = joints[:, H36M_17.flip_permutation].copy()
    out[..., axis] *= -1
    return out


class ActionTextDataset(LiftClipDataset):
    """One sample per labelled sequence; indexed by ``(epoch, i)`` or ``i``.

    Sample: the lift pretext's dict (``input`` (T,17,3) normalised x, y + confidence with noise and masks,
    ``target`` (T,17,3) normalised 3D, ``weight_2d``, ``factor``, ``has_3d``; see ``LiftClipDataset``) for a window
    of at most ``text.max_frames`` frames resampled to ``clip_len`` (random window and bin positions in training,
    the centred window and bin middles in validation), plus ``label`` () int64. Training adds the body-part and
    time-window masks and mirrors the motion (with its side label) with probability ``data.flip_prob``.
    """

    def __init__(
        self,
        items: Sequence[LabelledMotion],
        label_ids: dict[str, int],
        cfg: DataConfig,
        text: TextConfig,
        *,
        seed: int = 0,
        train: bool = True,
    ) -> None:
        super().__init__([it.source for it in items], cfg, seed=seed, train=train)
        self.text = text
        n = len(self.sources)
        self.index = ClipIndex(np.arange(n), np.zeros(n, np.int64), np.array([not s.is_3d for s in self.sources]))
        self.labels = np.array([label_ids[it.label] for it in items], dtype=np.int64)
        names = sorted(label_ids, key=label_ids.get)
        self.mirror = np.array([label_ids.get(mirror_label(name), k) for k, name in enumerate(names)], np.int64)

    def active_clips(self, epoch: int) -> np.ndarray:
        return np.arange(len(self.sources))

    def _flip(self, rng: np.random.Generator) -> bool:
        return False  # mirroring happens on the 3D motion (with its label) in __getitem__

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.seed, self.stream, int(epoch), int(i)])
        src = self.sources[int(i)]
        window = min(src.num_frames, self.text.max_frames) if self.text.max_frames > 0 else src.num_frames
        spare = src.num_frames - window
        start = int(rng.integers(0, spare + 1)) if self.train else spare // 2
        frames = start + resample_indices(window, self.cfg.clip_len, rng if self.train else None)
        label = int(self.labels[int(i)])
        if src.joints3d is not None:
            joints = src.joints3d[frames].astype(np.float64)
            if self.train and rng.random() < self.cfg.flip_prob:
                joints, label = _mirror_world(joints, src.up_axis), int(self.mirror[label])
            sample = self._sample_3d(rng, src, joints)
        else:
            sample = self._sample_2d(rng, src.keypoints2d[frames].astype(np.float64))
        if self.train:
            keep = sample_text_masks(rng, *sample["input"].shape[:2], self.text)
            sample["input"] = sample["input"] * keep[..., None]
        out = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sample.items()}
        out["label"] = torch.tensor(label, dtype=torch.int64)
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
    from mocli.train import load_init
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
    head = _build_head(config)
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
