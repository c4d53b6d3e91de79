"""P-STMO's masked pose modelling model: an MAE-style encoder (STMO's or a DSTformer) and a light 2D decoder.

    MaskedPoseModel(x, visible, joint_mask) -> (B,T,J,2) reconstructed normalised 2D

1. spatial masking: joints with ``joint_mask`` True get a learned token (``decoder.spatial_token``, dim_in values)
   in place of their x, y (and confidence for a 3-channel model);
2. temporal masking: only the visible frames ``visible`` (B,Tv) are gathered and encoded, each with its own temporal
   position: STMO ``forward_features(x, frames)`` -> (B,Tv,dim), DSTformer ``forward_features(x, frames)`` ->
   (B,Tv,J,dim_rep) flattened to (B,Tv,J*dim_rep). The encoder never sees a masked frame;
3. ``MaskedPoseDecoder``: Linear(features -> dim) per visible frame, a learned mask token in every masked frame,
   learned temporal positions for all T frames, ``depth`` transformer blocks over T, LayerNorm, Linear(-> J*2).

The decoder (with the spatial token) is the pretext head: in checkpoints it is ``heads["mpm"]`` (kind
'mpm-decoder'); 'model' holds the backbone alone, so a pretraining run's model.pt loads with ``mocli.load_model``.
Backbone parameters the pretext does not use (STMO's strided part and heads, the DSTformer's pose head) are frozen
while pretraining (they keep their initial values).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mocli.errors import CheckpointError
from mocli.models.checkpoint import check_state_dict
from mocli.models.dstformer import Block, DSTformer
from mocli.models.stmo import STMO

__all__ = ["DECODER_KIND", "HEAD_NAME", "MaskedPoseDecoder", "MaskedPoseModel", "feature_dim"]

DECODER_KIND = "mpm-decoder"
HEAD_NAME = "mpm"


def feature_dim(backbone: nn.Module) -> int:
    """Width of one frame's encoder features: STMO dim, DSTformer J * dim_rep."""
    cfg = backbone.cfg
    return cfg.dim if isinstance(backbone, STMO) else cfg.num_joints * cfg.dim_rep


class MaskedPoseDecoder(nn.Module):
    """(B,Tv,feat_dim) visible-frame features + their positions -> (B,T,J,2) normalised 2D of all T frames.

    Also holds the learned spatial mask token (dim_in values) the model puts in masked joints before encoding.
    """

    def __init__(
        self, feat_dim: int, dim_in: int = 2, num_joints: int = 17, maxlen: int = 243, dim: int = 256,
        depth: int = 2, num_heads: int = 8, mlp_ratio: float = 2.0, norm_eps: float = 1e-6,
    ) -> None:  # fmt: skip
        super().__init__()
        self.num_joints = num_joints
        self.spatial_token = nn.Parameter(torch.zeros(dim_in))
        self.embed = nn.Linear(feat_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, maxlen, dim))
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio, "temporal", norm_eps) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.out = nn.Linear(dim, num_joints * 2)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        for p in (self.spatial_token, self.mask_token, self.pos):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, feats: torch.Tensor, visible: torch.Tensor, num_frames: int) -> torch.Tensor:
        """feats (B,Tv,feat_dim), visible (B,Tv) long frame indices, T -> (B,T,J,2)."""
        B, Tv, _ = feats.shape
        h = self.embed(feats)  # (B,Tv,dim)
        full = self.mask_token.to(h.dtype).expand(B, num_frames, h.shape[-1])
        full = full.scatter(1, visible[..., None].expand_as(h), h)  # visible frames in place, mask tokens elsewhere
        full = (full + self.pos[:, :num_frames])[:, :, None]  # (B,T,1,dim): the blocks attend over T
        for block in self.blocks:
            full = block(full)
        return self.out(self.norm(full[:, :, 0])).reshape(B, num_frames, self.num_joints, 2)


class MaskedPoseModel(nn.Module):
    """Backbone (STMO or DSTformer) + ``MaskedPoseDecoder``: masked clips -> reconstructed 2D. See the module doc."""

    def __init__(self, backbone: DSTformer | STMO, decoder: MaskedPoseDecoder, decoder_config: dict[str, Any]):
        super().__init__()
        self.backbone, self.decoder = backbone, decoder
        self.decoder_config = dict(decoder_config)

    @property
    def cfg(self):
        """The backbone's config."""
        return self.backbone.cfg

    def masked_input(self, x: torch.Tensor, joint_mask: torch.Tensor) -> torch.Tensor:
        """(B,T,J,C) normalised x, y [+ confidence], (B,T,J) bool -> (B,T,J,dim_in) with the token in masked joints."""
        want = self.backbone.cfg.dim_in
        if x.shape[-1] >= want:
            x = x[..., :want]
        elif x.shape[-1] == 2 and want == 3:
            x = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
        else:
            raise ValueError(f"expected (B,T,J,2) or (B,T,J,3) input, got {tuple(x.shape)}")
        return torch.where(joint_mask[..., None].bool(), self.decoder.spatial_token.to(x.dtype), x)

    def encode(self, x: torch.Tensor, visible: torch.Tensor, joint_mask: torch.Tensor) -> torch.Tensor:
        """Encoder features (B,Tv,feat_dim) of the visible frames only (masked frames are never gathered)."""
        x = self.masked_input(x, joint_mask)
        B, T, J, C = x.shape
        x_vis = x.gather(1, visible[:, :, None, None].expand(B, visible.shape[1], J, C))  # (B,Tv,J,C)
        feats = self.backbone.forward_features(x_vis, frames=visible)
        return feats.flatten(2) if feats.ndim == 4 else feats  # DSTformer (B,Tv,J,D) -> (B,Tv,J*D)

    def forward(self, x: torch.Tensor, visible: torch.Tensor, joint_mask: torch.Tensor) -> torch.Tensor:
        """x (B,T,J,C) clean normalised 2D [+ conf], visible (B,Tv) long sorted, joint_mask (B,T,J) bool
        -> (B,T,J,2) normalised x, y of every frame."""
        return self.decoder(self.encode(x, visible, joint_mask), visible, x.shape[1])

    def checkpoint_parts(self) -> tuple[nn.Module, dict[str, dict[str, Any]]]:
        """(backbone, {"mpm": decoder entry}) for ``build_checkpoint``."""
        state = {k: v.detach().cpu() for k, v in self.decoder.state_dict().items()}
        return self.backbone, {
            HEAD_NAME: {"kind": DECODER_KIND, "config": dict(self.decoder_config), "state_dict": state}
        }

    def load_checkpoint_parts(self, ckpt: dict[str, Any]) -> None:
        """Load the backbone ('model') and the decoder (heads['mpm']) of a mocli checkpoint."""
        check_state_dict(self.backbone, ckpt["model"], "backbone")
        self.backbone.load_state_dict(ckpt["model"])
        entry = ckpt.get("heads", {}).get(HEAD_NAME)
        if entry is None or entry.get("kind") != DECODER_KIND:
            raise CheckpointError(
                f"checkpoint has no {HEAD_NAME!r} decoder head (heads: {', '.join(ckpt.get('heads', {}))})"
            )
        check_state_dict(self.decoder, entry["state_dict"], "mpm decoder")
        self.decoder.load_state_dict(entry["state_dict"])
