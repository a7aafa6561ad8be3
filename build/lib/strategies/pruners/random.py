"""Random control pruner: n frames drawn uniformly without replacement, per sample.

Deterministic for a seed and independent of the global RNG: call c draws from a private CPU
``torch.Generator`` seeded with ``(seed, c)``, so two pruners with the same seed produce the same
sequence of selections (training still sees a fresh subset at every step); :meth:`reset` restarts
the sequence.
"""

from __future__ import annotations

import torch
from torch import Tensor

from strategies._registry import register_pruner
from strategies.base import PruneContext, Pruner, topk_keep


@register_pruner("random")
class RandomPruner(Pruner):
    """Keep n random frame tokens per sample (a control for the informed pruners)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = int(seed)
        self.calls = 0

    def reset(self) -> None:
        """Restart the sequence of selections."""
        self.calls = 0

    def select(self, ctx: PruneContext, n: int) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.calls)
        self.calls += 1
        score = torch.rand(ctx.batch, ctx.length, generator=gen).to(ctx.tokens.device)  # (B, F)
        req = None if ctx.required is None else ctx.required.to(score.device)
        return topk_keep(score, n, req)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, seed={self.seed}"
