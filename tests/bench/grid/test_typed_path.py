"""The grid path is typed end to end: after expansion nothing parses a cell again."""

from __future__ import annotations

from bench.config import DataConfig, ModelConfig, SpeedConfig, TrainConfig
from bench.grid import load_grid, plan_grid, run_grid

GRID = """name: typed
backbones: [strided, mixste]
presets: [tiny]
pruners: [none, cluster]
recoverers: [default]
tokens: [9]
depths: [1]
seeds: [0, 1]
modes: [finetune, {none: {backbones: [mixste], recoverers: [interpolation]}}]
measure: [flops, speed, accuracy]
speed: {warmup: 0, iters: 1, threads: 1, throughput_batch: 1}
train: {steps: 1, batch_size: 2, eval_stride: 1000, test_flip: false, threads: 1}
baseline: {steps: 1}
data: {source: synthetic, frames_per_sequence: 30, cache_dir: "CACHE"}
"""


def test_no_cell_is_parsed_again_after_expansion(tmp_path, monkeypatch):
    path = tmp_path / "g.yaml"
    path.write_text(GRID.replace("CACHE", str(tmp_path / "cache")))
    plan = plan_grid(load_grid(path))
    parsed: list[str] = []

    def refuse(name):
        def parse(*args, **kwargs):
            parsed.append(name)
            raise AssertionError(f"{name} called after expansion")

        return classmethod(parse)

    for cls in (ModelConfig, TrainConfig, DataConfig, SpeedConfig):
        monkeypatch.setattr(cls, "model_validate", refuse(f"{cls.__name__}.model_validate"))
    monkeypatch.setattr(ModelConfig, "from_dict", refuse("ModelConfig.from_dict"))
    df = run_grid(plan, tmp_path / "res", fsync=False)
    assert parsed == []
    assert len(df) == len(plan.cells) == 2 * (3 + 2)  # 2 seeds x (mixste: baseline, finetune, none; strided: 2)
    assert not df["error"].astype(str).str.len().any(), df["error"].tolist()
    assert df["gflops"].gt(0).all() and df["fps"].gt(0).all() and df["mpjpe_mm"].gt(0).all()


def test_every_row_of_a_grid_has_the_same_identity_columns(tmp_path, monkeypatch):
    """Result rows and error rows of one grid (here the FLOPs count fails for the pruned cells) carry the same
    identity columns, in the store's records as in the merged rows."""
    import json

    import bench.measure.flops as flops
    from bench.grid.cell import Task, identity_row

    real = flops.count_flops

    def fail_pruned(cfg, **kw):
        if cfg.pruned:
            raise RuntimeError("no count for you")
        return real(cfg, **kw)

    monkeypatch.setattr(flops, "count_flops", fail_pruned)
    path = tmp_path / "g.yaml"
    path.write_text(GRID.replace("CACHE", str(tmp_path / "cache")))
    plan = plan_grid(load_grid(path, ["measure=[flops]"]))
    df = run_grid(plan, tmp_path / "res", fsync=False)
    errors = df["error"].astype(str).str.len() > 0
    assert errors.sum() == 6 and (~errors).sum() == 4  # 2 seeds x (3 pruned, 2 baselines)
    identity = set(identity_row(Task(plan.cells[0], "flops")))
    (records,) = [f.read_text().splitlines() for f in (tmp_path / "res").glob("flops-*.jsonl")]
    keys = [identity & set(json.loads(line)) for line in records]
    assert len(keys) == 10 and all(k == identity for k in keys)
