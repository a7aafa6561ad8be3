"""Cost of a planned grid per measure, without running it: FLOPs from the meta count, time from a calibration.

Assumptions (printed with every estimate):

- a cell's GFLOPs = its backbone configuration's canonical count on ``meta`` x the fraction of
  frame tokens its schedule keeps across the blocks (block cost taken as linear in tokens);
- a CPU runs a model at the GFLOP/s of a 512 x 512 fp32 matmul timed here (the calibration), except a
  small model (at most ``STEP_CALIBRATION_GFLOP`` per training step), which runs at the GFLOP/s of a few
  of its own training steps timed here: tiny nets are bound by per-call overhead, not by arithmetic,
  and run several times below the matmul rate;
  a GPU at ``GPU_GFLOPS`` effective, with at least ``GPU_CALL_MS`` per call (launch overhead),
  a call being one batch (a training step, a timed iteration, 256 test clips);
- FLOPs: one meta count per model (seeds share it), as long as the calibration count of its backbone took;
- speed: (warm-up + iterations) calls of the speed batch, once per model (seeds share it);
- accuracy: training = steps x batch x 3 forward-equivalents (forward + backward), with each cell's
  own ``train`` (``by_backbone`` budgets), evaluation = the
  test set once with flip (Human3.6M: 543,344 test frames; synthetic: 10% of the training cost);
  a ``minutes`` budget without steps counts as that many minutes; baselines a fine-tune needs
  count as one training of the same budget per (backbone, preset, seed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.config import ModelConfig
from bench.grid.runner import Plan

GPU_GFLOPS = 20_000.0
GPU_CALL_MS = 2.0
H36M_TEST_FRAMES = 543_344


#: a backbone whose training step costs at most this many GFLOP is timed for its own CPU rate (``calibrate_step``)
STEP_CALIBRATION_GFLOP = 8.0


def calibrate_step(cfg: ModelConfig, batch: int, threads: int | None, steps: int = 3) -> float:
    """GFLOP/s of ``cfg``'s own training steps on this CPU (forward + backward + AdamW at ``batch``), from the
    median of ``steps`` steps after one untimed step; the FLOPs are the canonical count x 3."""
    import statistics

    import torch

    from bench.measure.flops.core import count_canonical
    from bench.measure.flops.counters import input_shape
    from bench.measure.speed import num_threads

    gf, _, _ = count_canonical(cfg)
    with num_threads(threads or None):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = cfg.build().train()
            x = torch.randn(input_shape(model, batch))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
        times = []
        for i in range(steps + 1):
            t0 = time.perf_counter()
            loss = model.forward_all(x).pose.square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i:
                times.append(time.perf_counter() - t0)
        return 3 * gf * batch / statistics.median(times)


def calibrate_cpu(seconds: float = 0.3, threads: int | None = None) -> float:
    """GFLOP/s of a 512 x 512 fp32 matmul on this CPU (a short calibration)."""
    import torch

    from bench.measure.speed import num_threads

    with num_threads(threads or None):
        a = torch.randn(512, 512)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ a
            n += 1
        return 2 * 512**3 * n / (time.perf_counter() - t0) / 1e9


@dataclass
class Estimate:
    cells: int
    gflops: dict[str, float]  # cell_id -> estimated GFLOPs per clip
    hours: dict[str, dict[str, float]] = field(default_factory=dict)  # measure -> {"cpu": h, "gpu": h}
    cpu_gflops_per_s: float = 0.0
    count_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def estimate(plan: Plan, measures: list[str] | None = None) -> Estimate:
    """Per-measure CPU-hours and GPU-hours of ``plan`` (see the module docstring for the assumptions)."""
    from bench.measure.flops.core import count_canonical

    g = plan.grid
    measures = measures or list(g.measure)
    rate = calibrate_cpu(threads=g.train.threads)
    base: dict[str, tuple[float, float, int, int]] = {}  # backbone config -> (gflops, count seconds, T, out frames)
    rates: dict[str, float] = {}  # backbone config -> its own CPU GFLOP/s (small models), else the matmul rate
    gflops: dict[str, float] = {}
    bkey_of = {c.id: c.model.baseline().model_id() for c in plan.cells}
    for c in plan.cells:
        m = c.model
        bkey = bkey_of[c.id]
        if bkey not in base:
            cfg = m.baseline()
            t0 = time.perf_counter()
            gf, _, _ = count_canonical(cfg)
            model = cfg.build("meta")
            out_frames = model.frames if model.pipeline == "seq2seq" else 1
            base[bkey] = (gf, time.perf_counter() - t0, model.frames, out_frames)
            trains = c.baseline.train if c.baseline is not None else c.train  # most steps are the baseline's
            batch = trains.batch_size or _recipe_batch(m.backbone, m.preset)
            small = 3 * gf * batch <= STEP_CALIBRATION_GFLOP and "accuracy" in measures
            rates[bkey] = calibrate_step(cfg, batch, g.train.threads) if small else rate
        gflops[c.id] = base[bkey][0] * plan.tokens_fraction.get(c.id, 1.0)
    est = Estimate(len(plan.cells), gflops, cpu_gflops_per_s=rate)
    est.count_seconds = {k: v[1] for k, v in base.items()}
    current = {"rate": rate}

    def call_s(gf: float, dev: str) -> float:
        return gf / current["rate"] if dev == "cpu" else max(gf / GPU_GFLOPS, GPU_CALL_MS / 1000)

    hours: dict[str, dict[str, float]] = {m: {"cpu": 0.0, "gpu": 0.0} for m in measures}
    baselines: set[str] = set()
    counted: dict[str, set[str]] = {"cpu": set(), "gpu": set()}
    for c in plan.cells:
        m = c.model
        bkey = bkey_of[c.id]
        current["rate"] = rates[bkey]
        gf = gflops[c.id]
        frames, out_frames = base[bkey][2], base[bkey][3]
        tr = c.train  # per cell: by_backbone gives each backbone its paper's budget
        for dev in ("cpu", "gpu"):
            if "flops" in hours and (once := c.measure_key("flops")) not in counted[dev]:
                counted[dev].add(once)  # the seeds of a model share one count (one task per measure key)
                hours["flops"][dev] += base[bkey][1] / 3600  # a meta count: CPU work either way
            if "speed" in hours and (once := c.measure_key("speed")) not in counted[dev]:
                counted[dev].add(once)
                calls = g.speed.warmup + g.speed.iters
                tput = g.speed.throughput_batch or _preset(m.backbone, m.preset).throughput_batch
                batches = g.speed.batch + (tput if tput != g.speed.batch else 0)  # both batches in every round
                hours["speed"][dev] += calls * call_s(gf * batches, dev) / 3600
            if "accuracy" in hours:
                batch = tr.batch_size or _recipe_batch(m.backbone, m.preset)
                if tr.steps:
                    train_s = tr.steps * call_s(3 * gf * batch, dev)  # one step: a batch, fwd + bwd
                elif tr.minutes:
                    train_s = tr.minutes * 60
                else:
                    train_s = float("nan")
                if g.data.source == "h36m":
                    clips = 2 * H36M_TEST_FRAMES / (out_frames if out_frames > 1 else tr.eval_stride)
                    eval_s = clips * call_s(gf, dev) if dev == "cpu" else clips / 256 * call_s(gf * 256, dev)
                else:
                    eval_s = 0.1 * train_s
                extra = 0.0
                if c.baseline is not None and (bl := f"baseline {c.baseline.key}") not in counted[dev]:
                    counted[dev].add(bl)  # each shared baseline once per device, at its own budget (by_backbone)
                    baselines.add(bl)
                    btr = c.baseline.train
                    b_batch = btr.batch_size or _recipe_batch(m.backbone, m.preset)
                    extra = (btr.steps or 0) * call_s(3 * base[bkey][0] * b_batch, dev)
                hours["accuracy"][dev] += (train_s + eval_s + extra) / 3600
        del frames
    est.hours = hours
    budgets = {
        f"{c.model.backbone} {c.train.budget_text()} x batch "
        f"{c.train.batch_size or _recipe_batch(c.model.backbone, c.model.preset)}"
        + (f" (baseline {c.baseline.train.steps} steps)" if c.baseline is not None else "")
        for c in plan.cells
    }
    own = sorted(
        {
            f"{c.model.backbone}/{c.model.preset} {rates[bkey_of[c.id]]:.1f}"
            for c in plan.cells
            if rates[bkey_of[c.id]] != rate
        }
    )
    threads = f"{g.train.threads} thread(s)" if g.train.threads else "all threads"
    speed_note = (
        f"speed: ({g.speed.warmup} warm-up + {g.speed.iters} timed) rounds of one call at batch {g.speed.batch} and "
        f"one at the throughput batch ({g.speed.throughput_batch or 'the preset default'}) per model (seeds share it)"
    )
    accuracy_note = (
        "accuracy: train "
        + "; ".join(sorted(budgets))
        + " x batch (the cell's, else its preset recipe's) x 3 (fwd+bwd) at the cell's GFLOPs; eval "
        + ("543,344 H36M test frames with flip" if g.data.source == "h36m" else "10% of training (synthetic)")
        + f"; {len(baselines)} shared baseline trainings counted"
    )
    est.notes = [
        f"CPU rate {rate:.1f} GFLOP/s (512x512 fp32 matmul, calibrated here, {threads}); GPU "
        f"{GPU_GFLOPS / 1000:.0f} TFLOP/s effective, >= {GPU_CALL_MS:g} ms per call",
        *([f"small models at their own training-step rate (GFLOP/s, timed here): {', '.join(own)}"] if own else []),
        "wall time with --workers N on N free cores: about the CPU-hours / N",
        "cell GFLOPs = meta count of its backbone configuration x kept-token fraction over the blocks",
        *([speed_note] if "speed" in g.measure else []),
        *([accuracy_note] if "accuracy" in g.measure else []),
        "flops: one meta count per model, shared by its seeds (CPU work; the same on a GPU node)",
    ]
    return est


def format_estimate(est: Estimate) -> str:
    lines = [f"estimated cost of {est.cells} cells:"]
    for m, h in est.hours.items():
        lines.append(f"  {m:<9} {h['cpu']:12.2f} CPU-hours   {h['gpu']:10.2f} GPU-hours")
    lines.append("assumptions:")
    lines += [f"  - {n}" for n in est.notes]
    return "\n".join(lines)


def summary(est: Estimate) -> dict[str, Any]:
    return {"cells": est.cells, "hours": est.hours, "assumptions": est.notes}


def _preset(backbone: str, preset: str) -> Any:
    from backbones import get_backbone_spec

    return get_backbone_spec(backbone).preset(preset)


def _recipe_batch(backbone: str, preset: str) -> int:
    """Clips per step a preset's recipe trains with (the suite's default where it names none)."""
    from bench.training.loop import DEFAULT_BATCH

    r = _preset(backbone, preset).recipe
    return r.batch_size if r is not None and r.batch_size else DEFAULT_BATCH
