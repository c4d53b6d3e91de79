"""MPM on the DSTformer: one shared spatio-temporal encoder for masked 2D, masked 3D and masked 2D -> 3D modelling.

MPM (REFERENCE.md, "P-STMO and MPM") pairs separate light 2D and 3D input encoders and separate 2D and 3D decoders
with one shared spatial-temporal encoder. Here the shared encoder is a standard DSTformer, and the MPM-only parts
live in one task head (``MpmParts``, saved as the checkpoint's ``heads["mpm2d3d"]``):

    2D path   (B,T,J,3) normalised x, y + confidence -> DSTformer.embed (its own Linear(3 -> C))
    3D path   (B,T,J,3) normalised 3D (the lift target's units)  -> embed_3d (Linear(3 -> H), GELU, Linear(H -> C))
    masking   masked joints' tokens are replaced by a learned token (mask_token_2d / mask_token_3d, (C,)) after the
              embedding, so nothing of a masked joint's values reaches the encoder
    trunk     + the DSTformer's joint and time embeddings -> its levels -> norm -> pre_logits + tanh: E (B,T,J,D_rep)
    decoders  decoder_2d: E -> (B,T,J,2) normalised x, y; decoder_3d: E -> (B,T,J,3) normalised 3D;
              lifting (2D -> 3D): the DSTformer's own pose head (Linear(D_rep -> 3))

So the encoder part of a checkpoint is a plain DSTformer whose 2D -> 3D path (embed -> trunk -> head) is the MPM
lifting path: ``mocli.load_model`` gives a working lifter, and a finetune can start from it as from any pretraining.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mocli.errors import CheckpointError
from mocli.models.checkpoint import model_from_checkpoint
from mocli.models.dstformer import DSTformer
from mocli.models.heads import HeadModel, load_head_state

__all__ = ["MPM_HEAD", "MPM_TASKS", "MpmParts", "Mpm2d3dModel", "encode_tokens", "mpm_model_from_checkpoint"]

MPM_HEAD = "mpm2d3d"  # the heads[...] entry (task name and kind) of the MPM parts
MPM_TASKS = ("2d", "3d", "lift")  # masked 2D -> 2D, masked 3D -> 3D, masked 2D -> 3D


class _Mlp(nn.Module):
    """Linear(dim_in -> hidden), exact GELU, Linear(hidden -> dim_out), applied to the last axis."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim_in, hidden)
        self.fc2 = nn.Linear(hidden, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class MpmParts(nn.Module):
    """The MPM-only modules next to a DSTformer: 3D input encoder, mask tokens, 2D and 3D decoders.

    Args:
        dim_feat: the DSTformer's C (token width).
        dim_rep: the DSTformer's D_rep (motion representation width).
        hidden_dim: hidden width of embed_3d, decoder_2d and decoder_3d.
        root_relative: whether the 3D units are root-relative per frame (the training data's convention; read by
            ``mocli.completion``, not a tensor).
        clip_len: the training clip length (frames; the completion window).
    """

    def __init__(
        self, dim_feat: int = 512, dim_rep: int = 512, hidden_dim: int = 512, root_relative: bool = True,
        clip_len: int = 243,
    ) -> None:  # fmt: skip
        super().__init__()
        self.root_relative, self.clip_len = bool(root_relative), int(clip_len)
        self.mask_token_2d = nn.Parameter(torch.zeros(dim_feat))
        self.mask_token_3d = nn.Parameter(torch.zeros(dim_feat))
        self.embed_3d = _Mlp(3, hidden_dim, dim_feat)
        self.decoder_2d = _Mlp(dim_rep, hidden_dim, 2)
        self.decoder_3d = _Mlp(dim_rep, hidden_dim, 3)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.mask_token_2d, std=0.02)
        nn.init.trunc_normal_(self.mask_token_3d, std=0.02)


def encode_tokens(encoder: DSTformer, tokens: torch.Tensor) -> torch.Tensor:
    """The DSTformer after its input embedding: (B,T,J,C) joint tokens -> motion representation E (B,T,J,D_rep).

    ``encode_tokens(enc, enc.embed(x))`` equals ``enc.forward_features(x)``.
    """
    B, T, J, _ = tokens.shape
    if T > encoder.cfg.maxlen:
        raise ValueError(f"clip of {T} frames is longer than this model's maxlen {encoder.cfg.maxlen}")
    if J != encoder.cfg.num_joints:
        raise ValueError(f"expected {encoder.cfg.num_joints} joints, got {J}")
    x = tokens + encoder.joint_pos + encoder.time_pos[:, :T]
    for level in encoder.levels:
        x = level(x)
    return torch.tanh(encoder.pre_logits(encoder.norm(x)))


