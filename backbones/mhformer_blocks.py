"""Building blocks of MHFormer (Li et al., CVPR 2022): MHG encoders, SHR and CHI blocks.

Attribute names and registration order follow the official ``model/module/trans.py`` and
``model/module/trans_hypothesis.py`` so that state dicts load by key and in order
(shared/docs/backbones.md §2.6). Every LayerNorm in this file uses eps 1e-6, as the official
``norm_layer = partial(nn.LayerNorm, eps=1e-6)``.

The SHR / CHI blocks work on the uniform token tensor (B, F, 3, C): axis 2 holds the three
hypotheses, and ``reshape(B, F, 3C)`` is exactly the official ``torch.cat([x_1, x_2, x_3], dim=2)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from backbones.layers import Attention, CrossAttention, DropPath, Mlp, drop_path_rates

EPS = 1e-6
DROP_PATH_RATE = 0.2  # hard-coded in both official Transformer classes


class Block(nn.Module):
    """Pre-norm transformer block of the MHG encoders: x + attn(norm1(x)); x + mlp(norm2(x))."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, drop: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=EPS)
        self.attn = Attention(dim, heads, qkv_bias=True, proj_drop=drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=EPS)
        self.mlp = Mlp(dim, mlp_hidden, drop=drop)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class MHGTransformer(nn.Module):
    """One encoder of Multi-Hypothesis Generation (official ``trans.py::Transformer``).

    Its tokens are the ``length`` = 2J joint coordinates and its channels the F frames, so
    ``dim`` = F and the 9 heads need F divisible by 9. (B, 2J, F) -> (B, 2J, F).
    """

    def __init__(self, depth: int, dim: int, mlp_hidden: int, length: int, heads: int = 9, drop: float = 0.1) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, length, dim))
        self.pos_drop = nn.Dropout(drop)
        dpr = drop_path_rates(DROP_PATH_RATE, depth)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_hidden, drop, dpr[i]) for i in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=EPS)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pos_drop(x + self.pos_embed)  # (B, 2J, F)
        for blk in self.blocks:
            x = blk(x)
        out: Tensor = self.norm(x)
        return out


