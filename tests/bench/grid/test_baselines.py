"""The ablation protocol in the grid: one shared baseline per (backbone, preset, data, seed, budget),
fine-tuned and training-free cells started from it, resume after a kill, determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import bench.grid.baselines as gb
import bench.training.loop as loop
from bench.cli import main
from bench.grid import GridError, LocalExecutor, expand, load_grid, plan_grid, process_executor, run_grid
from bench.grid.baselines import BaselineCache, prepare_baselines

REPO = Path(__file__).resolve().parents[3]


def grid_text(cache: Path, baseline_steps: int = 4, checkpoint_every: int = 200, modes: str = "[finetune]") -> str:
    return f"""
name: t
backbones: [strided]
presets: [tiny]
pruners: [none, cluster, uniform]
tokens: [9]
depths: [1]
modes: {modes}
measure: [accuracy]
train: {{steps: 2, batch_size: 4, eval_stride: 1000, test_flip: false, threads: 1}}
baseline: {{steps: {baseline_steps}, checkpoint_every: {checkpoint_every}}}
data: {{source: synthetic, frames_per_sequence: 40, cache_dir: "{cache}"}}
"""


@pytest.fixture(scope="module")
def once(tmp_path_factory):
    """Run a grid with two fine-tuned pruned cells, rerun it, rerun it without its results file."""
    tmp = tmp_path_factory.mktemp("once")
    path = tmp / "g.yaml"
    path.write_text(grid_text(tmp / "cache"))
    calls: list[str] = []
    loaded: list[tuple[str, dict[str, torch.Tensor]]] = []
    real_train, real_load = gb.train_shared, loop.load_weights

    def counting(baseline, work_dir=None):
        calls.append(baseline.key)
        return real_train(baseline, work_dir)

    def recording(model, cfg, path):
        model = real_load(model, cfg, path)
        loaded.append((cfg.label(), {k: v.clone() for k, v in model.state_dict().items()}))
        return model

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gb, "train_shared", counting)
        mp.setattr(loop, "load_weights", recording)
        out = tmp / "res"
        df = run_grid(plan_grid(load_grid(path)), out)
        ckpt = next((out / "baselines").glob("*/model.pt"))
        mtime = ckpt.stat().st_mtime_ns
        run_grid(plan_grid(load_grid(path)), out)  # everything done: nothing runs
        for f in out.glob("*.jsonl"):  # the results go; the cached baseline stays
            f.unlink()
        df2 = run_grid(plan_grid(load_grid(path)), out)  # every cell again, the baseline from the cache
    return {"df": df, "df2": df2, "calls": calls, "loaded": loaded, "ckpt": ckpt, "mtime": mtime, "path": path}


def test_two_pruned_cells_share_one_baseline_trained_once(once):
    df = once["df"]
    assert once["calls"] == [df["baseline_key"].iloc[0]]  # once, across both reruns
    assert once["ckpt"].stat().st_mtime_ns == once["mtime"]
    assert len(df) == 3 and (df["error"].isna() | (df["error"].astype(str) == "")).all()
    assert df["baseline_key"].nunique() == 1 and len(df["baseline_key"].iloc[0]) == 12
    modes = dict(zip(df["pruner"], df["train_mode"], strict=True))
    assert modes == {"none": "none", "cluster": "finetune", "uniform": "finetune"}
    assert df["mpjpe_mm"].gt(0).all() and df["train_steps"].tolist() == [0, 2, 2]
    assert once["ckpt"].parent.name == df["baseline_key"].iloc[0]


def test_finetuned_cell_starts_from_the_baseline_weights(once):
    base = BaselineCache(once["ckpt"].parent.parent).load(once["ckpt"].parent.name)
    assert base is not None
    finetuned = [(label, sd) for label, sd in once["loaded"] if "cluster" in label]
    assert finetuned
    for _, sd in finetuned:
        assert set(base) <= set(sd)
        for k, v in base.items():
            assert torch.equal(sd[k], v), k


def test_same_grid_and_seed_give_identical_mpjpe(once, tmp_path):
    again = run_grid(plan_grid(load_grid(once["path"])), tmp_path / "again")
    a = once["df"].set_index("cell_id")["mpjpe_mm"]
    b = again.set_index("cell_id")["mpjpe_mm"].loc[a.index]
    assert (a.to_numpy() == b.to_numpy()).all()
    assert (once["df2"].set_index("cell_id")["mpjpe_mm"].loc[a.index].to_numpy() == a.to_numpy()).all()


def test_training_free_cell_with_parameters_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "g.yaml"
    path.write_text(grid_text(tmp_path, modes="[none]").replace("[strided]", "[mixste]"))
    with pytest.raises(GridError, match="parameter-free"):
        plan_grid(load_grid(path))
    assert main(["run", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "adds" in err[0]
    ok = grid_text(tmp_path, modes="[{none: {recoverers: [interpolation]}}]").replace("[strided]", "[mixste]")
    path.write_text(ok)
    cells = expand(load_grid(path))
    assert [c.model.effective_recoverer for c in cells if c.model.pruned] == ["interpolation"] * 2


@pytest.mark.parametrize("key", ["minutes: 1", "warmup_steps: 4"])
def test_grid_cells_need_a_step_budget(tmp_path, key):
    path = tmp_path / "g.yaml"
    path.write_text(grid_text(tmp_path).replace("steps: 2, ", key + ", "))
    with pytest.raises(GridError, match="steps"):
        load_grid(path)


@pytest.mark.slow
def test_killed_baseline_resumes_instead_of_restarting(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(grid_text(tmp_path / "cache", baseline_steps=40, checkpoint_every=4))
    out = tmp_path / "res"
    code = "from bench.grid import load_grid, plan_grid, run_grid\n"
    code += f"run_grid(plan_grid(load_grid({str(path)!r})), {str(out)!r})"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env)
    state, step = None, 0
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            found = list((out / "baselines").glob("*/train_state.pt"))
            if found:
                state = found[0]
                time.sleep(0.2)  # the file is replaced atomically; read what is there
                step = int(torch.load(state, weights_only=True)["step"])
                if step >= 4:
                    break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert state is not None and 4 <= step < 40, "the baseline finished before it could be killed"
    assert not (state.parent / "model.pt").exists()
    step = int(torch.load(state, weights_only=True)["step"])
    df = run_grid(plan_grid(load_grid(path)), out)
    info = json.loads((state.parent / "baseline.json").read_text())
    assert info["resumed_from"] == step and info["steps"] == 40
    assert (state.parent / "model.pt").is_file() and len(df) == 3


def test_by_backbone_gives_each_backbone_its_own_baseline_budget(tmp_path):
    path = tmp_path / "g.yaml"
    text = grid_text(tmp_path / "cache").replace("[strided]", "[strided, mhformer]")
    path.write_text(text + "by_backbone:\n  strided: {baseline: {steps: 7}}\n")
    cells = [c for c in expand(load_grid(path)) if c.baseline]
    steps = {c.model.backbone: c.baseline.train.steps for c in cells}
    assert steps == {"strided": 7, "mhformer": 4}  # the grid's baseline.steps (4) where nothing overrides it
    keys = {c.model.backbone: c.baseline_key for c in cells}
    assert keys["strided"] != keys["mhformer"]
    path.write_text(text + "by_backbone:\n  strided: {baseline: {steps: -1}}\n")
    with pytest.raises(GridError, match=r"by_backbone\.strided\.baseline\.steps"):
        expand(load_grid(path))


def test_every_measure_row_names_the_cells_baseline(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(grid_text(tmp_path / "cache").replace("measure: [accuracy]", "measure: [flops, accuracy]"))
    df = run_grid(plan_grid(load_grid(path)), tmp_path / "res")
    assert len(df) == 3 and df["gflops"].gt(0).all() and df["mpjpe_mm"].gt(0).all()
    # the merged row keeps the key although the FLOPs task never waited for the baseline
    assert (df["baseline_key"].astype(str).str.len() == 12).all() and df["baseline_key"].nunique() == 1


def test_the_executors_map_trains_the_baselines(tmp_path):
    """A process pool trains a grid's baselines ``workers`` at a time: run_grid hands them to its ``map``."""
    path = tmp_path / "g.yaml"
    path.write_text(grid_text(tmp_path / "cache").replace("[strided]", "[strided, mhformer]"))
    mapped: list[list[str]] = []

    class Recording(LocalExecutor):
        def run(self, tasks, baselines, note=None):
            return (self.task(t) for t in prepare_baselines(tasks, baselines, self.map, note))

        def map(self, fn, baselines, dirs):
            baselines = list(baselines)
            mapped.append([b.key for b in baselines])
            return [fn(b, w) for b, w in zip(baselines, dirs, strict=True)]

    df = run_grid(plan_grid(load_grid(path)), tmp_path / "res", executor=Recording())
    assert len(mapped) == 1 and sorted(mapped[0]) == sorted(df["baseline_key"].unique())
    assert len(mapped[0]) == 2 and df["mpjpe_mm"].gt(0).all()


