"""Measured speedup of each backbone's HoT/TPC configuration next to its FLOPs ratio (issue 4, item 6).

    python run_bench.py speedup --preset paper --backbone mixste --warmup 2 --iters 5 --threads 2

For every backbone the baseline and its published hourglass configuration(s) are timed
round-robin in **one** process (:func:`bench.measure.speed.measure_speed_group`), so the ratio is meaningful even
on a loaded machine; absolute times are not. The table shows the measured speedup (median and
min latency ratio, per clip) beside the FLOPs ratio base / variant in the paper convention and the
all-matmul convention, and their quotient: > 1 means pruning buys more speed than its FLOPs
promise (smaller GEMMs and attention maps), < 1 that the selection overhead eats into it. The
"paired" speedup is the median of per-round ratios (base and variant timed back to back), the
figure least affected by load that drifts during the run. With ``--throughput-batch`` above the latency
batch, each row also has the throughput speedup of the same rounds and the marginal speedup (:func:`marginal_ms`):
at batch 1 part of every call (weights read once per call, op dispatch) does not shrink with the tokens, and
the two figures say how much of a batch-1 shortfall against the FLOPs ratio that part explains.

At non-paper presets the token count is scaled to T/3 and the pruning depth clamped to a valid one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from backbones import HourglassVariant
from bench.config import ModelConfig, SpeedConfig

if TYPE_CHECKING:
    from bench.measure.speed import Clock


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


def marginal_ms(batch: int, ms: float, big_batch: int, big_ms: float) -> float:
    """What each clip beyond ``batch`` adds to a call, (big_ms - ms) / (big_batch - batch), from the two batches
    timed in the same rounds; NaN without two distinct batches. It leaves out what every call pays once
    (the weights read per call, op dispatch), which pruning tokens cannot shrink."""
    return (big_ms - ms) / (big_batch - batch) if big_batch > batch else float("nan")


def _batch_columns(b: dict[str, Any], v: dict[str, Any], flops_ratio: float) -> dict[str, Any]:
    """Throughput speedup and the marginal speedup (:func:`marginal_ms`, base over variant), when the pair was
    timed at a throughput batch above the latency batch; {} otherwise. Whether the pair's throughput figures
    compare (both timed, at one batch) is the group's rule: its ``throughput_speedup`` is NaN when they do not."""
    batch, big = int(v["batch"]), int(v.get("throughput_batch") or 0)
    if big <= batch or math.isnan(v["throughput_speedup"]):
        return {}
    marginal = marginal_ms(batch, b["latency_ms_median"], big, b["throughput_ms_median"]) / marginal_ms(
        batch, v["latency_ms_median"], big, v["throughput_ms_median"]
    )
    return {
        "throughput_batch": big,
        "base_throughput_ms": b["throughput_ms_median"],
        "variant_throughput_ms": v["throughput_ms_median"],
        "throughput_speedup": v["throughput_speedup"],
        "throughput_speedup_over_flops_all_matmul": v["throughput_speedup"] / flops_ratio,
        "marginal_speedup": marginal,
        "marginal_speedup_over_flops_all_matmul": marginal / flops_ratio,
    }


