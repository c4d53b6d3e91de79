"""STMO, the many-to-one lifter of P-STMO: a spatial MLP per frame, a temporal transformer, a strided transformer.

Input (B,T,J,C): x, y normalised to about [-1, 1] (C=2), or x, y + confidence (C=3; the confidence is dropped by a
model with ``dim_in=2``, and a C=2 input gets confidence 1 in a model with ``dim_in=3``). T must be ``maxlen``
(= ``stride ** levels``, e.g. 243 = 3^5): the model looks at a fixed receptive field and predicts its centre frame.

    spatial MLP     per frame: flatten J*dim_in -> Linear -> GELU -> Linear -> (B,T,dim)
    time_pos        learned temporal embedding (1,maxlen,dim), added per frame (or at given frame positions)
    blocks          ``depth`` pre-LayerNorm transformer blocks attending over T, then LayerNorm: the per-frame
                    features (B,T,dim) (``forward_features``; the masked-pose-modelling encoder of P-STMO)
    head_frames     Linear(dim -> J*3) on every frame: the auxiliary per-frame 3D (B,T,J,3)
    reduce          ``levels`` strided blocks: learned position (1,L,dim) + attention over the L frames, then a
                    convolutional FFN Conv1d(dim -> hidden, 1) -> GELU -> Conv1d(hidden -> dim, stride, stride) whose
                    residual is the centre frame of each window: L -> L / stride, down to 1 frame
    head            LayerNorm + Linear(dim -> J*3): the centre frame (B,1,J,3)

``forward(x)`` returns the centre frame (B,1,J,3) normalised 3D; ``forward(x, aux=True)`` returns
``(centre (B,1,J,3), frames (B,T,J,3))``, the pair the lifting loss needs (one call, so DDP sees it).

``ManyToOne(stmo)`` runs an STMO the P-STMO way on clips of any length, (B,T,J,C) -> (B,T,J,3) like a DSTformer:
every output frame is the centre of its own window of ``maxlen`` frames, the clip's ends padded by repeating the
edge frames. It costs one STMO pass per output frame (``mocli infer`` and ``mocli eval`` lift with it).

Choices of mocli (P-STMO's facts are in REFERENCE.md): LayerNorm instead of BatchNorm (no batch-size dependence), no
dropout, the strided windows do not overlap (kernel = stride), so the output sits exactly on frame ``T // 2``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mocli.models.dstformer import Attention, Block

__all__ = ["STMOConfig", "STMO", "StridedBlock", "ManyToOne"]


@dataclass
class STMOConfig:
    """Architecture of an STMO lifter. Defaults: 243 frames, 6,572,646 parameters (P-STMO reports 6.7M)."""

    dim_in: int = 2  # input channels used: 2 (x, y, as P-STMO) or 3 (x, y, confidence)
    dim_out: int = 3
    dim: int = 256  # width of every block
    depth: int = 3  # temporal transformer layers
    num_heads: int = 8
    mlp_ratio: float = 4.0  # temporal transformer MLP hidden = dim * mlp_ratio
    reduce_ratio: float = 2.0  # strided FFN hidden = dim * reduce_ratio
    stride: int = 3  # frames merged by each strided block
    num_joints: int = 17
    maxlen: int = 243  # frames per input (the receptive field): a power of ``stride``
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.stride < 2 or self.stride**self.levels != self.maxlen:
            raise ValueError(f"STMO maxlen {self.maxlen} must be a power of stride {self.stride} (e.g. 27, 81, 243)")
        if self.dim_in not in (2, 3):
            raise ValueError(f"STMO dim_in must be 2 (x, y) or 3 (x, y, confidence), not {self.dim_in}")

    @property
    def levels(self) -> int:
        """Strided blocks: log_stride(maxlen)."""
        return max(1, round(math.log(self.maxlen) / math.log(max(self.stride, 2))))

    def to_dict(self) -> dict:
        return asdict(self)


class StridedBlock(nn.Module):
    """(B,L,dim) -> (B,L/stride,dim): position + attention over L, then a strided convolutional FFN."""

    def __init__(self, dim: int, num_heads: int, hidden: int, stride: int, length: int, eps: float):
        super().__init__()
        self.stride = stride
        self.pos = nn.Parameter(torch.zeros(1, length, dim))
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, "temporal")
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Conv1d(dim, hidden, kernel_size=1)
        self.fc2 = nn.Conv1d(hidden, dim, kernel_size=stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos
        x = x + self.attn(self.norm1(x)[:, :, None])[:, :, 0]  # attention over L: (B,L,1,dim) as (B,T,J,C)
        h = self.fc2(F.gelu(self.fc1(self.norm2(x).transpose(1, 2)))).transpose(1, 2)  # (B, L/stride, dim)
        return x[:, self.stride // 2 :: self.stride] + h


class STMO(nn.Module):
    """The STMO lifter. forward_features: (B,T,J,C) -> (B,T,dim); forward: -> centre (B,1,J,3) [, frames]."""

    def __init__(self, cfg: STMOConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or STMOConfig()
        D, J = cfg.dim, cfg.num_joints
        self.spatial = nn.Sequential(nn.Linear(J * cfg.dim_in, D), nn.GELU(), nn.Linear(D, D))
        self.time_pos = nn.Parameter(torch.zeros(1, cfg.maxlen, D))
        self.blocks = nn.ModuleList(
            Block(D, cfg.num_heads, cfg.mlp_ratio, "temporal", cfg.norm_eps) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(D, eps=cfg.norm_eps)
        self.head_frames = nn.Linear(D, J * cfg.dim_out)
        hidden = int(D * cfg.reduce_ratio)
        lengths = [cfg.maxlen // cfg.stride**k for k in range(cfg.levels)]
        self.reduce = nn.ModuleList(
            StridedBlock(D, cfg.num_heads, hidden, cfg.stride, n, cfg.norm_eps) for n in lengths
        )
        self.norm_out = nn.LayerNorm(D, eps=cfg.norm_eps)
        self.head = nn.Linear(D, J * cfg.dim_out)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Trunc-normal(0.02) weights and embeddings, zero biases, unit LayerNorms."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.time_pos, std=0.02)
        for block in self.reduce:
            nn.init.trunc_normal_(block.pos, std=0.02)

    def encoder_prefixes(self) -> tuple[str, ...]:
        """Parameter-name prefixes of the per-frame encoder (what masked pose modelling trains)."""
        return ("spatial.", "time_pos", "blocks.", "norm.")

    def _channels(self, x: torch.Tensor) -> torch.Tensor:
        C, want = x.shape[-1], self.cfg.dim_in
        if C >= want:
            return x[..., :want]
        if C == 2 and want == 3:
            return torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
        raise ValueError(f"expected (B,T,J,2) or (B,T,J,3) input, got {tuple(x.shape)}")

    def forward_features(self, x: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """(B,T,J,C) normalised 2D [+ confidence] -> per-frame features (B,T,dim).

        ``frames``: (B,T) or (T,) long, the position (0 <= p < maxlen) of each input frame in the clip (masked pose
        modelling feeds only the visible frames); default 0..T-1.
        """
        B, T, J, _ = x.shape
        if J != self.cfg.num_joints:
            raise ValueError(f"expected {self.cfg.num_joints} joints, got {J}")
        if frames is None and T > self.cfg.maxlen:
            raise ValueError(f"clip of {T} frames is longer than this model's maxlen {self.cfg.maxlen}")
        h = self.spatial(self._channels(x).reshape(B, T, J * self.cfg.dim_in))  # (B,T,dim)
        h = h + (self.time_pos[:, :T] if frames is None else self.time_pos[0, frames])
        h = h[:, :, None]  # (B,T,1,dim): the blocks attend over T
        for block in self.blocks:
            h = block(h)
        return self.norm(h[:, :, 0])

    def forward(self, x: torch.Tensor, aux: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B,maxlen,J,C) -> centre frame (B,1,J,3) normalised 3D; with ``aux``: (centre, frames (B,T,J,3))."""
        B, T, J, _ = x.shape
        if T != self.cfg.maxlen:
            raise ValueError(f"STMO takes exactly {self.cfg.maxlen} frames (its receptive field), got {T}")
        feats = self.forward_features(x)  # (B,T,dim)
        h = feats
        for block in self.reduce:
            h = block(h)  # (B, T / stride^k, dim)
        centre = self.head(self.norm_out(h)).reshape(B, 1, J, self.cfg.dim_out)
        if not aux:
            return centre
        return centre, self.head_frames(feats).reshape(B, T, J, self.cfg.dim_out)


