"""The ``none`` pruner: keep every frame token (the unpruned baseline).

``apply_hourglass(model, pruner="none")`` places no pruning stage at all (tokens / depths are
ignored), so the model computes exactly what the backbone alone computes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from strategies._registry import register_pruner
from strategies.base import PruneContext, Pruner


@register_pruner("none")
class KeepAllPruner(Pruner):
    """Keep all F tokens (n must equal F)."""

    def select(self, ctx: PruneContext, n: int) -> Tensor:
        if n != ctx.length:
            raise ValueError(f"pruner 'none' keeps every token: asked for {n} of {ctx.length}")
        return torch.arange(n, device=ctx.tokens.device).expand(ctx.batch, n)
