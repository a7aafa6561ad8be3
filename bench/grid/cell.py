"""One grid cell: a pure function from the cell dict to one flat result row."""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Mapping
from typing import Any

import pandas as pd
from torch import Tensor

from bench.config import ModelConfig
from bench.errors import one_line
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
    """One cell timed alone (the Ray path; local grids time speed in groups, bench.grid.speed_groups),
    under the cell's whole speed protocol, precision included, with the same columns as a group's rows."""
    from bench.config import SpeedConfig, validate
    from bench.grid.speed_groups import SPEED_FIELDS
    from bench.measure.speed import check_device, measure_speed

    speed = validate(SpeedConfig, opts, "speed")
    check_device(speed)
    r = measure_speed(cfg, **speed.model_dump()).to_dict()
    return {ours: r[theirs] for theirs, ours in SPEED_FIELDS.items() if theirs in r}


def _accuracy_fields(
    cfg: ModelConfig, cell: Mapping[str, Any], baseline_state: Mapping[str, Tensor] | None
) -> dict[str, Any]:
    from bench.config import DataConfig, TrainConfig
    from bench.training.loop import cached_data, train

    t = dict(cell.get("train") or {})
    known = set(TrainConfig.model_fields) - {"seed"}
    unknown = sorted(set(t) - known)
    if unknown:
        raise GridError(f"unknown train option(s) {', '.join(unknown)}")
    tc = TrainConfig(seed=int(cell.get("seed", 0)), **t)
    data = cached_data(DataConfig(**dict(cell.get("data") or {})))
    base = cell.get("baseline") or {}
    init: Mapping[str, Tensor] | str | None = None
    if tc.mode != "scratch":
        init = baseline_state if baseline_state is not None else base.get("checkpoint")
        if init is None:
            raise GridError(f"mode {tc.mode} needs its baseline ({base.get('key')}); run the cell through run_grid")
    res = train(cfg, tc, data, None, init=init, progress=False, data_name=data.name).to_dict()
    return {
        "baseline_steps": (base.get("train") or {}).get("steps"),
        "mpjpe_mm": res["mpjpe_mm"],
        "pmpjpe_mm": res["pmpjpe_mm"],
        "mpjve_mm": res["mpjve_mm"],
        "trivial_mpjpe_mm": res["trivial_mpjpe_mm"],
        "train_steps": res["steps"],
        "train_seconds": res["seconds"],
        "eval_output": res["eval_output"],
        "data": res["data"],
    }


def baseline_key(cell: Mapping[str, Any]) -> str:
    """The key of the shared baseline ``cell`` is scored against (``""`` for a cell without one)."""
    return str(cell.get("baseline_key") or (cell.get("baseline") or {}).get("key", ""))


def identity_row(cell: Mapping[str, Any], cfg: ModelConfig | None = None) -> dict[str, Any]:
    """The columns that say which cell a row belongs to (every measure's row starts with them)."""
    import torch

    cfg = cfg if cfg is not None else ModelConfig.from_dict(cell["model"])
    return {
        "cell_id": cell["cell_id"],
        "backbone": cfg.backbone,
        "preset": cfg.preset,
        "pruner": cfg.pruner,
        "recoverer": cfg.effective_recoverer,
        "tokens": json.dumps(list(cfg.tokens)),
        "depths": json.dumps(list(cfg.depths)),
        "seed": cell.get("seed", 0),
        "train_mode": (cell.get("train") or {}).get("mode", "scratch"),
        # every measure's row names the cell's baseline (a FLOPs or speed task carries no baseline to wait for)
        "baseline_key": baseline_key(cell),
        "label": cfg.label(),
        "torch": torch.__version__,
        "error": "",
    }


def run_cell(cell: Mapping[str, Any], baseline_state: Mapping[str, Tensor] | None = None) -> dict[str, Any]:
    """Measure one cell: a pure function from the cell dict (and its baseline's weights) to one flat row.

    A cell that depends on a baseline (``cell["baseline"]``) starts from ``baseline_state`` when given,
    else from the checkpoint the runner put at ``cell["baseline"]["checkpoint"]``."""
    cfg = ModelConfig.from_dict(cell["model"])
    row = identity_row(cell, cfg)
    t0 = time.perf_counter()
    try:
        # the grid was validated whole before its first cell; each measure builds its model once
        if "flops" in cell["measure"]:
            row.update(_flops_fields(cfg))
        if "speed" in cell["measure"]:
            row.update(_speed_fields(cfg, cell.get("speed") or {}))
        if "accuracy" in cell["measure"]:
            row.update(_accuracy_fields(cfg, cell, baseline_state))
    except Exception as e:  # failure as data: the row records it, the grid goes on
        msg = one_line(e)
        row["error"] = f"{type(e).__name__}: {msg}"[:500]
        if os.environ.get("HOURGLASS_DEBUG"):
            traceback.print_exc()
    row["cell_seconds"] = round(time.perf_counter() - t0, 2)
    row["finished"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    return row