class ManyToOne(nn.Module):
    """An STMO as a per-frame lifter: (B,T,J,C) normalised 2D [+ confidence] -> (B,T,J,3) normalised 3D, any T >= 1.

    Frame t's output is ``stmo`` on the ``maxlen`` frames centred at t (frames t - maxlen//2 .. t + maxlen//2), the
    clip padded at both ends by repeating its first and last frames (P-STMO pads sequence ends by replication).
    The B*T windows run ``chunk`` at a time (bounds the memory: a window is a whole STMO input). Exposes the STMO's
    ``cfg`` (``cfg.maxlen`` is also the default lift window) and ``checkpoint_info``, as callers of a DSTformer use.
    """

    def __init__(self, stmo: STMO, chunk: int = 256):
        super().__init__()
        self.stmo = stmo
        self.cfg = stmo.cfg
        self.chunk = chunk
        if hasattr(stmo, "checkpoint_info"):
            self.checkpoint_info = stmo.checkpoint_info

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, J, C = x.shape
        L = self.cfg.maxlen
        before, after = L // 2, L - 1 - L // 2  # the centre frame of a window is frame L // 2 (``STMO.forward``)
        padded = torch.cat([x[:, :1].expand(B, before, J, C), x, x[:, -1:].expand(B, after, J, C)], dim=1)
        windows = padded.unfold(1, L, 1)  # (B,T,J,C,L) view: window t = padded frames t .. t+L-1
        out, chunk = [], max(1, int(self.chunk))
        for i in range(0, B * T, chunk):
            idx = torch.arange(i, min(i + chunk, B * T), device=x.device)
            batch = windows[idx // T, idx % T].permute(0, 3, 1, 2)  # (n,L,J,C), frame (b, t) centred
            out.append(self.stmo(batch)[:, 0])  # (n,J,3)
        return torch.cat(out).reshape(B, T, J, self.cfg.dim_out)
