"""Layers shared by the backbones: DropPath, MLP, multi-head self- and cross-attention, TokenConv1d.

Only what the pose transformers need, written with timm's semantics (timm itself is not a
dependency; see shared/docs/dependencies.md §2). None of these change state-dict key names:
attribute names follow the official code (``qkv``/``proj``, ``fc1``/``fc2``,
``linear_q``/``linear_k``/``linear_v``/``proj``).

Attention uses ``F.scaled_dot_product_attention`` (fused, numerically equivalent to
``softmax(q k^T / sqrt(d)) v``). When a module's ``record_attention`` flag is set, it computes the
attention matrix explicitly instead and keeps its head-mean in ``last_attention`` so that an
attention-score pruner (H2OT's TPA) can read it. ``TokenConv1d`` is the official ``Conv1d`` run on
the token layout (B, F, C) as one GEMM (StridedTransformer's STE FFN, MHFormer's embeddings).
"""

from __future__ import annotations

from typing import cast

import torch.nn.functional as F
from torch import Tensor, nn


class TokenConv1d(nn.Conv1d):
    """An ``nn.Conv1d`` applied along the frame axis of tokens: (B, F, C_in) -> (B, F', C_out).

    The same layer: parameters, state-dict keys (weight (C_out, C_in, k), bias) and values as the
    official ``Conv1d`` on (B, C_in, F), F' = floor((F + 2p - k) / s) + 1; only the layout differs. It
    is computed as one GEMM: the zero-padded frames are cut into the k-frame windows the stride
    visits (``unfold``: (B, F', C_in, k), a view) and multiplied by the weight seen as
    (C_out, C_in * k). At the backbones' shapes (F = 1..351 frames) this skips the convolution kernel's
    per-call overhead, which is most of its time when few frames remain, and the
    (B, C, F) <-> (B, F, C) transposes around it. Values equal ``nn.Conv1d``'s up to float summation
    order (tests/backbones/test_layers.py). Still an ``nn.Conv1d`` module, so FLOP hooks count it.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding)

    def forward(self, x: Tensor) -> Tensor:
        (k,), (s,), (p,) = self.kernel_size, self.stride, cast(tuple[int], self.padding)
        c_out, c_in, _ = self.weight.shape
        if k == 1 and s == 1 and p == 0:
            return F.linear(x, self.weight.view(c_out, c_in), self.bias)  # (B, F, C_out)
        if p:
            x = F.pad(x, (0, 0, p, p))  # (B, F + 2p, C_in): zero frames at both ends
        windows = x.unfold(1, k, s)  # (B, F', C_in, k), a view
        b, f_out = windows.shape[:2]
        return F.linear(windows.reshape(b, f_out, c_in * k), self.weight.view(c_out, c_in * k), self.bias)


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth: drop whole samples with probability ``p`` and rescale by 1/(1-p)."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    """Stochastic depth per sample (identity in eval mode or at rate 0)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.p, self.training)


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """``linspace(0, rate, depth)`` in plain Python (no tensor ``.item()``: meta-device friendly)."""
    if depth == 1:
        return [0.0]
    return [rate * i / (depth - 1) for i in range(depth)]


class Mlp(nn.Module):
    """Transformer feed-forward network: fc1 -> GELU -> drop -> fc2 -> drop."""

    def __init__(self, dim: int, hidden: int, out_dim: int | None = None, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dim or dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class RecordsAttention(nn.Module):
    """Mixin for attention modules: fused SDPA, or an explicit softmax that is kept for pruners."""

    record_attention: bool = False
    last_attention: Tensor | None = None

    def attend(self, q: Tensor, k: Tensor, v: Tensor, dropout: float = 0.0) -> Tensor:
        """Multi-head attention core. q (B, H, Nq, d), k/v (B, H, Nk, d) -> (B, H, Nq, d)."""
        p = dropout if self.training else 0.0
        if not self.record_attention:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        attn = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (B, H, Nq, Nk)
        attn = attn.softmax(dim=-1)
        self.last_attention = attn.detach().mean(dim=1)  # (B, Nq, Nk), mean over heads
        if p > 0:
            attn = F.dropout(attn, p)
        return attn @ v


class Attention(RecordsAttention):
    """Multi-head self-attention with one fused ``qkv`` Linear (MixSTE, MotionBERT, MHFormer).

    ``proj_first`` registers ``proj`` before ``qkv``, as MotionBERT does (state-dict order).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        proj_first: bool = False,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        if proj_first:
            self.proj = nn.Linear(dim, dim)
            self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        else:
            self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
            self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape  # (B, N tokens, C)
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = self.attend(q, k, v, self.attn_drop)  # (B, H, N, d)
        out = out.transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(out))


class CrossAttention(RecordsAttention):
    """Multi-head cross-attention with separate q/k/v projections.

    Used by HoT's Token Recovering Attention (TRA) and by MHFormer's Cross-Hypothesis Interaction.
    """

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True, attn_drop: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.linear_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.linear_k = nn.Linear(dim, dim, bias=qkv_bias)
        self.linear_v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        b, nq, c = q.shape  # q (B, Nq, C); k, v (B, Nk, C)
        nk = k.shape[1]
        h, d = self.heads, c // self.heads
        qh = self.linear_q(q).reshape(b, nq, h, d).transpose(1, 2)
        kh = self.linear_k(k).reshape(b, nk, h, d).transpose(1, 2)
        vh = self.linear_v(v).reshape(b, nk, h, d).transpose(1, 2)
        out = self.attend(qh, kh, vh, self.attn_drop).transpose(1, 2).reshape(b, nq, c)
        return self.proj(out)


__all__ = [
    "Attention",
    "CrossAttention",
    "DropPath",
    "Mlp",
    "RecordsAttention",
    "drop_path",
    "drop_path_rates",
]
