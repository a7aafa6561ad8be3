"""TPMo: Token Pruning Motion (H2OT), keep the frames with the largest motion.

Motion of the token at position t is ``M_t = || s_t - s_{t-1} ||_2`` with ``M_0 = 0`` (the "Eq. 4"
form reported for TPMo, papers.md §6.4), where s is

- ``source="pose"`` (default): the input 2D pose (x, y of every joint) of the token's original frame;
- ``source="features"``: the per-frame features the cluster pruner uses.

The top n by M are kept, sorted in time.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from strategies._registry import register_pruner
from strategies.base import PruneContext, Pruner, topk_keep

MotionSource = Literal["pose", "features"]


def motion_score(signal: Tensor) -> Tensor:
    """Backward-difference magnitude along time: (B, F, ...) -> (B, F), first frame 0."""
    s = signal.reshape(signal.shape[0], signal.shape[1], -1).float()  # (B, F, D)
    step = (s[:, 1:] - s[:, :-1]).norm(dim=-1)  # (B, F - 1)
    return torch.cat([step.new_zeros(step.shape[0], 1), step], dim=1)


@register_pruner("motion")
class MotionPruner(Pruner):
    """TPMo (H2OT): top-n frames by input-pose (or feature) motion."""

    def __init__(self, source: MotionSource = "pose") -> None:
        super().__init__()
        if source not in ("pose", "features"):
            raise ValueError(f"unknown motion source '{source}' (expected 'pose' or 'features')")
        self.source: MotionSource = source
        self.needs_features = source == "features"
        self.needs_inputs = source == "pose"

    def signal(self, ctx: PruneContext) -> Tensor:
        """(B, F, D) the signal whose motion is measured, one row per incoming token."""
        if self.source == "features":
            return ctx.frame_features()
        if ctx.inputs is None:
            raise ValueError("motion pruner with source='pose' needs the 2D inputs (ctx.inputs)")
        rows = torch.arange(ctx.batch, device=ctx.inputs.device)[:, None]
        xy = ctx.inputs[..., :2]  # (B, T, J, 2): x, y only (MotionBERT's confidence is not motion)
        return xy[rows, ctx.positions()].flatten(2)  # (B, F, J*2)

    def select(self, ctx: PruneContext, n: int) -> Tensor:
        return topk_keep(motion_score(self.signal(ctx)), n, ctx.required)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, source={self.source!r}"
