"""An independent DSTformer in MotionBERT's own layout, for parity tests and speed baselines.

Written from the published description (REFERENCE.md): tensors carry the frames folded into the batch, (B*T,J,C),
attention is the explicit softmax(QK^T)V, and the parameter names are those of the released checkpoints
(joints_embed, pos_embed, temp_embed, blocks_st/blocks_ts with *_s/*_t parts, ts_attn, pre_logits.fc, head).
It shares no code with mocli.models.dstformer.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class RefAttention(nn.Module):
    def __init__(self, dim, num_heads, mode):
        super().__init__()
        self.num_heads, self.mode = num_heads, mode
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, seqlen):
        BT, N, C = x.shape
        H = self.num_heads
        qkv = self.qkv(x).reshape(BT, N, 3, H, C // H).permute(2, 0, 3, 1, 4)  # (3, BT, H, N, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.mode == "spatial":
            attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            out = (attn @ v).transpose(1, 2).reshape(BT, N, C)
        else:

            def fold(t):  # (BT, H, N, d) -> (B, H, N, T, d)
                return t.reshape(-1, seqlen, H, N, C // H).permute(0, 2, 3, 1, 4)

            qt, kt, vt = fold(q), fold(k), fold(v)
            attn = ((qt @ kt.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            out = (attn @ vt).permute(0, 3, 2, 1, 4).reshape(BT, N, C)
        return self.proj(out)


class RefMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class RefBlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, order):
        super().__init__()
        self.order = order
        hidden = int(dim * mlp_ratio)
        self.norm1_s, self.norm1_t = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn_s, self.attn_t = RefAttention(dim, num_heads, "spatial"), RefAttention(dim, num_heads, "temporal")
        self.norm2_s, self.norm2_t = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.mlp_s, self.mlp_t = RefMlp(dim, hidden), RefMlp(dim, hidden)

    def _s(self, x, seqlen):
        x = x + self.attn_s(self.norm1_s(x), seqlen)
        return x + self.mlp_s(self.norm2_s(x))

    def _t(self, x, seqlen):
        x = x + self.attn_t(self.norm1_t(x), seqlen)
        return x + self.mlp_t(self.norm2_t(x))

    def forward(self, x, seqlen):
        if self.order == "st":
            return self._t(self._s(x, seqlen), seqlen)
        return self._s(self._t(x, seqlen), seqlen)


class RefDSTformer(nn.Module):
    def __init__(self, dim_in=3, dim_out=3, dim_feat=512, dim_rep=512, depth=5, num_heads=8, mlp_ratio=2,
                 num_joints=17, maxlen=243):  # fmt: skip
        super().__init__()
        self.joints_embed = nn.Linear(dim_in, dim_feat)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_joints, dim_feat))
        self.temp_embed = nn.Parameter(torch.zeros(1, maxlen, 1, dim_feat))
        self.blocks_st = nn.ModuleList(RefBlock(dim_feat, num_heads, mlp_ratio, "st") for _ in range(depth))
        self.blocks_ts = nn.ModuleList(RefBlock(dim_feat, num_heads, mlp_ratio, "ts") for _ in range(depth))
        self.ts_attn = nn.ModuleList(nn.Linear(dim_feat * 2, 2) for _ in range(depth))
        self.norm = nn.LayerNorm(dim_feat, eps=1e-6)
        self.pre_logits = nn.Sequential(OrderedDict([("fc", nn.Linear(dim_feat, dim_rep)), ("act", nn.Tanh())]))
        self.head = nn.Linear(dim_rep, dim_out)
        for p in self.parameters():  # random everywhere (including fusion and norms) so parity means something
            nn.init.normal_(p, std=0.05)

    def get_representation(self, x):
        B, F, J, C = x.shape
        x = x.reshape(-1, J, C)
        x = self.joints_embed(x) + self.pos_embed
        x = x.reshape(B, F, J, -1) + self.temp_embed[:, :F]
        x = x.reshape(B * F, J, -1)
        for blk_st, blk_ts, fuse in zip(self.blocks_st, self.blocks_ts, self.ts_attn, strict=True):
            x_st, x_ts = blk_st(x, F), blk_ts(x, F)
            alpha = fuse(torch.cat([x_st, x_ts], dim=-1)).softmax(dim=-1)
            x = x_st * alpha[:, :, 0:1] + x_ts * alpha[:, :, 1:2]
        x = self.norm(x).reshape(B, F, J, -1)
        return self.pre_logits(x)

    def forward(self, x):
        return self.head(self.get_representation(x))
