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


def test_a_grid_with_the_compile_axis_stores_the_compiled_columns_in_each_row(tmp_path, monkeypatch):
    """``speed: {compile: [none, inductor]}``: each row keeps its eager figures and gains the compiled ones,
    read back typed (text stays text); a grid without the axis has none of those columns."""
    from bench.results import load

    monkeypatch.setattr(torch, "compile", lambda model, **kw: model)  # a compile that changes nothing
    path = tmp_path / "g.yaml"
    path.write_text(ONE_GROUP.replace("threads: 1}", "threads: 1, throughput_batch: 1, compile: [none, inductor]}"))
    base = ModelConfig.create("mixste", "tiny")
    ms = {base.model_id(): 10.0, f"{base.model_id()}+inductor": 6.0}

    def clock(key: str, step, device: torch.device) -> float:  # type: ignore[no-untyped-def]
        return ms.get(key, 5.0 if "+" not in key else 2.0)

    run_grid(plan_grid(load_grid(path)), tmp_path / "r", speed_clock=clock)
    df = load(tmp_path / "r").set_index("label")
    assert (df["compile"] == "none+inductor").all() and (df["compile_error"].fillna("") == "").all()
    cluster = ModelConfig.create("mixste", "tiny", "cluster", None, 9, 1)
    assert df.loc[cluster.label(), "compiled_over_eager"] == pytest.approx(0.4)  # 2 / 5, same rounds
    assert df.loc[cluster.label(), "compiled_speedup"] == pytest.approx(3.0)  # 6 / 2, compiled baseline
    assert df.loc[cluster.label(), "speedup"] == pytest.approx(2.0)  # 10 / 5, eager
    assert (df["compiled_rel_err"] == 0).all()
    plain = tmp_path / "p.yaml"
    plain.write_text(ONE_GROUP.replace("threads: 1}", "threads: 1, throughput_batch: 1}"))
    run_grid(plan_grid(load_grid(plain)), tmp_path / "q", speed_clock=clock)
    assert not any(c.startswith("compile") for c in load(tmp_path / "q").columns)


# ---- a killed speed group keeps its finished rounds ------------------------------------------------
ONE_GROUP = GRID.replace("backbones: [mixste, strided]", "backbones: [mixste]")
CALLS_PER_ROUND = 6  # baseline + 2 variants, each at batch 1 and at the throughput batch


def _interrupted_after(calls: int):  # type: ignore[no-untyped-def]
    """A clock that gives 10 ms to the baseline and 5 ms to each variant, then is interrupted."""
    seen: list[str] = []
    base = ModelConfig.create("mixste", "tiny").model_id()

    def clock(key: str, step, device: torch.device) -> float:  # type: ignore[no-untyped-def]
        if len(seen) == calls:
            raise KeyboardInterrupt
        seen.append(key)
        return 10.0 if key.split(":")[0] == base else 5.0

    return clock


def _recording(calls: list[str]):  # type: ignore[no-untyped-def]
    def clock(key: str, step, device: torch.device) -> float:  # type: ignore[no-untyped-def]
        calls.append(key)
        return 100.0

    return clock


def _interrupt_mid_group(tmp_path, rounds_done: int):  # type: ignore[no-untyped-def]
    path = tmp_path / "g.yaml"
    path.write_text(ONE_GROUP)
    clock = _interrupted_after(CALLS_PER_ROUND * (1 + rounds_done) + 2)  # the warm-up, the rounds, part of one
    with pytest.raises(KeyboardInterrupt):
        run_grid(plan_grid(load_grid(path)), tmp_path / "r", speed_clock=clock)
    return path, list((tmp_path / "r" / "speed-rounds").glob("*.jsonl"))


