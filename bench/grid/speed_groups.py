"""Speed in a grid, measured the way ``run_bench.py speedup`` measures it: in groups, against a baseline.

Timing one cell at a time gives each cell a different moment of a shared machine: two cells with the
same FLOPs can differ by 2x, and a speedup read from two such rows is noise. Here every speed task of
one (backbone, preset, backbone overrides, speed protocol) is timed round-robin in **one** process
together with its baseline (:func:`bench.measure.speed.measure_speed_group`), and each row carries
its latency, FPS and ``speedup`` against the baseline from the same rounds, with the spread. The
baseline is timed even when the grid has no baseline cell, since the speedup needs it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from bench.config import ModelConfig, SpeedConfig, validate
from bench.errors import one_line
from bench.measure.speed import Clock

#: what a speed row carries from :meth:`SpeedResult.to_dict` and the paired speedups. ``latency_ms`` and
#: ``speedup`` are per call at ``speed_batch`` (1); ``fps`` is the throughput, output frames per second at
#: ``throughput_batch``, with ``throughput_speedup`` from the same rounds (``latency_fps``: the rate at batch 1)
SPEED_FIELDS = {
    "latency_ms_median": "latency_ms",
    "latency_ms_iqr": "latency_iqr_ms",
    "fps": "latency_fps",
    "throughput_fps": "fps",
    "throughput_batch": "throughput_batch",
    "throughput_ms_median": "throughput_ms",
    "throughput_ms_iqr": "throughput_iqr_ms",
    "throughput_speedup": "throughput_speedup",
    "throughput_speedup_q25": "throughput_speedup_q25",
    "throughput_speedup_q75": "throughput_speedup_q75",
    "throughput_speedup_iqr": "throughput_speedup_iqr",
    "throughput_speedup_rounds": "throughput_speedup_rounds",
    "batch": "speed_batch",
    "threads": "threads",
    "device": "device",
    "device_name": "device_name",
    "precision": "precision",
    "driver": "driver",
    "cuda": "cuda",
    "speedup": "speedup",
    "speedup_q25": "speedup_q25",
    "speedup_q75": "speedup_q75",
    "speedup_iqr": "speedup_iqr",
    "speedup_of_medians": "speedup_of_medians",
    "speedup_rounds": "speedup_rounds",
    "iqr_over_median": "latency_iqr_over_median",
}


def group_key(task: Mapping[str, Any]) -> str:
    """Tasks timed together: same backbone, preset and constructor overrides, same speed protocol."""
    m = task["model"]
    return json.dumps(
        [m["backbone"], m["preset"], m.get("overrides", {}), task.get("speed", {})], sort_keys=True, default=str
    )


def speed_groups(tasks: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The speed tasks split into groups (stable order: the grid's)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        groups.setdefault(group_key(t), []).append(t)
    return list(groups.values())


def run_speed_group(
    tasks: Sequence[Mapping[str, Any]],
    base_row: Callable[[Mapping[str, Any]], dict[str, Any]],
    clock: Clock | None = None,
) -> Iterator[dict[str, Any]]:
    """Time the group's configurations with their baseline; one row per task (``base_row`` gives its
    identity columns). A failure of the whole group becomes an error row for each task."""
    t0 = time.perf_counter()
    cfgs = [ModelConfig.from_dict(t["model"]) for t in tasks]
    try:
        speed = validate(SpeedConfig, tasks[0].get("speed") or {}, "speed")
        results = _measure(cfgs, speed, clock)
        error = ""
    except Exception as e:  # failure as data: every row of the group records it, the grid goes on
        results, error = {}, f"{type(e).__name__}: {one_line(e)}"[:500]
    seconds = round(time.perf_counter() - t0, 2)
    for task, cfg in zip(tasks, cfgs, strict=True):
        row = base_row(task)
        res = results.get(cfg.cell_id())
        if res is None:
            row["error"] = error or "speed: no timing came back for this configuration"
        else:
            row.update({ours: res.get(theirs) for theirs, ours in SPEED_FIELDS.items()})
            row["speed_group"] = len(results)
            row["error"] = res.get("error") or ""
        row["cell_seconds"] = seconds
        row["finished"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
        yield row


def _measure(cfgs: Sequence[ModelConfig], speed: SpeedConfig, clock: Clock | None) -> dict[str, dict[str, Any]]:
    from bench.measure.speed import check_device, measure_speed_group

    check_device(speed)
    return measure_speed_group(cfgs[0].baseline(), list(cfgs), speed, clock=clock)


__all__ = ["SPEED_FIELDS", "group_key", "run_speed_group", "speed_groups"]