class Mpm2d3dModel(HeadModel):
    """DSTformer + ``MpmParts``: ``model(x, mask, task)`` for the three MPM tasks.

    Args of ``forward``:
        x: (B,T,J,3) normalised 2D + confidence (tasks '2d', 'lift') or normalised 3D (task '3d').
        mask: (B,T,J) bool, True = masked (the joint's values are never read), or None (nothing masked).
        task: '2d' -> (B,T,J,2) normalised x, y; '3d' -> (B,T,J,3) normalised 3D; 'lift' -> (B,T,J,3) normalised 3D.

    ``model(x)`` is the unmasked lifting, identical to the DSTformer's own ``encoder(x)``.
    In training mode every parameter joins the graph with weight 0 (the parts of the other tasks too), so that a
    DistributedDataParallel step finds a gradient for all of them.
    """

    def __init__(self, encoder: DSTformer, parts: MpmParts, config: dict[str, Any]) -> None:
        super().__init__(encoder, parts, MPM_HEAD, MPM_HEAD, config)

    @property
    def parts(self) -> MpmParts:
        return self.head

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, task: str = "lift") -> torch.Tensor:
        if task not in MPM_TASKS:
            raise ValueError(f"unknown MPM task {task!r}; expected one of {', '.join(MPM_TASKS)}")
        parts = self.parts
        if mask is not None:
            x = x.masked_fill(mask[..., None], 0.0)  # masked values (even NaN) never reach a Linear
        tokens = parts.embed_3d(x) if task == "3d" else self.encoder.embed(x)
        if mask is not None:
            token = parts.mask_token_3d if task == "3d" else parts.mask_token_2d
            tokens = torch.where(mask[..., None], token.to(tokens.dtype), tokens)
        feats = encode_tokens(self.encoder, tokens)
        if task == "2d":
            out = parts.decoder_2d(feats)
        elif task == "3d":
            out = parts.decoder_3d(feats)
        else:
            out = self.encoder.forward_head(feats)
        if self.training and torch.is_grad_enabled():
            out = out + 0.0 * sum(p.reshape(-1)[0] for p in self.parameters() if p.requires_grad)
        return out


def mpm_config(encoder: DSTformer, hidden_dim: int = 0, root_relative: bool = True, clip_len: int = 243) -> dict:
    """The ``MpmParts`` constructor config for ``encoder`` (``hidden_dim`` 0: the encoder's D_rep)."""
    cfg = encoder.cfg
    return {
        "dim_feat": cfg.dim_feat, "dim_rep": cfg.dim_rep, "hidden_dim": int(hidden_dim or cfg.dim_rep),
        "root_relative": bool(root_relative), "clip_len": int(min(clip_len, cfg.maxlen)),
    }  # fmt: skip


def new_mpm_model(encoder: DSTformer, **config: Any) -> Mpm2d3dModel:
    """A DSTformer with freshly initialised MPM parts (``config``: see ``mpm_config``)."""
    full = mpm_config(encoder, **config)
    return Mpm2d3dModel(encoder, MpmParts(**full), full)


def mpm_model_from_checkpoint(ckpt: dict[str, Any], where: str = "checkpoint") -> Mpm2d3dModel:
    """The Mpm2d3dModel of a checkpoint written by ``mocli pretrain --pretext mpm2d3d`` (encoder and MPM head)."""
    entry = ckpt.get("heads", {}).get(MPM_HEAD)
    if entry is None:
        raise CheckpointError(
            f"{where}: no {MPM_HEAD} head (heads: {', '.join(ckpt.get('heads', {})) or 'none'}); "
            "train one with `mocli pretrain --pretext mpm2d3d`"
        )
    encoder = model_from_checkpoint(ckpt, where)
    config = dict(entry["config"])
    parts = MpmParts(**config)
    load_head_state(parts, entry["state_dict"], f"{where}: {MPM_HEAD} head")
    return Mpm2d3dModel(encoder, parts, config)
