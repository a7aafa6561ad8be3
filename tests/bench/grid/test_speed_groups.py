"""Speed in a grid is timed the way `speedup` times it: each backbone's cells round-robin with their baseline."""

from __future__ import annotations

import pytest
import torch

from bench.config import ModelConfig
from bench.grid import load_grid, plan_grid, run_grid
from bench.grid.speed_groups import group_key, speed_groups

GRID = """name: sg
backbones: [mixste, strided]
presets: [tiny]
pruners: [cluster, uniform]
tokens: [9]
depths: [1]
measure: [speed]
speed: {warmup: 1, iters: 4, threads: 1}
"""


def test_cells_are_timed_interleaved_with_their_baseline_and_carry_a_paired_speedup(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(GRID)
    base = ModelConfig.create("mixste", "tiny")
    cluster = ModelConfig.create("mixste", "tiny", "cluster", None, 9, 1)
    uniform = ModelConfig.create("mixste", "tiny", "uniform", None, 9, 1)
    sbase = ModelConfig.create("strided", "tiny")
    ms = {base.model_id(): 10.0, cluster.model_id(): 5.0, uniform.model_id(): 4.0, sbase.model_id(): 8.0}
    calls: list[str] = []

    def clock(key: str, step, device: torch.device) -> float:  # type: ignore[no-untyped-def]
        calls.append(key)
        return ms.get(key, 2.0) * (1 + len(calls) // 5)  # the machine slows down as the run goes on

    df = run_grid(plan_grid(load_grid(path)), tmp_path / "r", speed_clock=clock).set_index("label")
    b, c, u = base.model_id(), cluster.model_id(), uniform.model_id()
    mixste_calls = [k for k in calls if k in (b, c, u)]
    # warm-up then 4 rounds, each holding the baseline and both variants once (the start rotates)
    assert mixste_calls[:3] == [b, c, u] and len(mixste_calls) == 3 * 5
    for r in range(5):
        assert sorted(mixste_calls[3 * r : 3 * r + 3]) == sorted([b, c, u])
    # the mixste group is timed before the strided group starts: groups never interleave
    last_mixste = max(i for i, k in enumerate(calls) if k in (b, c, u))
    assert all(k not in (b, c, u) for k in calls[last_mixste + 1 :])
    assert df.loc[cluster.label(), "speedup"] == pytest.approx(2.0, rel=0.35)
    assert df.loc[uniform.label(), "speedup"] > df.loc[cluster.label(), "speedup"]
    assert (df["speed_group"] == 3).all() and (df["error"] == "").all()
    assert set(df["precision"]) == {"fp32"} and set(df["device"]) == {"cpu"} and set(df["threads"]) == {1}


def test_groups_split_by_backbone_preset_and_protocol():
    from bench.config import SpeedConfig
    from bench.grid import Cell, Task

    def task(backbone: str, iters: int) -> Task:
        return Task(Cell(ModelConfig.create(backbone, "tiny"), speed=SpeedConfig(iters=iters)), "speed")

    tasks = [task("mixste", 5), task("strided", 5), task("mixste", 5), task("mixste", 9)]
    groups = speed_groups(tasks)
    assert [len(g) for g in groups] == [2, 1, 1]
    assert group_key(tasks[0]) == group_key(tasks[2]) != group_key(tasks[3])


def test_a_cell_timed_alone_keeps_the_grids_precision_and_the_group_columns():
    from bench.config import SpeedConfig
    from bench.grid import Cell, Task
    from bench.grid.cell import run_cell
    from bench.rows import SPEED_FIELDS

    cfg = ModelConfig.create("strided", "tiny", "uniform", None, 9, 1)
    speed = SpeedConfig(warmup=0, iters=2, threads=1, precision="bf16")
    row = run_cell(Task(Cell(cfg, speed=speed), "speed"))
    assert row["error"] == "" and row["precision"] == "bf16" and row["threads"] == 1 and row["fps"] > 0
    assert {"latency_ms", "latency_iqr_ms", "speed_batch", "device_name"} <= set(row)
    assert set(row) & set(SPEED_FIELDS.values()) <= set(SPEED_FIELDS.values())


def test_speed_rows_carry_latency_and_throughput_with_its_batch(tmp_path):
    """fps is the throughput figure (output frames/s at the preset's throughput batch); latency_fps the batch-1 one;
    the throughput speedup is paired from the throughput calls, not from the latency ones."""
    from backbones import get_backbone_spec

    path = tmp_path / "g.yaml"
    path.write_text(GRID.replace("backbones: [mixste, strided]", "backbones: [mixste]"))
    base = ModelConfig.create("mixste", "tiny")
    cluster = ModelConfig.create("mixste", "tiny", "cluster", None, 9, 1)
    ms = {base.model_id(): 10.0, cluster.model_id(): 8.0}  # batch 1: 1.25x
    ms |= {f"{base.model_id()}:throughput": 400.0, f"{cluster.model_id()}:throughput": 200.0}  # throughput: 2x

    def clock(key: str, step, device: torch.device) -> float:  # type: ignore[no-untyped-def]
        return ms.get(key, 5.0)

    df = run_grid(plan_grid(load_grid(path)), tmp_path / "r", speed_clock=clock).set_index("label")
    tb = get_backbone_spec("mixste").preset("tiny").throughput_batch
    assert tb > 1 and (df["throughput_batch"] == tb).all() and (df["speed_batch"] == 1).all()
    row = df.loc[cluster.label()]
    assert row["latency_ms"] == pytest.approx(8.0) and row["throughput_ms"] == pytest.approx(200.0)
    assert row["fps"] == pytest.approx(27 * tb / 0.2) and row["latency_fps"] == pytest.approx(27 / 0.008)
    assert row["speedup"] == pytest.approx(1.25) and row["throughput_speedup"] == pytest.approx(2.0)
