"""``count_flops``: parameters and FLOPs of one configuration from every counter, reconciled."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bench.measure.flops.convention import FLOPS_PER_MAC, GIGA
from bench.measure.flops.counters import COUNTERS, CounterResult, run_canonical, run_counter
from bench.measure.flops.report import FlopReport, breakdown_rows

if TYPE_CHECKING:
    from bench.config import ModelConfig


def count_flops(
    cfg: ModelConfig,
    *,
    batch: int = 1,
    counters: Sequence[str] = COUNTERS,
    flip: bool = False,
    breakdown: bool = False,
    breakdown_depth: int = 2,
) -> FlopReport:
    """Count ``cfg`` on the meta device with each of ``counters`` ("fcm", "fvcore", "ptflops").

    The canonical ``gflops`` (FlopCounterMode, all matmuls incl. attention), ``gflops_paper``
    (2 x Linear/Conv MACs), ``params``, the output frames and the tokens entering each block come
    from one forward pass on ``meta`` and are always computed; ``counters`` only chooses which
    per-counter entries are listed. A counter that fails on meta is retried on CPU (real
    arithmetic) and says so in its ``note``; one that fails everywhere carries an ``error``.
    All figures are per clip (divided by ``batch``); ``flip`` only sets ``gflops_flip`` = 2 x.
    """
    unknown = [c for c in counters if c not in COUNTERS]
    if unknown:
        raise ValueError(f"unknown FLOP counter(s) {unknown} (known: {', '.join(COUNTERS)})")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    t0 = time.perf_counter()
    cp = run_canonical(cfg, batch)
    entries: list[CounterResult] = []
    for name in counters:
        entries.append(cp.result if name == "fcm" else run_counter(name, cfg, batch))
    rows = None
    if breakdown:
        rows = breakdown_rows(
            cp.by_module, cp.paper_by_module, cp.params_by_module, cp.total_flops, batch, depth=breakdown_depth
        )
    return FlopReport(
        config=cfg.to_dict(),
        label=cfg.label(),
        model_id=cfg.model_id(),
        params=cp.params,
        frames=cp.frames,
        output_frames=cp.output_frames,
        batch=batch,
        gflops=cp.total_flops / batch / GIGA,
        gflops_paper=FLOPS_PER_MAC * cp.paper_macs / batch / GIGA,
        tokens_per_block=cp.tokens_per_block,
        counters=entries,
        flip=flip,
        device=cp.result.device,
        seconds=time.perf_counter() - t0,
        gflops_by_op=cp.result.by_op,
        breakdown=rows,
    )


def count_canonical(cfg: ModelConfig, batch: int = 1) -> tuple[float, float, int]:
    """Fast path for grids and timing: (canonical GFLOPs, paper GFLOPs, params) per clip."""
    cp = run_canonical(cfg, batch)
    return cp.total_flops / batch / GIGA, FLOPS_PER_MAC * cp.paper_macs / batch / GIGA, cp.params


__all__ = ["count_canonical", "count_flops"]