def _pid(x: int) -> tuple[int, int]:
    return x, os.getpid()


def test_process_executor_map_runs_in_its_workers_in_order():
    out = list(process_executor(2).map(_pid, [3, 1, 2]))
    assert [x for x, _ in out] == [3, 1, 2]
    assert all(pid != os.getpid() for _, pid in out)


def test_each_seeds_row_names_its_own_baseline(tmp_path):
    """The seeds of a cell share one FLOPs record, copied per seed; each copy must keep its seed's baseline."""
    path = tmp_path / "g.yaml"
    text = grid_text(tmp_path / "cache").replace("measure: [accuracy]", "measure: [flops, accuracy]")
    path.write_text(text.replace("pruners: [none, cluster, uniform]", "pruners: [none, cluster]\nseeds: [0, 1]"))
    df = run_grid(plan_grid(load_grid(path)), tmp_path / "res")
    keys = {c.seed: c.baseline_key for c in expand(load_grid(path)) if c.baseline}
    assert len(set(keys.values())) == 2  # each seed trains its own baseline
    assert len(df) == 4 and df.apply(lambda r: r["baseline_key"] == keys[r["seed"]], axis=1).all()
    for f in (tmp_path / "res").glob("flops-*.jsonl"):  # the stored copies too, not only the merged view
        recs = [json.loads(line) for line in f.read_text().splitlines()]
        assert {(r["seed"], r["baseline_key"]) for r in recs} == set(keys.items())


