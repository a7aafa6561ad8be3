"""Reduced precision as deployed: bf16 (or fp16) autocast latency against fp32, and the output change (issue 13).

    python run_bench.py precision --preset paper --threads 1 --warmup 1 --iters 5 [--format json]

For every backbone the same model (same seeded weights) is timed in fp32 and under autocast
round-robin in one process (:func:`bench.measure.speed.time_round_robin` with one precision per
entry), so the ratio is meaningful on a loaded machine. ``ratio`` is the median of per-round
ratios low / fp32 (< 1: reduced precision is faster). ``rel_change`` is ||y_low - y_fp32|| /
||y_fp32|| on one random input, ``max_rel_change`` max |y_low - y_fp32| / max |y_fp32|. Whether
this CPU has native bf16 (AVX512-BF16, AMX) is printed: without it bf16 matmuls are emulated and
slower than fp32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tabulate import tabulate

from bench.config import ModelConfig, SpeedConfig, validate


def output_change(cfg: ModelConfig, precision: str, batch: int = 1, device: str = "cpu") -> tuple[float, float]:
    """(relative L2 change, relative max change) of ``cfg``'s output under ``precision`` vs fp32."""
    from bench.measure.flops.counters import input_shape
    from bench.measure.precision import autocast

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cfg.build(device).eval()
        x = torch.randn(input_shape(model, batch), device=device)
    with torch.inference_mode():
        ref = model(x).float()
        with autocast(precision, device):
            low = model(x).float()
    diff = low - ref
    return float(diff.norm() / ref.norm()), float(diff.abs().max() / ref.abs().max())


def run_precision(
    backbones: Sequence[str] | None = None,
    *,
    preset: str = "paper",
    precision: str = "bf16",
    warmup: int | None = None,
    iters: int | None = None,
    threads: int | None = None,
    batch: int = 1,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """One row per backbone: fp32 and ``precision`` latency from the same rounds, ratio, output change.

    ``warmup`` / ``iters`` left ``None`` take the one speed protocol's defaults (:class:`SpeedConfig`).
    An impossible request (fp16 on the CPU, a CUDA device this machine lacks) is a one-line
    :class:`~bench.config.ConfigError` before any model is built."""
    from bench.measure.speed import check_device, paired_speedup, protocol_defaults, time_round_robin

    warmup, iters = protocol_defaults(warmup, iters)

    speed = validate(
        SpeedConfig,
        {
            "batch": batch,
            "warmup": warmup,
            "iters": iters,
            "threads": threads,
            "device": device,
            "precision": precision,
        },
        "speed",
    )
    check_device(speed)
    rows: list[dict[str, Any]] = []
    from backbones import list_backbones

    for name in backbones if backbones is not None else list_backbones():
        cfg = ModelConfig.create(name, preset)
        ref, low = time_round_robin([cfg, cfg], speed, precisions=["fp32", precision])
        ratio = paired_speedup(low.latency_ms, ref.latency_ms)  # per-round low / fp32
        rel, rel_max = output_change(cfg, precision, batch=speed.batch, device=speed.device)
        rows.append(
            {
                "backbone": name,
                "preset": preset,
                "precision": precision,
                "fp32_ms": ref.latency_ms_median,
                "low_ms": low.latency_ms_median,
                "ratio": ratio["speedup"],
                "ratio_iqr": ratio["speedup_iqr"],
                "ratio_of_medians": low.latency_ms_median / ref.latency_ms_median,
                "rel_change": rel,
                "max_rel_change": rel_max,
                "gflops_per_call": ref.gflops_per_call,
                "threads": ref.threads,
                "batch": ref.batch,
                "warmup": warmup,
                "iters": iters,
                "device": ref.device,
                "device_name": ref.device_name,
                "env": ref.env,
                "error": ref.error or low.error,
            }
        )
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The precision table as text, with the protocol and the CPU's bf16 support underneath."""
    table = [
        [
            f"{r['backbone']}/{r['preset']}",
            r["precision"],
            f"{r['fp32_ms']:.1f}",
            f"{r['low_ms']:.1f}",
            f"{r['ratio']:.3f} (IQR {r['ratio_iqr']:.3f})",
            f"{100 * r['rel_change']:.2f}% / {100 * r['max_rel_change']:.2f}%",
            r["error"] or "",
        ]
        for r in rows
    ]
    text = tabulate(
        table,
        headers=["model", "precision", "fp32 ms", "low ms", "low / fp32 (paired)", "output change L2 / max", "error"],
        disable_numparse=True,
    )
    if rows:
        r0, e = rows[0], rows[0]["env"]
        text += (
            f"\nprotocol: median of per-round ratios over {r0['iters']} interleaved rounds after {r0['warmup']} "
            f"warm-ups, batch {r0['batch']}, {r0['threads']} thread(s), {r0['device']} ({r0['device_name']}); "
            f"CPU kernels {e.get('cpu_capability')}, avx512_bf16={e.get('avx512_bf16')}, "
            f"amx_tile={e.get('amx_tile')}; torch {e.get('torch')}, load average {e.get('load_average')}."
        )
    return text
