"""The speed protocol on a GPU: every paper preset and its HoT/TPC forms, fp32 / bf16 / fp16, batch 1 and a
throughput batch, in under 5 minutes (issue 22, item 4).

    python -m bench.benchmarks.gpu [--device cuda] [--iters 20] [--budget-s 270] [--out results/gpu]

For each backbone and precision the baseline and its published forms are one speed group
(:func:`bench.measure.speed.measure_speed_group`): built once, an untimed call at each timed shape with
``cudnn.benchmark`` on (cuDNN autotunes there), ``--warmup`` untimed rounds, then ``--iters`` interleaved
rounds, each call timed with CUDA events after a synchronisation. Every row names the device, its driver,
the CUDA runtime, the precision and the batch; each group's rows are appended to
``OUT/gpu-<env tag>.jsonl`` as soon as it ends, so a run cut short keeps what it timed. A group that would
start after ``--budget-s`` is not timed: its rows say so. Nothing here is a test dependency;
``--device cpu --preset tiny`` runs the same path on a CPU (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.config import SpeedConfig, validate

PRECISIONS = ("fp32", "bf16", "fp16")
#: what each row keeps of a speed group's row (``bench.measure.speed.measure_speed_group``)
KEPT = (
    "latency_ms_median",
    "latency_ms_iqr",
    "speedup",
    "batch",
    "throughput_batch",
    "throughput_fps",
    "throughput_speedup",
    "peak_memory_mb",
    "device",
    "device_name",
    "driver",
    "cuda",
    "torch",
    "precision",
    "timer",
    "error",
)


def groups(backbones: Sequence[str] | None, precisions: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(backbone, precision) in the order they are timed: every precision of a backbone, then the next."""
    from backbones import list_backbones

    for name in backbones or list_backbones():
        for p in precisions:
            yield name, p


def run_gpu(
    backbones: Sequence[str] | None,
    *,
    preset: str,
    precisions: Sequence[str],
    speed: SpeedConfig,
    budget_s: float,
    out: Path | None,
) -> list[dict[str, Any]]:
    """One row per (backbone, configuration, precision); rows of a group past ``budget_s`` are 'not timed'."""
    from bench.benchmarks.speedup import configs_for
    from bench.measure.env import env_tag
    from bench.measure.speed import check_device, measure_speed_group

    dev = check_device(speed)  # a machine without the device stops here, in one line
    plan = list(groups(backbones, precisions))
    for backbone, precision in plan:  # every name and precision is checked before the first group is timed
        configs_for(backbone, preset)
        speed.replace(precision=precision)
    path = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"gpu-{env_tag(dev)}.jsonl"
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for backbone, precision in plan:
        base, variants = configs_for(backbone, preset)
        named = [("baseline", base), *variants]
        late = time.perf_counter() - t0 > budget_s
        if late:
            timed: dict[str, dict[str, Any]] = {}
        else:
            try:
                timed = measure_speed_group(base, [c for _, c in variants], speed.replace(precision=precision))
            except Exception as exc:  # one group failing (a precision the device lacks) does not stop the rest
                timed = {
                    c.model_id(): {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"} for _, c in named
                }
        group = []
        for name, cfg in named:
            r = timed.get(cfg.model_id(), {"error": f"not timed: the {budget_s:.0f} s budget was spent"})
            group.append(
                {
                    "backbone": backbone,
                    "preset": cfg.preset,
                    "form": name,
                    "label": cfg.label(),
                    "requested_precision": precision,
                    **{k: r.get(k) for k in KEPT},
                }
            )
        if path is not None:
            with path.open("a") as f:  # the group is on disk before the next one starts
                f.writelines(json.dumps(g, default=str) + "\n" for g in group)
        rows += group
    return rows


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    def num(v: Any, fmt: str) -> str:
        return "-" if v is None or v != v else format(v, fmt)

    table = [
        [
            f"{r['backbone']}/{r['preset']}",
            r["form"],
            r["requested_precision"],
            num(r["latency_ms_median"], ".2f"),
            num(r["speedup"], ".2f"),
            f"{num(r['throughput_fps'], ',.0f')} @ {r['throughput_batch'] or '-'}",
            num(r["throughput_speedup"], ".2f"),
            num(r["peak_memory_mb"], ",.0f"),
            r["error"] or "",
        ]
        for r in rows
    ]
    head = ["model", "form", "precision", "ms @ 1", "speedup @ 1", "FPS @ batch", "speedup @ batch", "peak MB", "error"]
    text = tabulate(table, headers=head, disable_numparse=True)
    ok = [r for r in rows if r["device"]]
    if ok:
        r = ok[0]
        text += (
            f"\ndevice {r['device']} ({r['device_name']}), driver {r['driver']}, CUDA {r['cuda']}, torch {r['torch']}; "
            f"timer {r['timer']}; speedups are per-round paired medians against the baseline, same precision"
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    from bench.cli import user_errors
    from bench.errors import one_line

    p = argparse.ArgumentParser(prog="python -m bench.benchmarks.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--backbones", default=None, help="comma-separated (default: all)")
    p.add_argument("--preset", default="paper")
    p.add_argument("--precisions", default=",".join(PRECISIONS))
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--throughput-batch", type=int, default=32)
    p.add_argument("--budget-s", type=float, default=270.0, help="no group starts after this many seconds")
    p.add_argument("--out", default="results/gpu", help="folder for the JSON-lines rows ('' : none)")
    a = p.parse_args(argv)
    try:
        values = {"device": a.device, "warmup": a.warmup, "iters": a.iters, "throughput_batch": a.throughput_batch}
        speed = validate(SpeedConfig, values, "speed")
        rows = run_gpu(
            a.backbones.split(",") if a.backbones else None,
            preset=a.preset,
            precisions=[x.strip() for x in a.precisions.split(",")],
            speed=speed,
            budget_s=a.budget_s,
            out=Path(a.out) if a.out else None,
        )
    except user_errors() as e:
        print(f"error: {one_line(e)}")
        return 2
    print(format_rows(rows))
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
