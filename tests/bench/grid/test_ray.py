"""Ray executor on a local 2-CPU instance: rows equal the in-process executor's; baselines are task dependencies.

Skipped when Ray (the optional ``[ray]`` extra) is not installed.
"""

from __future__ import annotations

import os
import sys

import pytest

ray = pytest.importorskip("ray")

import torch  # noqa: E402

from bench.grid import load_grid, local_executor, plan_grid, run_grid  # noqa: E402
from bench.grid.executors import RayExecutor, ray_executor, task_resources  # noqa: E402

pytestmark = pytest.mark.slow  # a Ray instance takes ~10 s to start on 2 busy cores

GRID = """
name: r
backbones: [mixste, mhformer]
presets: [tiny]
pruners: [none, cluster, uniform]
recoverers: [default]
tokens: [9]
depths: [1]
measure: [flops]
"""
MEASURE_COLUMNS = ["cell_id", "label", "params", "gflops", "gflops_paper", "gflops_per_frame", "tokens_per_block"]


@pytest.fixture(scope="module")
def local_ray():
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # this module's task functions travel by value (workers cannot import a test file by name)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield ray
    finally:
        ray.shutdown()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def with_pid(task, baseline_state=None):
    from bench.grid.cell import run_cell

    row = run_cell(task, baseline_state)
    row["pid"] = os.getpid()
    return row


def test_ray_rows_equal_local_rows(local_ray, tmp_path):
    grid_file = tmp_path / "r.yaml"
    grid_file.write_text(GRID)
    grid = load_grid(grid_file)
    local = run_grid(plan_grid(grid), tmp_path / "local", local_executor)
    remote = run_grid(plan_grid(grid), tmp_path / "ray", RayExecutor(task=with_pid))
    assert len(local) == 2 * (1 + 2) and not local["error"].astype(bool).any()
    assert set(remote["pid"]) and os.getpid() not in set(remote["pid"])  # the cells ran in Ray workers
    a = local[MEASURE_COLUMNS].sort_values("cell_id").reset_index(drop=True)
    b = remote[MEASURE_COLUMNS].sort_values("cell_id").reset_index(drop=True)
    pd = pytest.importorskip("pandas")
    pd.testing.assert_frame_equal(a, b)
    assert ray.is_initialized()  # an instance the caller started is left running


# ---- baselines as task dependencies --------------------------------------------------------------
def fake_train_baseline(baseline, work_dir=None):
    """A baseline 'trained' in a worker: its weights carry its seed, so a cell can tell which one it got."""
    return {"w": torch.full((3,), float(baseline.seed)), "pid": torch.tensor(os.getpid())}


def refuse_to_train(baseline, work_dir=None):
    raise AssertionError("a cached baseline was trained again")


def cell_reading_baseline(task, baseline_state=None):
    got = None if baseline_state is None else float(baseline_state["w"].sum())
    return {"cell_id": task.cell.id, "measure": task.measure, "error": "", "baseline_sum": got}


class DictCache:
    """The BaselineStore protocol in the driver's memory; counts saves."""

    def __init__(self, root):
        self.root, self.states, self.saves = root, {}, []

    def path(self, key):
        return self.root / key

    def load(self, key):
        return self.states.get(key)

    def save(self, key, state):
        self.saves.append(key)
        self.states[key] = state

    def has(self, key):
        return key in self.states

    def problem(self, key, baseline):
        return ""  # this test's 'weights' are markers, not a model's

    def discard(self, key):
        self.states.pop(key, None)


def _tasks():
    """Tasks a..d: a and b share baseline k0 (seed 0), c needs k1 (seed 2), d is c's FLOPs."""
    from bench.config import DataConfig, ModelConfig, TrainConfig
    from bench.grid import Baseline, Cell, Task

    model = ModelConfig.create("mixste", "tiny", "cluster", None, 9, 1)

    def task(measure, seed, pruner_k):
        base = Baseline(model.baseline(), TrainConfig(steps=1, seed=seed), DataConfig())
        cfg = model.replace(pruner_options=(("k", pruner_k),))
        return Task(Cell(cfg, TrainConfig(mode="finetune", seed=seed), baseline=base), measure)

    tasks = {"a": task("accuracy", 0, 2), "b": task("accuracy", 0, 3), "c": task("accuracy", 2, 2)}
    tasks["d"] = task("flops", 2, 2)  # a FLOPs task never waits for a baseline
    return tasks


