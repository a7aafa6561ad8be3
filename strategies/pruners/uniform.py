"""TPS: Token Pruning Sampler (H2OT), evenly spaced frames; parameter-free, the cheapest pruner.

Closed form for keeping n of F positions (integer arithmetic, exact):

- ``align="ends"`` (default): round-half-up of ``linspace(0, F - 1, n)``, i.e.
  ``p_i = floor(i * (F - 1) / (n - 1) + 1/2)``; both ends are kept (TRI then never extrapolates);
  n = 1 keeps (F - 1) // 2.
- ``align="centre"``: the centre of each of n equal bins, ``p_i = floor((i + 1/2) * F / n)``
  (F = 243, n = 81: 1, 4, ..., 241, stride 3).

With odd n and odd F both contain the centre frame (F - 1) / 2. Where a required (centre)
position is missing, the nearest grid position is moved onto it (seq2frame / TPC form).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from strategies._registry import register_pruner
from strategies.base import PruneContext, Pruner, force_required

Align = Literal["ends", "centre"]


def uniform_index(length: int, n: int, align: Align, device: torch.device) -> Tensor:
    """The n evenly spaced positions among ``length`` (see the module docstring), ascending and unique, as an
    int64 tensor (n,) on ``device``; exact integer arithmetic (tested against a closed form in fractions)."""
    if not 1 <= n <= length:
        raise ValueError(f"cannot keep {n} of {length} positions")
    i = torch.arange(n, device=device, dtype=torch.int64)
    if align == "centre":
        return ((2 * i + 1) * length) // (2 * n)
    if n == 1:
        return torch.full((1,), (length - 1) // 2, device=device, dtype=torch.int64)
    return (2 * i * (length - 1) + (n - 1)) // (2 * (n - 1))


@register_pruner("uniform")
class UniformPruner(Pruner):
    """TPS (H2OT): evenly spaced frame tokens, the same for every sample."""

    def __init__(self, align: Align = "ends") -> None:
        super().__init__()
        if align not in ("ends", "centre"):
            raise ValueError(f"unknown align '{align}' (expected 'ends' or 'centre')")
        self.align: Align = align

    def select(self, ctx: PruneContext, n: int) -> Tensor:
        pos = uniform_index(ctx.length, n, self.align, ctx.tokens.device)  # computed on the device: no copy
        return force_required(pos.expand(ctx.batch, n), ctx.required)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, align={self.align!r}"