def test_a_killed_speed_group_resumes_at_its_next_round_and_keeps_the_finished_ones(tmp_path):
    path, files = _interrupt_mid_group(tmp_path, rounds_done=2)
    assert len(files) == 1 and len(files[0].read_text().splitlines()) == 1 + 2  # header + 2 finished rounds
    notes: list[str] = []
    calls: list[str] = []
    df = run_grid(plan_grid(load_grid(path)), tmp_path / "r", speed_clock=_recording(calls), note=notes.append)
    # the warm-up again, then only rounds 3 and 4: the 2 finished rounds are not timed again
    assert len(calls) == CALLS_PER_ROUND * (1 + 2)
    assert any("resumes at round 3 (2 rounds kept" in n for n in notes)
    df = df.set_index("label")
    cluster = ModelConfig.create("mixste", "tiny", "cluster", None, 9, 1)
    # samples: 2 kept rounds (baseline 10 ms, variants 5 ms) and 2 new ones (100 ms each): both count
    assert df.loc[cluster.label(), "latency_ms"] == pytest.approx(52.5)
    assert df.loc[cluster.label(), "speedup"] == pytest.approx(1.5)  # median of the ratios 2, 2, 1, 1
    assert len(df) == 2 and (df["error"] == "").all()
    assert not files[0].exists()  # the rows are stored: the rounds are gone
    again: list[str] = []
    run_grid(plan_grid(load_grid(path)), tmp_path / "r", speed_clock=_recording(again))
    assert again == []  # every cell is done


@pytest.mark.parametrize("damage", ["header", "garbage", "truncated", "symlink", "directory"])
def test_a_round_file_that_does_not_match_or_is_damaged_keeps_only_its_valid_leading_rounds(tmp_path, damage):
    path, files = _interrupt_mid_group(tmp_path, rounds_done=3)
    f = files[0]
    header, *rounds = f.read_text().splitlines()
    outside = tmp_path / "outside.jsonl"
    expected_kept = {"header": 0, "garbage": 1, "truncated": 2, "symlink": 0, "directory": 0}[damage]
    if damage == "header":  # another protocol's or host's rounds under this name: not ours
        f.write_text(header.replace('"threads": 1', '"threads": 2') + "\n" + "\n".join(rounds) + "\n")
    elif damage == "garbage":
        f.write_bytes(f"{header}\n{rounds[0]}\n\xff\xfe not json\n{rounds[1]}\n".encode("latin-1"))
    elif damage == "truncated":
        f.write_text(f"{header}\n{rounds[0]}\n{rounds[1]}\n{rounds[2][:7]}")
    elif damage == "symlink":
        outside.write_text(f.read_text())
        f.unlink()
        f.symlink_to(outside)
    else:
        f.unlink()
        f.mkdir()
    calls: list[str] = []
    df = run_grid(plan_grid(load_grid(path)), tmp_path / "r", speed_clock=_recording(calls), note=lambda s: None)
    assert len(calls) == CALLS_PER_ROUND * (1 + 4 - expected_kept)
    assert len(df) == 2 and (df["error"] == "").all()
    if damage == "symlink":  # the link was replaced, never written through
        assert outside.read_text().count("\n") == 4 and not f.exists()
    if damage == "directory":
        assert f.is_dir()  # not the store's to remove; its rows are still right


@pytest.mark.slow
def test_sigkill_during_a_speed_group_and_the_same_command_resumes_it(tmp_path):
    """A real kill -9 while a group is being timed: the rerun says where it resumes, times only what is
    left, and stores each cell's speed record once."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    path = tmp_path / "g.yaml"
    path.write_text(GRID.replace("[mixste, strided]", "[strided]").replace("iters: 4", "iters: 80"))
    cmd = [sys.executable, str(root / "run_bench.py"), "run", str(path), "--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    folder = tmp_path / "sg"
    deadline = time.time() + 120
    kept = 0
    while time.time() < deadline and p.poll() is None:
        files = list((folder / "speed-rounds").glob("*.jsonl"))
        kept = len(files[0].read_bytes().splitlines()) - 1 if files else 0
        if kept >= 5:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert 5 <= kept < 80, kept
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "speed: a timing group resumes at round" in r.stderr + r.stdout
    records = [json.loads(x) for f in folder.glob("speed-*.jsonl") for x in f.read_text().splitlines()]
    assert sorted(x["cell_id"] for x in records) == sorted({x["cell_id"] for x in records}) and len(records) == 2
    assert all(x["error"] == "" and x["latency_ms"] > 0 for x in records)
    assert list((folder / "speed-rounds").glob("*.jsonl")) == []
