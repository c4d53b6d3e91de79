"""DSTformer, the dual-stream spatio-temporal transformer of MotionBERT (the motion encoder).

Input (B,T,J,3): x, y normalised to about [-1, 1] plus a confidence channel. ``forward_features`` gives the motion
representation (B,T,J,D_rep); ``forward`` applies the pose head to it and returns (B,T,J,3) (normalised 3D).

Layout of one level: two streams with their own weights, spatial->temporal (ST) and temporal->spatial (TS), each a
pair of pre-LayerNorm transformer blocks; their outputs are mixed per joint and frame by softmax weights from a
Linear(2C -> 2) (the adaptive fusion). Spatial attention: the J joints of a frame attend to each other. Temporal
attention: each joint attends over its T frames. Attention runs through ``F.scaled_dot_product_attention``
(bf16 on CPU: see ``Attention._attend``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DSTformerConfig", "DSTformer", "Attention", "explicit_attention"]


@dataclass
class DSTformerConfig:
    """Architecture of a DSTformer. Defaults are MotionBERT's (42,466,317 parameters)."""

    dim_in: int = 3  # x, y, confidence
    dim_out: int = 3  # x, y, z
    dim_feat: int = 512  # C, the width of every block
    dim_rep: int = 512  # D_rep, the motion representation
    depth: int = 5  # levels, each with an ST and a TS stream
    num_heads: int = 8
    mlp_ratio: float = 2.0
    num_joints: int = 17
    maxlen: int = 243  # longest clip; any T <= maxlen works
    norm_eps: float = 1e-6

    def to_dict(self) -> dict:
        return asdict(self)


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, float_softmax: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v, written out. q, k, v: (..., L, d). The reference formulation (tests), and the
    fast one for short sequences in bf16 on CPU. ``float_softmax``: scores and softmax in float32 whatever the
    dtype of q, k, v (the probabilities are cast back to v's dtype for the product with v)."""
    attn = q @ k.transpose(-2, -1)
    if float_softmax:
        attn = attn.float()
    attn = (attn * q.shape[-1] ** -0.5).softmax(dim=-1)
    return attn.to(v.dtype) @ v


class Attention(nn.Module):
    """Multi-head self-attention over one axis of a (B,T,J,C) tensor: ``axis='spatial'`` (over J) or 'temporal' (T).

    One qkv Linear(C -> 3C) whose output features are ordered (3, heads, head_dim); heads are merged back as
    (heads, head_dim) before the output projection.
    """

    def __init__(self, dim: int, num_heads: int, axis: str):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if axis not in ("spatial", "temporal"):
            raise ValueError(f"axis must be 'spatial' or 'temporal', not {axis!r}")
        self.num_heads = num_heads
        self.axis = axis
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.explicit = False  # True: softmax(QK^T)V written out instead of the fused kernel (parity tests)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, J, C = x.shape
        H = self.num_heads
        # q, k, v as strided 4D views (batch, heads, length, head_dim) of one qkv output, no permuted copies: the
        # fused CPU/CUDA kernels take strided inputs (5D inputs would take the slow math path). Temporal attention
        # runs the qkv Linear on the (B,J,T,C) transpose, so that B*J folds into one batch axis.
        if self.axis == "spatial":
            batch, length, seq = B * T, J, x
        else:
            batch, length, seq = B * J, T, x.transpose(1, 2)  # (B,J,T,C)
        q, k, v = (t.transpose(1, 2) for t in self.qkv(seq).view(batch, length, 3, H, C // H).unbind(2))
        out = self._attend(q, k, v)  # (batch, H, length, d)
        out = out.transpose(1, 2).reshape(seq.shape)  # heads merged as (H, d): a view of the kernels' output
        out = self.proj(out)
        return out if self.axis == "spatial" else out.transpose(1, 2)  # (B,T,J,C)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T / sqrt(d)) v over (batch, heads, length, head_dim), by the fastest kernel for the dtype."""
        if self.explicit:
            return explicit_attention(q, k, v)
        if q.dtype == torch.bfloat16 and q.device.type == "cpu":
            if not torch.is_grad_enabled():  # CPU bf16 inference: batched matmuls beat the flash kernel here
                return explicit_attention(q, k, v)
            # CPU bf16 training: the bf16 flash backward is several times slower than fp32's. Over the J joints
            # bf16 matmuls with a float32 softmax are fastest; over time the fp32 kernel, with autocast off
            # (autocast would cast its inputs back to bf16)
            if self.axis == "spatial":
                return explicit_attention(q, k, v, float_softmax=True)
            with torch.autocast("cpu", enabled=False):
                return F.scaled_dot_product_attention(q.float(), k.float(), v.float()).to(q.dtype)
        return F.scaled_dot_product_attention(q, k, v)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class Block(nn.Module):
    """Pre-LayerNorm transformer block attending over one axis: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, axis: str, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, axis)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Stream(nn.Module):
    """Two blocks in a row: spatial then temporal (order 'st') or temporal then spatial ('ts')."""

    def __init__(self, cfg: DSTformerConfig, order: str):
        super().__init__()
        args = (cfg.dim_feat, cfg.num_heads, cfg.mlp_ratio)
        self.order = order
        self.spatial = Block(*args, axis="spatial", eps=cfg.norm_eps)
        self.temporal = Block(*args, axis="temporal", eps=cfg.norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "st":
            return self.temporal(self.spatial(x))
        return self.spatial(self.temporal(x))


class Level(nn.Module):
    """One DSTformer level: ST and TS streams mixed by adaptive fusion weights per joint and frame."""

    def __init__(self, cfg: DSTformerConfig):
        super().__init__()
        self.st = Stream(cfg, "st")
        self.ts = Stream(cfg, "ts")
        self.fuse = nn.Linear(cfg.dim_feat * 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_st, x_ts = self.st(x), self.ts(x)
        # fuse(cat([x_st, x_ts])) as two half-width products: the same Linear without the (B,T,J,2C) copy
        C = x_st.shape[-1]
        w = self.fuse.weight  # (2, 2C)
        logits = F.linear(x_st, w[:, :C], self.fuse.bias) + F.linear(x_ts, w[:, C:])
        alpha = logits.softmax(dim=-1)  # (B,T,J,2)
        return x_st * alpha[..., 0:1] + x_ts * alpha[..., 1:2]


class DSTformer(nn.Module):
    """The motion encoder with its 3D pose head.

    forward_features: (B,T,J,dim_in) -> (B,T,J,dim_rep); forward_head: -> (B,T,J,dim_out); forward = both.
    """

    def __init__(self, cfg: DSTformerConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DSTformerConfig()
        C = cfg.dim_feat
        self.embed = nn.Linear(cfg.dim_in, C)
        self.joint_pos = nn.Parameter(torch.zeros(1, cfg.num_joints, C))  # (1,J,C) learned spatial embedding
        self.time_pos = nn.Parameter(torch.zeros(1, cfg.maxlen, 1, C))  # (1,maxlen,1,C) learned temporal embedding
        self.levels = nn.ModuleList(Level(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(C, eps=cfg.norm_eps)
        self.pre_logits = nn.Linear(C, cfg.dim_rep)
        self.head = nn.Linear(cfg.dim_rep, cfg.dim_out)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """MotionBERT's initialisation: trunc-normal(0.02) Linear weights and embeddings, zero biases, unit
        LayerNorms, and fusion layers that start as an equal mix (weight 0, bias 0.5)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.joint_pos, std=0.02)
        nn.init.trunc_normal_(self.time_pos, std=0.02)
        for level in self.levels:
            nn.init.zeros_(level.fuse.weight)
            nn.init.constant_(level.fuse.bias, 0.5)

    def forward_features(self, x: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """(B,T,J,dim_in) normalised 2D + confidence -> motion representation E (B,T,J,dim_rep) in [-1, 1].

        ``frames``: (B,T) or (T,) long, each input frame's temporal position (< maxlen) when the input is a subset
        of a clip's frames (masked pose modelling feeds the visible ones); default 0..T-1.
        """
        B, T, J, _ = x.shape
        if T > self.cfg.maxlen:
            raise ValueError(f"clip of {T} frames is longer than this model's maxlen {self.cfg.maxlen}")
        if J != self.cfg.num_joints:
            raise ValueError(f"expected {self.cfg.num_joints} joints, got {J}")
        time_pos = self.time_pos[:, :T] if frames is None else self.time_pos[0, frames]  # (1|B,T,1,C)
        x = self.embed(x) + self.joint_pos + time_pos  # (B,T,J,C)
        for level in self.levels:
            x = level(x)
        return torch.tanh(self.pre_logits(self.norm(x)))

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        """(B,T,J,dim_rep) -> (B,T,J,dim_out) normalised 3D."""
        return self.head(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B,T,J,3) normalised 2D + confidence -> (B,T,J,3) normalised 3D."""
        return self.forward_head(self.forward_features(x))

    def set_explicit_attention(self, explicit: bool = True) -> DSTformer:
        """Switch every attention to the written-out softmax(QK^T)V (for parity checks) or back to the fused one."""
        for m in self.modules():
            if isinstance(m, Attention):
                m.explicit = explicit
        return self
