"""Closed-form FLOPs (2 per MAC, bias excluded) for the unit tests and the hierarchical schedules.

The layer formulas are exact for what FlopCounterMode counts. The spatio-temporal formula (MixSTE's family) is
papers.md §4: per frame token and per depth (one spatial + one temporal block over 17 joints at
C = 512, MLP 1024), the Linear layers cost 17 x 2 x (3C² + C² + 2·C·H) MACs = 142,606,336 FLOPs.
"""

from __future__ import annotations

from collections.abc import Sequence


def linear_flops(tokens: int, in_features: int, out_features: int) -> int:
    """``nn.Linear`` over ``tokens`` rows (bias not counted)."""
    return 2 * tokens * in_features * out_features


def matmul_flops(batch: int, m: int, k: int, n: int) -> int:
    """``(batch, m, k) @ (batch, k, n)``."""
    return 2 * batch * m * k * n


def attention_core_flops(batch: int, n_q: int, n_k: int, dim: int) -> int:
    """``softmax(q kᵀ) v`` over all heads (head count does not matter): q·kᵀ + attn·v."""
    return matmul_flops(batch, n_q, dim, n_k) + matmul_flops(batch, n_q, n_k, dim)


def attention_flops(batch: int, tokens: int, dim: int, paper: bool = False) -> int:
    """``backbones.layers.Attention``: fused qkv + proj Linears, plus the attention core unless ``paper``."""
    lin = linear_flops(batch * tokens, dim, 3 * dim) + linear_flops(batch * tokens, dim, dim)
    return lin if paper else lin + attention_core_flops(batch, tokens, tokens, dim)


def cross_attention_flops(batch: int, n_q: int, n_k: int, dim: int, paper: bool = False) -> int:
    """``backbones.layers.CrossAttention`` (HoT's TRA): q/proj on n_q rows, k/v on n_k rows."""
    lin = 2 * linear_flops(batch * n_q, dim, dim) + 2 * linear_flops(batch * n_k, dim, dim)
    return lin if paper else lin + attention_core_flops(batch, n_q, n_k, dim)


def mlp_flops(rows: int, dim: int, hidden: int) -> int:
    """``backbones.layers.Mlp``: fc1 + fc2."""
    return linear_flops(rows, dim, hidden) + linear_flops(rows, hidden, dim)


def block_flops(batch: int, tokens: int, dim: int, hidden: int, paper: bool = False) -> int:
    """A pre-norm transformer block (attention + MLP; norms and residuals are not counted)."""
    return attention_flops(batch, tokens, dim, paper) + mlp_flops(batch * tokens, dim, hidden)


def depth_flops_per_frame(joints: int = 17, dim: int = 512, hidden: int = 1024) -> int:
    """papers.md §4: Linear FLOPs per frame token of one spatial + temporal block pair over ``joints``
    (142,606,336 at C = 512, H = 1024)."""
    return joints * 2 * (3 * dim**2 + dim**2 + 2 * dim * hidden) * 2


def spatio_temporal_paper_flops(
    tokens_per_block: Sequence[int],
    frames: int = 243,
    recovered_from: int | None = None,
    joints: int = 17,
    dim: int = 512,
    hidden: int = 1024,
    in_channels: int = 2,
    head_rows: int | None = None,
) -> int:
    """Paper-convention FLOPs of a spatio-temporal (seq2seq, joint-token) model, exact (papers.md §4).

    ``tokens_per_block``: frame tokens entering each depth. ``recovered_from``: n of a TRA
    recovery (q/proj on T, k/v on n), None without. ``head_rows``: frames the head regresses
    (default: T with recovery or no pruning, else the last block's count).
    """
    per_depth = depth_flops_per_frame(joints, dim, hidden)
    total = per_depth * sum(tokens_per_block)
    total += linear_flops(frames * joints, in_channels, dim)  # Spatial_patch_to_embedding
    if recovered_from is not None:
        total += cross_attention_flops(joints, frames, recovered_from, dim, paper=True)
    if head_rows is None:
        head_rows = frames if recovered_from is not None else tokens_per_block[-1]
    total += linear_flops(head_rows * joints, dim, 3)  # head Linear
    return total


__all__ = [
    "attention_core_flops",
    "attention_flops",
    "block_flops",
    "cross_attention_flops",
    "depth_flops_per_frame",
    "linear_flops",
    "matmul_flops",
    "mlp_flops",
    "spatio_temporal_paper_flops",
]