def _names(tasks, rows):
    by_id = {t.cell.id + t.measure: name for name, t in tasks.items()}
    return {by_id[r["cell_id"] + r["measure"]]: r for r in rows}


def test_baselines_are_task_dependencies_saved_by_the_driver(local_ray, tmp_path):
    cache, tasks = DictCache(tmp_path), _tasks()
    k0, k1 = tasks["a"].cell.baseline_key, tasks["c"].cell.baseline_key
    ex = RayExecutor(task=cell_reading_baseline, train_baseline=fake_train_baseline)
    rows = _names(tasks, ex.run(list(tasks.values()), cache))
    assert {k: r["baseline_sum"] for k, r in rows.items()} == {"a": 0.0, "b": 0.0, "c": 6.0, "d": None}
    assert sorted(cache.saves) == sorted([k0, k1])  # one training per key, each saved once, by the driver
    assert int(cache.states[k1]["pid"]) != os.getpid()  # trained in a worker
    # a second run finds both in the cache: nothing trains again
    again = RayExecutor(task=cell_reading_baseline, train_baseline=refuse_to_train)
    rows = _names(tasks, again.run(list(tasks.values()), cache))
    assert rows["c"]["baseline_sum"] == 6.0 and not any(r["error"] for r in rows.values())
    assert sorted(cache.saves) == sorted([k0, k1])


def test_a_failed_baseline_makes_its_cells_error_rows(local_ray, tmp_path):
    cache, tasks = DictCache(tmp_path), _tasks()
    ex = RayExecutor(task=cell_reading_baseline, train_baseline=refuse_to_train)
    rows = _names(tasks, ex.run([tasks[k] for k in "abc"], cache))
    assert all("AssertionError" in r["error"] or "a cached baseline" in r["error"] for r in rows.values())
    assert cache.saves == []


def test_task_resources_declare_cpus_and_a_gpu_for_cuda_speed():
    import dataclasses

    from bench.config import SpeedConfig, TrainConfig

    task = _tasks()["a"]
    cell = dataclasses.replace(task.cell, speed=SpeedConfig(device="cuda", threads=4), train=TrainConfig(threads=2))
    speed = dataclasses.replace(task, cell=cell, measure="speed")
    assert task_resources(speed) == {"num_cpus": 4.0, "num_gpus": 1.0}
    assert task_resources(dataclasses.replace(speed, measure="accuracy")) == {"num_cpus": 2.0, "num_gpus": 0.0}
    assert task_resources(dataclasses.replace(speed, measure="flops"), cpus_per_task=1.5) == {
        "num_cpus": 1.5,
        "num_gpus": 0.0,
    }
    assert isinstance(ray_executor(), RayExecutor)


def test_a_search_runs_its_trials_as_ray_tasks(local_ray, tmp_path):
    """``search --ray``: the same study, its cells measured in Ray workers and written by the driver."""
    pytest.importorskip("optuna")
    from bench.search import run_search

    path = tmp_path / "g.yaml"
    path.write_text(
        "name: s\nbackbones: [strided]\npresets: [tiny]\npruners: [none, cluster, uniform]\ntokens: [0.33]\n"
        "depths: [1, 2]\nmodes: [finetune]\nmeasure: [flops, accuracy]\n"
        "train: {steps: 1, eval_stride: 9, eval_every: 5, test_flip: false, threads: 1}\nbaseline: {steps: 1000}\n"
        f"data: {{source: synthetic, noise: none, frames_per_sequence: 150, cache_dir: {tmp_path / 'cache'}}}\n"
    )
    res = run_search(plan_grid(load_grid(path)), tmp_path / "out", 2, executor=RayExecutor(task=with_pid), seed=0)
    import pandas as pd

    rows = pd.concat(pd.read_json(f, lines=True) for f in (tmp_path / "out").glob("accuracy-*.jsonl"))
    assert len(res.trials) == 2 and set(res.trials["cell_id"]) <= set(rows["cell_id"])
    assert (rows["pid"] != os.getpid()).all()  # measured in Ray's workers, written here