@pytest.mark.parametrize("poison", ["text", "nan", "bool"])
def test_a_cached_baseline_that_cannot_load_is_moved_aside_and_trained_again(tmp_path, poison):
    import torch

    path = tmp_path / "g.yaml"
    path.write_text(grid_text(tmp_path / "cache"))
    plan = plan_grid(load_grid(path))
    out = tmp_path / "res"
    run_grid(plan, out)
    (ckpt,) = (out / "baselines").glob("*/model.pt")
    sd = torch.load(ckpt, weights_only=True)
    if poison == "text":
        ckpt.write_text("not a checkpoint")
    else:
        k = next(k for k, v in sd.items() if v.is_floating_point())
        sd[k] = sd[k].fill_(float("nan")) if poison == "nan" else sd[k].bool()
        torch.save(sd, ckpt)
    for f in out.glob("accuracy-*.jsonl"):
        f.unlink()  # the cells run again from the cached baseline
    notes: list[str] = []
    df = run_grid(plan, out, note=notes.append)
    assert any("cached weights cannot be used" in n for n in notes), notes
    assert ckpt.with_name("model.pt.rejected").is_file() and ckpt.is_file()  # kept aside; a new one trained
    assert not df["error"].astype(bool).any() and df["mpjpe_mm"].notna().all()
