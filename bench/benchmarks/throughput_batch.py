"""Where a preset's throughput saturates: output frames/s against batch, and the batch the rule picks.

    python -m bench.benchmarks.throughput_batch --preset tiny --threads 1

The rule behind each preset's ``throughput_batch`` (``backbones/_registry.py``): the smallest batch ``b``
whose frames/s is within 10 % of the rate at ``4 b``, for the plain backbone and for its most pruned
one-shot form (cluster keeping T/9 after block 1, the fewest FLOPs a grid cell has), whichever is larger.
Below it a call times per-call dispatch, not compute.
Each batch is timed by :func:`bench.measure.speed.compare_speed` at ``batch = b``, one after the other in one
process: run it on an idle machine. This is a benchmark, run once per preset and machine class; the suite
never chooses a batch at run time.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tabulate import tabulate

from bench.config import ModelConfig, SpeedConfig
from bench.measure.speed import compare_speed

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
WITHIN = 0.10  # the rule's tolerance


def saturation_batch(fps: dict[int, float], within: float = WITHIN) -> int | None:
    """The smallest batch b with fps[b] >= (1 - within) * fps[4 b]; None if no measured pair qualifies."""
    for b in sorted(fps):
        if 4 * b in fps and fps[b] >= (1 - within) * fps[4 * b]:
            return b
    return None


#: the most pruned one-shot form timed beside the plain backbone: cluster, T/9 kept after block 1
PRUNED_TOKENS, PRUNED_DEPTH = 0.11, 1


def frames_per_second(cfg: ModelConfig, batches: Sequence[int], threads: int, iters: int) -> dict[int, float]:
    """Output frames/s of ``cfg`` at each batch (median of ``iters`` calls)."""
    out: dict[int, float] = {}
    for b in batches:  # one compare_speed per batch: the batch is a protocol option, not a config field
        speed = SpeedConfig(batch=b, warmup=2, iters=iters, threads=threads, throughput_batch=b)
        res = compare_speed([cfg], speed)[0]
        out[b] = res.fps
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--backbones", default=None, help="comma-separated (default: every registered one)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    args = ap.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    from backbones import list_backbones

    for bb in args.backbones.split(",") if args.backbones else list_backbones():
        for cfg in (
            ModelConfig.create(bb, args.preset),
            ModelConfig.create(bb, args.preset, "cluster", None, PRUNED_TOKENS, PRUNED_DEPTH),
        ):
            fps = frames_per_second(cfg, batches, args.threads, args.iters)
            rows.append([cfg.label(), *(f"{fps[b]:.0f}" for b in batches), saturation_batch(fps)])
    print(f"output frames/s, fp32, {args.threads} thread(s), median of {args.iters} calls")
    print(tabulate(rows, headers=["model", *map(str, batches), "rule"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
