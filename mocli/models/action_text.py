"""The model of the ``action-text`` pretext (ActionPose): a DSTformer whose middle features are pooled by a class
token into a motion embedding in a text model's space, beside its own 3D pose output.

``ActionTextModel`` runs the DSTformer's first ``layer`` levels (0 in the config = the middle, ceil(depth / 2)); a
learned class token reads those (B,T,J,C) features by one multi-head cross-attention (the token is the query, the
T*J joint features are keys and values), then an MLP block, LayerNorm and Linear(C -> text dim) give the motion
embedding, L2-normalised. The remaining levels and the pose head still give the 3D pose.

Checkpoints hold the encoder under 'model' and ``heads['action-text']`` = {"kind": "action-text", "config",
"state_dict" (pooling, projection and the (K, D) label text embeddings), "labels" (the K label strings)}
(``load_action_text_model``). Training (loss, data, masks) is ``mocli.pretexts.action_text``'s; ranking labels with
a trained model is ``mocli.action_labels``'.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mocli.errors import CheckpointError, MocliError
from mocli.models.checkpoint import check_state_dict, load_checkpoint, model_from_checkpoint
from mocli.models.dstformer import DSTformer

__all__ = ["TASK", "ClassTokenPool", "ActionTextHead", "ActionTextModel", "middle_level", "build_head",
           "load_action_text_model"]  # fmt: skip

TASK = "action-text"  # the heads[] entry and the head kind


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


def middle_level(depth: int) -> int:
    """The level after which the class token pools when the config says 0: ceil(depth / 2), at least 1."""
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


def build_head(config: dict[str, Any]) -> ActionTextHead:
    """An untrained head of the shape a checkpoint's head config gives (dim, num_heads, text_dim, num_labels)."""
    return ActionTextHead(config["dim"], config["num_heads"], config["text_dim"], config["num_labels"])


def load_action_text_model(source: ActionTextModel | dict[str, Any] | str | os.PathLike) -> ActionTextModel:
    """An ActionTextModel (eval mode) from a model, a loaded checkpoint, a checkpoint path or a weights name."""
    if isinstance(source, ActionTextModel):
        return source
    ckpt = source if isinstance(source, dict) else load_checkpoint(source)
    entry = ckpt.get("heads", {}).get(TASK)
    if entry is None:
        raise MocliError(f"this checkpoint has no {TASK} head (train one with `mocli pretrain --pretext action-text`)")
    encoder = model_from_checkpoint(ckpt)
    head = build_head(entry["config"])
    check_state_dict(head, entry["state_dict"], f"{TASK} head")
    head.load_state_dict(entry["state_dict"])
    return ActionTextModel(encoder, head, entry["config"], entry["labels"]).eval()
