"""TRA: Token Recovering Attention (HoT, papers.md §6.3).

T learnable query tokens ``x_token`` (1, T, C), zero-initialised, attend over the n kept tokens of
the last block (after its norm, before the regression head), per token row (joint / hypothesis):

    x = x_token + CrossAttention(q = x_token, k = x_kept, v = x_kept)        # (B*N, T, C)

One cross-attention (separate ``linear_q``/``linear_k``/``linear_v`` and ``proj``, 8 heads, qkv bias),
no norm, no MLP. Parameters: T*C + 4*(C^2 + C). Their names inside a model's state dict are HoT's
flat ``x_token`` and ``cross_attention.*`` (the hourglass renames them).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from backbones.layers import CrossAttention
from strategies._registry import register_recoverer
from strategies.base import Recoverer


@register_recoverer("attention")
class TokenRecoveringAttention(Recoverer):
    """TRA (HoT): recover T frame tokens from the n kept ones with learnable queries.

    ``init_std=None`` keeps PyTorch's default Linear init (HoT w. MixSTE); ``0.02`` gives the
    truncated-normal init HoT w. MotionBERT applies to its cross-attention (bias 0).
    """

    stage = "features"
    parameter_free = False

    def __init__(
        self, frames: int, dim: int, heads: int = 8, qkv_bias: bool = True, init_std: float | None = None
    ) -> None:
        super().__init__(frames, dim)
        if dim % heads:
            raise ValueError(f"recoverer 'attention' needs dim {dim} divisible by heads {heads}")
        self.heads = heads
        self.x_token = nn.Parameter(torch.zeros(1, frames, dim))  # (1, T, C)
        self.cross_attention = CrossAttention(dim, heads, qkv_bias=qkv_bias)
        if init_std is not None:
            for lin in self.cross_attention.modules():
                if isinstance(lin, nn.Linear):
                    nn.init.trunc_normal_(lin.weight, std=init_std)
                    if lin.bias is not None:
                        nn.init.zeros_(lin.bias)

    def recover_features(self, tokens: Tensor, frame_index: Tensor) -> Tensor:
        b, n, rows, c = tokens.shape  # (B, n, N, C)
        kv = tokens.transpose(1, 2).reshape(b * rows, n, c)  # (B*N, n, C)
        q = self.x_token.repeat(b * rows, 1, 1)  # (B*N, T, C); a copy, not a view of the Parameter (FLOP counters)
        out: Tensor = q + self.cross_attention(q, kv, kv)  # (B*N, T, C)
        return out.reshape(b, rows, self.frames, c).transpose(1, 2)  # (B, T, N, C)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, heads={self.heads}"
