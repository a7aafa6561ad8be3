"""Measured speedup of each backbone's HoT/TPC configuration next to its FLOPs ratio (issue 4, item 6).

    python run_bench.py speedup --preset paper --backbone mixste --warmup 2 --iters 5 --threads 2

For every backbone the baseline and its published hourglass configuration(s) are timed
round-robin in **one** process (:func:`bench.measure.speed.compare_speed`), so the ratio is meaningful even
on a loaded machine; absolute times are not. The table shows the measured speedup (median and
min latency ratio, per clip) beside the FLOPs ratio base / variant in the paper convention and the
all-matmul convention, and their quotient: > 1 means pruning buys more speed than its FLOPs
promise (smaller GEMMs and attention maps), < 1 that the selection overhead eats into it. The
"paired" speedup is the median of per-round ratios (base and variant timed back to back), the
figure least affected by load that drifts during the run.

At non-paper presets the token count is scaled to T/3 and the pruning depth clamped to a valid one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from backbones import HourglassVariant
from bench.config import ModelConfig, SpeedConfig


def base_preset(backbone: str, preset: str) -> str:
    """The preset a backbone's baseline runs at: its registry entry's ``hot_preset`` for ``paper``."""
    from backbones import get_backbone_spec

    return get_backbone_spec(backbone).hot_preset if preset == "paper" else preset


def configs_for(backbone: str, preset: str) -> tuple[ModelConfig, list[tuple[str, ModelConfig]]]:
    """(baseline, [(variant name, config)]) for ``backbone`` at ``preset``."""
    from backbones import get_backbone_spec

    bp = base_preset(backbone, preset)
    base = ModelConfig.create(backbone, bp)
    published = get_backbone_spec(backbone).variants
    variants = published or (HourglassVariant("HoT", bp, "cluster", "attention", 0, 1),)
    spec = get_backbone_spec(backbone).preset(bp)
    out = []
    valid_depths: range | None = None
    for v in variants:
        tokens, depth = _single(v.tokens), _single(v.depths)
        if preset != "paper" or tokens <= 0:
            if valid_depths is None:
                valid_depths = base.build("meta").prune_depths
            tokens = max(2, round(spec.frames / 3))
            depth = min(max(depth, valid_depths.start), valid_depths.stop - 1)
        cfg = ModelConfig.create(backbone, bp, pruner=v.pruner, recoverer=v.recoverer, tokens=tokens, depths=depth)
        out.append((f"{v.name.split('-')[0].split('(')[0]}({tokens},{depth})", cfg))
    return base, out


def _single(v: int | tuple[int, ...]) -> int:
    return v if isinstance(v, int) else v[0]


def run_speedup(
    backbones: Sequence[str] | None = None, *, preset: str = "paper", speed: SpeedConfig | None = None
) -> list[dict[str, Any]]:
    """One row per (backbone, variant): measured speedup (the paired per-round median, as everywhere in the
    suite), FLOPs ratios and their quotients, under ``speed`` (default: :class:`SpeedConfig`'s protocol)."""
    from backbones import list_backbones
    from bench.measure.flops.core import count_canonical
    from bench.measure.speed import check_device, compare_speed, paired_speedup

    speed = speed or SpeedConfig()
    check_device(speed)  # a user mistake stops here
    names = list(backbones) if backbones else list_backbones()
    rows: list[dict[str, Any]] = []
    for backbone in names:
        try:
            base, variants = configs_for(backbone, preset)
            cfgs = [base] + [c for _, c in variants]
            flops = [count_canonical(c) for c in cfgs]
            results = compare_speed(cfgs, speed)
        except Exception as exc:  # one family failing does not stop the others
            rows.append({"backbone": backbone, "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
            continue
        b_res, b_fl = results[0], flops[0]
        for (vname, _), v_res, v_fl in zip(variants, results[1:], flops[1:]):
            row: dict[str, Any] = {
                "backbone": backbone,
                "preset": base.preset,
                "variant": vname,
                "label": v_res.label,
                "base_ms": b_res.latency_ms_median,
                "variant_ms": v_res.latency_ms_median,
                "base_latency_ms": b_res.latency_ms,
                "variant_latency_ms": v_res.latency_ms,
                "base_iqr_over_median": b_res.iqr_over_median,
                "variant_iqr_over_median": v_res.iqr_over_median,
                "speedup_of_medians": b_res.latency_ms_median / v_res.latency_ms_median,
                "speedup_of_minima": b_res.latency_ms_min / v_res.latency_ms_min,
                "base_gflops_paper": b_fl[1],
                "variant_gflops_paper": v_fl[1],
                "base_gflops": b_fl[0],
                "variant_gflops": v_fl[0],
                "flops_ratio_paper": b_fl[1] / v_fl[1],
                "flops_ratio_all_matmul": b_fl[0] / v_fl[0],
                "threads": v_res.threads,
                "batch": v_res.batch,
                "warmup": speed.warmup,
                "iters": speed.iters,
                "device": v_res.device,
                "precision": v_res.precision,
                "env": v_res.env,
                "error": b_res.error or v_res.error,
            }
            # per-round ratio: both calls of a round ran back to back, so load drift cancels
            paired = paired_speedup(b_res.latency_ms, v_res.latency_ms)
            row["speedup"] = paired["speedup"]
            row["speedup_iqr"] = paired["speedup_iqr"]
            row["speedup_over_flops_paper"] = row["speedup"] / row["flops_ratio_paper"]
            row["speedup_over_flops_all_matmul"] = row["speedup"] / row["flops_ratio_all_matmul"]
            rows.append(row)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The speedup table as text, with the protocol and environment underneath."""
    table = []
    for r in rows:
        if "speedup" not in r:
            table.append([r["backbone"], "-", "", "", "", "", "", "", "", r.get("error", "")])
            continue
        table.append(
            [
                f"{r['backbone']}/{r['preset']}",
                r["variant"],
                f"{r['base_ms']:.1f}",
                f"{r['variant_ms']:.1f}",
                f"{r['speedup']:.2f}x / {r['speedup_of_medians']:.2f}x / {r['speedup_of_minima']:.2f}x",
                f"{r['flops_ratio_paper']:.3f} / {r['flops_ratio_all_matmul']:.3f}",
                f"{r['speedup_over_flops_paper']:.2f} / {r['speedup_over_flops_all_matmul']:.2f}",
                f"{100 * r['base_iqr_over_median']:.1f}% / {100 * r['variant_iqr_over_median']:.1f}%",
                r["batch"],
                r["error"] or "",
            ]
        )
    text = tabulate(
        table,
        headers=[
            "baseline",
            "variant (n,k)",
            "base ms",
            "variant ms",
            "speedup paired / of medians / of minima",
            "FLOPs ratio paper / all",
            "speedup / FLOPs ratio",
            "IQR/median",
            "batch",
            "error",
        ],
        disable_numparse=True,
    )
    ok = [r for r in rows if "env" in r]
    if ok:
        e, r0 = ok[0]["env"], ok[0]
        text += (
            f"\nprotocol: per-clip latency, median over {r0['iters']} interleaved rounds "
            f"after {r0['warmup']} warm-ups, "
            f"torch.inference_mode, {r0.get('precision', 'fp32')}, {r0['threads']} thread(s), batch {r0['batch']}, "
            f"device {r0['device']} "
            f"({e.get('device_name')}), torch {e.get('torch')}, load average {e.get('load_average')}. "
            "Ratios are comparable within this run only."
        )
    return text