def run_speedup(
    backbones: Sequence[str] | None = None,
    *,
    preset: str = "paper",
    speed: SpeedConfig | None = None,
    clock: Clock | None = None,
) -> list[dict[str, Any]]:
    """One row per (backbone, variant): measured speedup (the paired per-round median, as everywhere in the
    suite), FLOPs ratios and their quotients, under ``speed`` (default: :class:`SpeedConfig`'s protocol).
    With a throughput batch above the latency batch, each row also has the throughput and marginal speedups
    (:func:`_batch_columns`). ``clock``: the protocol's clock (tests inject one)."""
    from backbones import list_backbones
    from bench.measure.flops.core import count_canonical
    from bench.measure.speed import check_device, measure_speed_group

    speed = speed or SpeedConfig()
    check_device(speed)  # a user mistake stops here
    names = list(backbones) if backbones else list_backbones()
    rows: list[dict[str, Any]] = []
    for backbone in names:
        try:
            base, variants = configs_for(backbone, preset)
            flops = [count_canonical(c) for c in [base] + [c for _, c in variants]]
            timed = measure_speed_group(base, [c for _, c in variants], speed, clock=clock)
        except Exception as exc:  # one family failing does not stop the others
            rows.append({"backbone": backbone, "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
            continue
        b, b_fl = timed[base.model_id()], flops[0]
        for (vname, vcfg), v_fl in zip(variants, flops[1:]):
            v = timed[vcfg.model_id()]
            row: dict[str, Any] = {
                "backbone": backbone,
                "preset": base.preset,
                "variant": vname,
                "label": v["label"],
                "base_ms": b["latency_ms_median"],
                "variant_ms": v["latency_ms_median"],
                "base_iqr_over_median": b["iqr_over_median"],
                "variant_iqr_over_median": v["iqr_over_median"],
                # per-round ratio: both calls of a round ran back to back, so load drift cancels
                "speedup": v["speedup"],
                "speedup_iqr": v["speedup_iqr"],
                "speedup_of_medians": v["speedup_of_medians"],
                "speedup_of_minima": b["latency_ms_min"] / v["latency_ms_min"],
                "base_gflops_paper": b_fl[1],
                "variant_gflops_paper": v_fl[1],
                "base_gflops": b_fl[0],
                "variant_gflops": v_fl[0],
                "flops_ratio_paper": b_fl[1] / v_fl[1],
                "flops_ratio_all_matmul": b_fl[0] / v_fl[0],
                "threads": v["threads"],
                "batch": v["batch"],
                "warmup": speed.warmup,
                "iters": speed.iters,
                "device": v["device"],
                "precision": v["precision"],
                "env": v["env"],
                "error": b["error"] or v["error"],
            }
            row["speedup_over_flops_paper"] = row["speedup"] / row["flops_ratio_paper"]
            row["speedup_over_flops_all_matmul"] = row["speedup"] / row["flops_ratio_all_matmul"]
            row.update(_batch_columns(b, v, row["flops_ratio_all_matmul"]))
            if "compile" in v:
                row.update(_compiled(b, v, row["flops_ratio_all_matmul"]))
            rows.append(row)
    return rows


def _compiled(b: dict[str, Any], v: dict[str, Any], flops_ratio: float) -> dict[str, Any]:
    """The pair timed compiled in the same rounds: latencies, the speedup under compile, compiled / eager."""
    return {
        "compile": v["compile"],
        "base_compiled_ms": b["compiled_latency_ms"],
        "variant_compiled_ms": v["compiled_latency_ms"],
        "compiled_speedup": v["compiled_speedup"],
        "compiled_speedup_iqr": v["compiled_speedup_iqr"],
        "compiled_speedup_over_flops_all_matmul": v["compiled_speedup"] / flops_ratio,
        "base_compiled_over_eager": b["compiled_over_eager"],
        "variant_compiled_over_eager": v["compiled_over_eager"],
        "base_compile_s": b["compile_s"],
        "variant_compile_s": v["compile_s"],
        "compile_error": b["compile_error"] or v["compile_error"],
    }


COMPILED_HEADERS = ("compiled ms base / variant", "speedup compiled (/ FLOPs)", "compiled/eager base / variant")


def _compiled_cells(r: dict[str, Any]) -> list[str]:
    if r.get("compile_error"):
        return ["-", "-", "-"]
    return [
        f"{r['base_compiled_ms']:.1f} / {r['variant_compiled_ms']:.1f}",
        f"{r['compiled_speedup']:.2f}x ({r['compiled_speedup_over_flops_all_matmul']:.2f})",
        f"{r['base_compiled_over_eager']:.3f} / {r['variant_compiled_over_eager']:.3f}",
    ]


BATCH_HEADERS = ("throughput speedup (/ FLOPs) @ batch", "marginal speedup (/ FLOPs)")


def _batch_cells(r: dict[str, Any]) -> list[str]:
    if "marginal_speedup" not in r:
        return ["-"] * len(BATCH_HEADERS)
    return [
        f"{r['throughput_speedup']:.2f}x ({r['throughput_speedup_over_flops_all_matmul']:.2f}) "
        f"@ {r['throughput_batch']}",
        f"{r['marginal_speedup']:.2f}x ({r['marginal_speedup_over_flops_all_matmul']:.2f})",
    ]


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The speedup table as text, with the protocol and environment underneath (and the compiled columns
    when the rows were timed compiled too, the throughput and marginal columns when a throughput batch was)."""
    compiled = any("compiled_speedup" in r for r in rows)
    batched = any("marginal_speedup" in r for r in rows)
    extra = 3 * compiled + len(BATCH_HEADERS) * batched
    table = []
    for r in rows:
        if "speedup" not in r:
            table.append([r["backbone"], "-", *[""] * (7 + extra), r.get("error", "")])
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
                *(_batch_cells(r) if batched else ()),
                *(_compiled_cells(r) if compiled else ()),
                r["error"] or r.get("compile_error") or "",
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
            *(BATCH_HEADERS if batched else ()),
            *(COMPILED_HEADERS if compiled else ()),
            "error",
        ],
        disable_numparse=True,
    )
    if batched:
        text += (
            "\nthroughput: the same pair timed at the throughput batch in the same rounds (paired per-round median); "
            "marginal: (ms at that batch - ms at the latency batch) / the extra clips, base over variant: the "
            "speedup on each added clip, without what every call pays once (weights read per call, op dispatch), "
            "which pruning tokens cannot shrink"
        )
    if compiled:
        text += (
            "\ncompiled: torch.compile(inductor, fullgraph, static shapes, freezing), timed in the same rounds as "
            "eager; compiled/eager is the median per-round latency ratio (< 1: compiling is faster)"
        )
    ok = [r for r in rows if "env" in r]
    if ok:
        e, r0 = ok[0]["env"], ok[0]
        text += (
            f"\nprotocol: latency per call of {r0['batch']} clip(s), median over {r0['iters']} interleaved rounds "
            f"after {r0['warmup']} warm-ups, "
            f"torch.inference_mode, {r0.get('precision', 'fp32')}, {r0['threads']} thread(s), batch {r0['batch']}, "
            f"device {r0['device']} "
            f"({e.get('device_name')}), torch {e.get('torch')}, load average {e.get('load_average')}. "
            "Ratios are comparable within this run only."
        )
    return text
