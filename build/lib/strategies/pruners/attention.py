"""TPA: Token Pruning Attention (H2OT), keep the frames that receive the most attention.

The score of frame j is the attention it *receives* in the temporal self-attention of the block
just before the pruning depth: the head-mean attention map (B, N', F, F) (N' = joint or hypothesis
rows) averaged over N' and over the F queries, a per-frame (B, F) score; the top n are kept, sorted.
H2OT's exact definition is unconfirmed (papers.md §6.4); this is the "mean attention received"
reading. The hourglass turns on ``record_attention`` on that block's attention module, which then
computes the softmax explicitly instead of the fused kernel.
"""

from __future__ import annotations

from torch import Tensor

from strategies._registry import register_pruner
from strategies.base import PruneContext, Pruner, topk_keep


def attention_received(attention: Tensor) -> Tensor:
    """Mean attention received per key frame: (B, N', F, F) [query, key] -> (B, F)."""
    return attention.float().mean(dim=(1, 2))


@register_pruner("attention")
class AttentionPruner(Pruner):
    """TPA (H2OT): top-n frames by attention received in the preceding temporal attention."""

    needs_attention = True

    def select(self, ctx: PruneContext, n: int) -> Tensor:
        if ctx.attention is None:
            raise ValueError("attention pruner needs the preceding block's temporal attention (ctx.attention)")
        if ctx.attention.shape[-1] != ctx.length:
            raise ValueError(f"attention map covers {ctx.attention.shape[-1]} frames, tokens have {ctx.length}")
        return topk_keep(attention_received(ctx.attention), n, ctx.required)