def _split(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(B, F, 3, C) -> the three hypotheses, each (B, F, C)."""
    return x[:, :, 0], x[:, :, 1], x[:, :, 2]


class SHRBlock(nn.Module):
    """Self-Hypothesis Refinement: per-hypothesis self-attention over frames, then a shared MLP on 3C."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, drop: float, drop_path: float) -> None:
        super().__init__()
        self.norm1_1 = nn.LayerNorm(dim, eps=EPS)
        self.norm1_2 = nn.LayerNorm(dim, eps=EPS)
        self.norm1_3 = nn.LayerNorm(dim, eps=EPS)
        self.attn_1 = Attention(dim, heads, qkv_bias=True, proj_drop=drop)
        self.attn_2 = Attention(dim, heads, qkv_bias=True, proj_drop=drop)
        self.attn_3 = Attention(dim, heads, qkv_bias=True, proj_drop=drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim * 3, eps=EPS)
        self.mlp = Mlp(dim * 3, mlp_hidden, drop=drop)

    def forward(self, x: Tensor) -> Tensor:
        b, f, _, c = x.shape  # (B, F, 3, C)
        x_1, x_2, x_3 = _split(x)
        x_1 = x_1 + self.drop_path(self.attn_1(self.norm1_1(x_1)))
        x_2 = x_2 + self.drop_path(self.attn_2(self.norm1_2(x_2)))
        x_3 = x_3 + self.drop_path(self.attn_3(self.norm1_3(x_3)))
        y = torch.cat([x_1, x_2, x_3], dim=-1)  # (B, F, 3C)
        y = y + self.drop_path(self.mlp(self.norm2(y)))
        return y.reshape(b, f, 3, c)


class CHIBlock(nn.Module):
    """Cross-Hypothesis Interaction: each hypothesis is updated by cross-attention over the other two.

    ``x_1 += CA_1(q=x_2, k=x_3, v=x_1)``, ``x_2 += CA_2(q=x_1', k=x_3, v=x_2)``,
    ``x_3 += CA_3(q=x_1', k=x_2', v=x_3)`` (sequential, primes are the updated streams), each input
    through its own LayerNorm ``norm3_{i}{j}``; then the shared MLP on 3C as in SHR.
    """

    def __init__(self, dim: int, heads: int, mlp_hidden: int, drop: float, drop_path: float) -> None:
        super().__init__()
        for i in (1, 2, 3):
            for j in (1, 2, 3):
                self.add_module(f"norm3_{i}{j}", nn.LayerNorm(dim, eps=EPS))
        self.attn_1 = CrossAttention(dim, heads, qkv_bias=True)
        self.attn_2 = CrossAttention(dim, heads, qkv_bias=True)
        self.attn_3 = CrossAttention(dim, heads, qkv_bias=True)
        self.proj_drop = nn.Dropout(drop)  # the official Cross_Attention's proj_drop (no parameters)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim * 3, eps=EPS)
        self.mlp = Mlp(dim * 3, mlp_hidden, drop=drop)

    def _cross(self, i: int, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        attn: CrossAttention = getattr(self, f"attn_{i}")
        n = [getattr(self, f"norm3_{i}{j}") for j in (1, 2, 3)]
        return self.drop_path(self.proj_drop(attn(n[0](q), n[1](k), n[2](v))))

    def forward(self, x: Tensor) -> Tensor:
        b, f, _, c = x.shape  # (B, F, 3, C)
        x_1, x_2, x_3 = _split(x)
        x_1 = x_1 + self._cross(1, x_2, x_3, x_1)
        x_2 = x_2 + self._cross(2, x_1, x_3, x_2)
        x_3 = x_3 + self._cross(3, x_1, x_2, x_3)
        y = torch.cat([x_1, x_2, x_3], dim=-1)  # (B, F, 3C)
        y = y + self.drop_path(self.mlp(self.norm2(y)))
        return y.reshape(b, f, 3, c)


class HypothesisTransformer(nn.Module):
    """SHR x (depth - 1) + CHI x 1 + LayerNorm(3C) (official ``trans_hypothesis.py::Transformer``).

    The blocks are run one at a time by :class:`backbones.mhformer.MHFormer` (the uniform view);
    this module only owns the parameters and the position step.
    """

    def __init__(self, depth: int, dim: int, mlp_hidden: int, length: int, heads: int = 8, drop: float = 0.1) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"MHFormer needs layers >= 1 (SHR x (layers-1) + CHI x 1), got {depth}")
        self.pos_embed_1 = nn.Parameter(torch.zeros(1, length, dim))
        self.pos_embed_2 = nn.Parameter(torch.zeros(1, length, dim))
        self.pos_embed_3 = nn.Parameter(torch.zeros(1, length, dim))
        self.pos_drop = nn.Dropout(drop)
        dpr = drop_path_rates(DROP_PATH_RATE, depth)
        self.SHR_blocks = nn.ModuleList([SHRBlock(dim, heads, mlp_hidden, drop, dpr[i]) for i in range(depth - 1)])
        self.CHI_blocks = nn.ModuleList([CHIBlock(dim, heads, mlp_hidden, drop, dpr[depth - 1])])
        self.norm = nn.LayerNorm(dim * 3, eps=EPS)

    def add_position(self, x_1: Tensor, x_2: Tensor, x_3: Tensor) -> Tensor:
        """Three (B, F, C) embeddings + ``pos_embed_{1,2,3}``, pos dropout -> tokens (B, F, 3, C)."""
        # pos first: each sum is written in pos's (B, F, C) layout even when x_k is a transposed view
        xs = [pos + x for pos, x in zip((self.pos_embed_1, self.pos_embed_2, self.pos_embed_3), (x_1, x_2, x_3))]
        b, f, c = xs[0].shape
        # cat on the last axis + view is the same (B, F, 3, C) as stack(dim=2), in one contiguous pass
        out: Tensor = self.pos_drop(torch.cat(xs, dim=-1).view(b, f, 3, c))
        return out


__all__ = ["Block", "CHIBlock", "HypothesisTransformer", "MHGTransformer", "SHRBlock"]
