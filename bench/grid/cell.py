"""One grid cell: a pure function from the cell dict to one flat result row."""

from __future__ import annotations

import functools
import json
import os
import time
import traceback
from collections.abc import Mapping
from typing import Any

import pandas as pd

from bench.config import ModelConfig
from bench.grid.spec import GridError


def _flops_fields(cfg: ModelConfig) -> dict[str, Any]:
    from bench.measure.flops import count_flops

    r = count_flops(cfg, counters=("fcm",)).to_dict()
    return {
        "params": r["params"],
        "gflops": r["gflops"],
        "gflops_paper": r["gflops_paper"],
        "gflops_per_frame": r["gflops_per_frame"],
        "tokens_per_block": json.dumps(r["tokens_per_block"]),
    }


def _speed_fields(cfg: ModelConfig, opts: Mapping[str, Any]) -> dict[str, Any]:
    from bench.measure.speed import measure_speed

    r = measure_speed(
        cfg,
        batch=int(opts.get("batch", 1)),
        warmup=opts.get("warmup"),  # None: SpeedConfig's defaults
        iters=opts.get("iters"),
        threads=opts.get("threads"),
        device=str(opts.get("device", "cpu")),
    ).to_dict()
    return {
        "latency_ms": r["latency_ms_median"],
        "latency_iqr_ms": r["latency_ms_iqr"],
        "fps": r["fps"],
        "speed_batch": r["batch"],
        "threads": r["threads"],
        "device": r["device"],
    }


@functools.lru_cache(maxsize=2)
def _cached_data(cfg: Any) -> Any:
    """One dataset per data configuration and process (cells of a grid share it)."""
    from bench.training.loop import load_data

    return load_data(cfg)


def _accuracy_fields(cfg: ModelConfig, cell: Mapping[str, Any]) -> dict[str, Any]:
    from bench.config import DataConfig, TrainConfig
    from bench.training.loop import train

    t = dict(cell.get("train") or {})
    known = set(TrainConfig.model_fields) - {"seed"}
    unknown = sorted(set(t) - known)
    if unknown:
        raise GridError(f"unknown train option(s) {', '.join(unknown)}")
    tc = TrainConfig(seed=int(cell.get("seed", 0)), **t)
    data = _cached_data(DataConfig(**dict(cell.get("data") or {})))
    res = train(cfg, tc, data, None, progress=False, data_name=data.name).to_dict()
    return {
        "mpjpe_mm": res["mpjpe_mm"],
        "pmpjpe_mm": res["pmpjpe_mm"],
        "mpjve_mm": res["mpjve_mm"],
        "trivial_mpjpe_mm": res["trivial_mpjpe_mm"],
        "train_steps": res["steps"],
        "train_seconds": res["seconds"],
        "eval_output": res["eval_output"],
        "data": res["data"],
    }


def run_cell(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Measure one cell: a pure function from the cell dict to one flat result row."""
    import torch

    cfg = ModelConfig.from_dict(cell["model"])
    row: dict[str, Any] = {
        "cell_id": cell["cell_id"],
        "backbone": cfg.backbone,
        "preset": cfg.preset,
        "pruner": cfg.pruner,
        "recoverer": cfg.effective_recoverer,
        "tokens": json.dumps(list(cfg.tokens)),
        "depths": json.dumps(list(cfg.depths)),
        "seed": cell.get("seed", 0),
        "label": cfg.label(),
        "torch": torch.__version__,
        "error": "",
    }
    t0 = time.perf_counter()
    try:
        # the grid was validated whole before its first cell; each measure builds its model once
        if "flops" in cell["measure"]:
            row.update(_flops_fields(cfg))
        if "speed" in cell["measure"]:
            row.update(_speed_fields(cfg, cell.get("speed") or {}))
        if "accuracy" in cell["measure"]:
            row.update(_accuracy_fields(cfg, cell))
    except Exception as e:  # failure as data: the row records it, the grid goes on
        msg = " ".join(str(e).split()) or type(e).__name__
        row["error"] = f"{type(e).__name__}: {msg}"[:500]
        if os.environ.get("HOURGLASS_DEBUG"):
            traceback.print_exc()
    row["cell_seconds"] = round(time.perf_counter() - t0, 2)
    row["finished"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    return row
