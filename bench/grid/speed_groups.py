"""Speed in a grid, measured the way ``run_bench.py speedup`` measures it: in groups, against a baseline.

Timing one cell at a time gives each cell a different moment of a shared machine: two cells with the
same FLOPs can differ by 2x, and a speedup read from two such rows is noise. Here every speed task of
one (backbone, preset, backbone overrides, speed protocol) is timed round-robin in **one** process
together with its baseline (:func:`bench.measure.speed.measure_speed_group`), and each row carries
its latency, FPS and ``speedup`` against the baseline from the same rounds, with the spread. The
baseline is timed even when the grid has no baseline cell, since the speedup needs it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd

from bench.config import ModelConfig, SpeedConfig
from bench.errors import one_line
from bench.grid.cell import Task
from bench.grid.rounds import RoundFile
from bench.measure.speed import Clock
from bench.rows import SPEED_FIELDS, Row


def group_key(task: Task) -> tuple[str, str, str, SpeedConfig]:
    """Tasks timed together: same backbone, preset and constructor overrides, same speed protocol."""
    m = task.cell.model
    return m.backbone, m.preset, json.dumps(m.overrides, default=str), task.cell.speed


def speed_groups(tasks: Sequence[Task]) -> list[list[Task]]:
    """The speed tasks split into groups (stable order: the grid's)."""
    groups: dict[tuple[str, str, str, SpeedConfig], list[Task]] = {}
    for t in tasks:
        groups.setdefault(group_key(t), []).append(t)
    return list(groups.values())


def group_name(tasks: Sequence[Task]) -> str:
    """A file-name-safe digest of the group: its configurations and its protocol."""
    ids = [t.cell.model.model_id() for t in tasks]
    text = json.dumps([ids, tasks[0].cell.speed.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_speed_group(
    tasks: Sequence[Task],
    base_row: Callable[[Task], Row],
    clock: Clock | None = None,
    rounds: RoundFile | None = None,
) -> Iterator[Row]:
    """Time the group's configurations with their baseline; one row per task (``base_row`` gives its
    identity columns). A failure of the whole group becomes an error row for each task. ``rounds``
    keeps each finished round until the group's rows are taken (:mod:`bench.grid.rounds`)."""
    t0 = time.perf_counter()
    cfgs = [t.cell.model for t in tasks]
    try:
        results = _measure(cfgs, tasks[0].cell.speed, clock, rounds)
        error = ""
    except Exception as e:  # failure as data: every row of the group records it, the grid goes on
        results, error = {}, f"{type(e).__name__}: {one_line(e)}"[:500]
    seconds = round(time.perf_counter() - t0, 2)
    for task, cfg in zip(tasks, cfgs, strict=True):
        row = base_row(task)
        res = results.get(cfg.model_id())
        if res is None:
            row["error"] = error or "speed: no timing came back for this configuration"
        else:
            row.update({ours: res[theirs] for theirs, ours in SPEED_FIELDS.items() if theirs in res})
            row["speed_group"] = len(results)
            row["error"] = res.get("error") or ""
        row["cell_seconds"] = seconds
        row["finished"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
        yield row
    if rounds is not None:  # every row was taken (stored): the rounds have served
        rounds.discard()


def _measure(
    cfgs: Sequence[ModelConfig], speed: SpeedConfig, clock: Clock | None, rounds: RoundFile | None
) -> dict[str, dict[str, Any]]:
    from bench.measure.speed import check_device, measure_speed_group

    check_device(speed)
    return measure_speed_group(cfgs[0].baseline(), list(cfgs), speed, clock=clock, rounds=rounds)


__all__ = ["group_key", "group_name", "run_speed_group", "speed_groups"]
