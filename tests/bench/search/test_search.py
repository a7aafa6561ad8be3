"""The budgeted search: only planned cells are proposed, constraints hold, stored cells are not rerun."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("optuna")

from bench.grid import LocalExecutor, load_grid, plan_grid
from bench.grid.spec import GridError
from bench.search import parse_where, run_search

GRID = """name: s
backbones: [strided, mhformer]
presets: [tiny]
pruners: [none, cluster, uniform]
tokens: [0.33, 0.67]
depths: [1, 3]
modes: [finetune]
measure: [flops, accuracy]
train: {steps: 1, eval_stride: 9, eval_every: 5, test_flip: false, threads: 1}
baseline: {steps: 600}  # Strided leaves the mean pose (the reference point needs a baseline result)
data: {source: synthetic, noise: none, frames_per_sequence: 150, cache_dir: "CACHE"}
"""


class Counting(LocalExecutor):
    """Counts the accuracy tasks it runs (a stored cell is never handed to it)."""

    def __init__(self) -> None:
        super().__init__()
        self.accuracy: list[str] = []

    def run(self, tasks, baselines, note=None):
        self.accuracy += [t.cell.id for t in tasks if t.measure == "accuracy"]
        return super().run(tasks, baselines, note)


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(GRID.replace("CACHE", str(tmp_path / "cache")))
    p = plan_grid(load_grid(path))
    assert p.skipped  # MHFormer's trunk has no depth 3: an impossible region of the axes
    return p


@pytest.mark.slow
def test_trials_are_planned_cells_that_meet_the_constraints_and_stored_cells_are_not_rerun(plan, tmp_path):
    ex = Counting()
    limit = 0.0015  # GFLOPs: leaves Strided's pruned cells and excludes the rest
    res = run_search(plan, tmp_path / "out", 4, where=parse_where([f"gflops<={limit}"]), executor=ex, seed=1)
    planned = {c.id for c in plan.cells}
    records = [json.loads(x) for x in next((tmp_path / "out").glob("accuracy-*.jsonl")).read_text().splitlines()]
    tried = {r["cell_id"] for r in records}
    assert tried <= planned  # never an impossible combination
    flops = {
        json.loads(x)["cell_id"]: json.loads(x)["gflops"]
        for f in (tmp_path / "out").glob("flops-*.jsonl")
        for x in f.read_text().splitlines()
    }
    assert res.candidates == sum(1 for c in plan.cells if flops[c.id] <= limit) < len(plan.cells)
    assert all(flops[cid] <= limit for cid in res.trials["cell_id"])  # no trial breaks the constraint
    assert len(ex.accuracy) == len(set(ex.accuracy)) == len(records)  # each cell's accuracy ran once
    again = Counting()
    res2 = run_search(plan, tmp_path / "out", 4, where=parse_where([f"gflops<={limit}"]), executor=again, seed=1)
    assert again.accuracy == [] and len(res2.trials) == len(res.trials)  # the stored study: nothing runs


@pytest.mark.slow
def test_the_fps_objective_is_each_trials_stored_throughput_and_is_maximised(tmp_path):
    path = tmp_path / "g.yaml"
    text = GRID.replace("CACHE", str(tmp_path / "cache")).replace("[strided, mhformer]", "[strided]")
    text = text.replace("steps: 600}", "steps: 1000}")  # pruned cells off the mean pose too
    path.write_text(
        text.replace("[flops, accuracy]", "[flops, speed, accuracy]")
        + "speed: {warmup: 1, iters: 2, batch: 1, threads: 1, throughput_batch: 4}\n"
    )
    res = run_search(plan_grid(load_grid(path)), tmp_path / "out", 3, objectives=("mpjpe_mm", "fps"), seed=0)
    speed = {
        json.loads(x)["cell_id"]: json.loads(x)["fps"]
        for f in (tmp_path / "out").glob("speed-*.jsonl")
        for x in f.read_text().splitlines()
    }
    assert len(res.trials) == 3 and res.reference["fps"] == 0.0
    for _, t in res.trials.iterrows():
        assert t["fps"] == pytest.approx(speed[t["cell_id"]]) and t["fps"] > 0
    best = res.trials.loc[res.trials["mpjpe_mm"].idxmin()]
    fastest = res.trials.loc[res.trials["fps"].idxmax()]
    assert {best["cell_id"], fastest["cell_id"]} <= set(res.front["cell_id"])  # higher fps is better
    assert res.hypervolume[-1] > 0


def test_bad_requests_are_one_line(plan, tmp_path):
    for kwargs, message in [
        ({"objectives": ("gflops", "fps")}, "--objectives"),
        ({"where": parse_where(["gflops<=0"])}, "no cell of the grid meets"),
        ({"sampler": "annealing"}, "--sampler"),
    ]:
        with pytest.raises(GridError, match=message):
            run_search(plan, tmp_path / "bad", 1, **kwargs)
    for text in ("mpjpe_mm<=50", "gflops<<3", "gflops<=lots"):
        with pytest.raises(GridError, match="--where"):
            parse_where([text])


@pytest.mark.slow
def test_a_killed_search_resumes_without_training_a_cell_twice(tmp_path):
    """SIGKILL after two measured cells, the same command again: as many distinct cells as asked, each cell's
    accuracy record written once (counted in the store, not read from a log)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    path = tmp_path / "g.yaml"
    path.write_text(GRID.replace("CACHE", str(tmp_path / "cache")).replace("[strided, mhformer]", "[strided]"))
    root = Path(__file__).resolve().parents[3]
    cmd = [sys.executable, str(root / "run_bench.py"), "search", str(path), "--trials", "5", "--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen = 0
    deadline = time.time() + 240
    assert proc.stdout is not None
    for line in proc.stdout:
        seen += line.startswith("[trial")
        if seen >= 2 or time.time() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    folder = tmp_path / "s-search"
    records = [json.loads(x)["cell_id"] for f in folder.glob("accuracy-*.jsonl") for x in f.read_text().splitlines()]
    assert len(records) == len(set(records))  # no cell trained or scored twice
    from bench.search.run import measured_cells

    measured = measured_cells(folder)
    assert len(measured) == 5 and measured <= set(records)
    assert (folder / "plots" / "search_tpe_s0.png").is_file()  # hypervolume against trials, front over candidates
    assert "hypervolume" in r.stdout and "reference point" in r.stdout
    from bench.cli import main

    assert main(["report", str(folder)]) == 0  # a search folder reads like a grid folder
    assert (folder / "tables" / "hot.md").is_file() and list((folder / "plots").glob("mpjpe_vs_gflops_*.png"))
