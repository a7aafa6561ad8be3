"""YAML grids: validation, expansion, one row per cell on disk before the next, resume, failure rows."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.grid import GridError, ResultStore, expand, load_grid, load_rows, local_executor, plan_grid, run_grid

GRID = """
name: t
backbones: [mixste, mhformer]
presets: [tiny]
pruners: [none, cluster, uniform]
recoverers: [default, interpolation]
tokens: [9]
depths: [1]
measure: [flops]
"""


@pytest.fixture
def grid_file(tmp_path):
    p = tmp_path / "g.yaml"
    p.write_text(GRID)
    return p


def test_expansion_counts_and_dedups_baselines(grid_file):
    cells = expand(load_grid(grid_file))
    # per backbone: 1 baseline + 2 pruners x 2 recoverers x 1 x 1
    assert len(cells) == 2 * (1 + 4)
    assert len({c.id for c in cells}) == len(cells)
    baselines = [c for c in cells if not c.model.pruned]
    assert [c.model.backbone for c in baselines] == ["mhformer", "mixste"]
    assert expand(load_grid(grid_file)) == cells  # stable


def test_every_row_is_on_disk_before_the_next_cell(grid_file, tmp_path):
    out = tmp_path / "r"
    seen = []

    def progress(row, i, n):
        seen.append(sum(len(f.read_text().splitlines()) for f in out.glob("flops-*.jsonl")))

    df = run_grid(plan_grid(load_grid(grid_file)), out, local_executor, progress=progress)
    assert seen == list(range(1, 9))
    assert len(df) == 8 and df["cell_id"].is_unique


def test_impossible_cells_are_skipped_with_their_reason(grid_file, tmp_path):
    plan = plan_grid(load_grid(grid_file))
    assert len(plan.skipped) == 2 and all("seq2frame" in r for _, r in plan.skipped)
    df = run_grid(plan, tmp_path / "r")
    good = df[df["error"].fillna("") == ""]
    assert len(df) == 8 and len(good) == 8 and good["gflops"].gt(0).all()
    mix = good[good.backbone == "mixste"].set_index("label")
    assert mix.loc["mixste/tiny", "gflops"] > mix.loc["mixste/tiny cluster(9@1)+attention", "gflops"]


def test_resume_runs_only_the_missing_cells(grid_file, tmp_path, counting):
    out = tmp_path / "r"
    run_grid(plan_grid(load_grid(grid_file)), out, limit=3)
    assert len(load_rows(out)) == 3
    df = run_grid(plan_grid(load_grid(grid_file)), out, counting)
    assert len(counting.ran) == 5 and len(df) == 8 and df["cell_id"].is_unique


def test_store_keeps_rows_when_columns_grow(tmp_path):
    ident = dict.fromkeys(("backbone", "preset", "pruner", "recoverer", "tokens", "depths", "seed", "label"))
    with ResultStore(tmp_path / "r", tag="x") as store:
        store.append("flops", {**ident, "cell_id": "a", "x": 1})
        store.append("flops", {**ident, "cell_id": "b", "x": 2, "y": 3})
        df = store.read()
    assert list(df["cell_id"]) == ["a", "b"] and df.loc[1, "y"] == 3 and pd.isna(df.loc[0, "y"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("backbones: [mixste]\nbogus: 1\n", "bogus: unknown option"),
        ("backbones: [nothing*]\n", "match nothing"),
        ("backbones: [mixste]\npruners: [clusterr]\n", "unknown pruner 'clusterr'"),
        ("backbones: [mixste]\nmeasure: [flops, vibes]\n", "measure: Input should be"),
        ("backbones: [mixste]\npresets: [huge]\n", "no preset 'huge'"),
        ("backbones: [mixste\n", "not valid YAML"),
        ("- just\n- a list\n", "mapping"),
        ("backbones: [mixste]\nschedules: [{tokens: 9}]\n", "schedules.depths: Field required"),
        ("backbones: [mixste]\ntrain: {stepz: 3}\n", "train.stepz: unknown option"),
        ("backbones: [mixste]\ndata: {source: synthetic, colour: red}\n", "data.colour: unknown option"),
        ("name: ../../x\nbackbones: [mixste]\n", "name: String should match"),
        ("backbones: [mixste]\ntrain: {steps: -5}\n", "train.steps"),
    ],
)
def test_malformed_grid_files_fail_in_one_line(tmp_path, text, message):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ValueError, match=message) as e:
        load_grid(p)
    assert "\n" not in str(e.value)


def test_shipped_grid_files_parse():

    from bench.grid import packaged_grids

    grids = packaged_grids()
    assert {"quick", "paper_flops", "hierarchical", "full"} <= set(grids)
    for path in grids.values():
        assert expand(load_grid(path)), path


def test_missing_grid_file():
    with pytest.raises(GridError, match="does not exist"):
        load_grid("/nonexistent/grid.yaml")


BY_BACKBONE = """
name: bb
backbones: [mixste, mhformer]
presets: [tiny]
pruners: [none, cluster]
recoverers: [attention]
tokens: [9]
depths: [1]
train: {steps: 5, batch_size: 2}
by_backbone:
  mixste:
    tokens: [9, 13]
    depths: [1, 2]
    schedules: [{tokens: [18, 9], depths: [1, 2]}]
    train: {steps: 7}
  mhformer:
    recoverers: [none]
    train: {batch_size: 3}
measure: [flops]
"""


def test_by_backbone_axes_and_budgets(tmp_path):
    p = tmp_path / "bb.yaml"
    p.write_text(BY_BACKBONE)
    cells = expand(load_grid(p))
    mix = [c for c in cells if c.model.backbone == "mixste" and c.model.pruned]
    mhf = [c for c in cells if c.model.backbone == "mhformer" and c.model.pruned]
    # mixste: its own 2 x 2 sweep plus its hierarchical schedule; its train.steps, the grid's batch size
    assert sorted(str((c.model.tokens, c.model.depths)) for c in mix) == sorted(
        str(x) for x in [((9,), (1,)), ((9,), (2,)), ((13,), (1,)), ((13,), (2,)), ((18, 9), (1, 2))]
    )
    assert {(c.train.steps, c.train.batch_size) for c in mix} == {(7, 2)}
    # mhformer: the grid's tokens x depths, its own recoverer and batch size
    assert [(c.model.tokens, c.model.effective_recoverer) for c in mhf] == [((9,), "none")]
    assert {(c.train.steps, c.train.batch_size) for c in mhf} == {(5, 3)}
    assert not plan_grid(load_grid(p)).skipped


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["by_backbone.strided.tokens=[9]"], "by_backbone.strided: not one of this grid's backbones"),
        (["by_backbone.mixste.train.steps=0"], "by_backbone.mixste.train.steps"),
        (["by_backbone.mixste.presets=[huge]"], "by_backbone.mixste.presets"),
        (["by_backbone.mhformer.recoverers=[warp]"], "by_backbone.mhformer.recoverers: unknown recoverer 'warp'"),
        (["by_backbone.mixste.colour=red"], "by_backbone.mixste.colour"),
    ],
)
def test_bad_by_backbone_values_name_their_key(tmp_path, sets, message):
    p = tmp_path / "bb.yaml"
    p.write_text(BY_BACKBONE)
    with pytest.raises(GridError, match=message) as e:
        load_grid(p, sets)
    assert "\n" not in str(e.value)


def test_h36m_grid_plans_without_data_and_refuses_to_run_before_any_cell(tmp_path):
    p = tmp_path / "h.yaml"
    p.write_text(
        GRID.replace("measure: [flops]", "measure: [flops, accuracy]\ndata: {source: h36m}\ntrain: {steps: 1}")
    )
    grid = load_grid(p)  # no data.data_root: planning (and so --dry-run) works
    assert plan_grid(grid).cells
    with pytest.raises(GridError, match=r"data\.data_root: needed for data.source=h36m"):
        run_grid(plan_grid(grid), tmp_path / "r", local_executor)
    with pytest.raises(GridError, match=r"data_3d_h36m.npz does not exist"):
        run_grid(plan_grid(load_grid(p, [f"data.data_root={tmp_path}"])), tmp_path / "r", local_executor)
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.jsonl"))
    df = run_grid(plan_grid(grid), tmp_path / "r", local_executor, only=["flops"], limit=1)  # FLOPs need no data
    assert len(df) == 1 and "gflops" in df


def test_seeds_share_one_flops_task(tmp_path, counting):
    p = tmp_path / "s.yaml"
    p.write_text(GRID.replace("presets: [tiny]", "presets: [tiny]\nseeds: [0, 1, 2]"))
    models = len(plan_grid(load_grid(p)).cells) // 3
    df = run_grid(plan_grid(load_grid(p)), tmp_path / "r", counting)
    assert (
        models == 8 and len(df) == 3 * models and len(counting.ran) == models
    )  # one FLOPs count per model, not per seed
    assert df.groupby(["label"])["gflops"].nunique().eq(1).all() and sorted(set(df["seed"])) == [0, 1, 2]


@pytest.mark.slow
def test_full_grid_dry_run_prints_cells_hours_and_assumptions(capsys, tmp_path):
    from bench.cli import main

    assert main(["run", "full", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2172 cells, 0 skipped" in out and "data.data_root is not set" in out
    for measure in ("flops", "speed", "accuracy"):
        line = next(x for x in out.splitlines() if x.strip().startswith(measure) and "CPU-hours" in x)
        assert float(line.split()[3]) > 0  # GPU-hours
    assert "mixste 256800 steps x batch 4" in out and "12 shared baseline trainings" in out
    assert not (tmp_path / "full").exists()  # a dry run writes nothing


def test_estimate_counts_each_shared_baseline_once_at_its_own_budget(tmp_path, monkeypatch):
    from bench.grid import estimate as est_mod

    monkeypatch.setattr(est_mod, "calibrate_cpu", lambda *a, **k: 1.0)  # 1 GFLOP/s: hours follow the FLOPs
    monkeypatch.setattr(est_mod, "calibrate_step", lambda *a, **k: 1.0)  # a tiny net's own step rate, the same
    text = """
name: e
backbones: [strided]
presets: [tiny]
pruners: [none, cluster, uniform]
tokens: [9]
depths: [1]
modes: [finetune]
measure: [accuracy]
train: {steps: 2, batch_size: 4}
baseline: {steps: STEPS}
data: {source: synthetic}
"""
    hours = {}
    for steps in (10, 1010):
        p = tmp_path / f"g{steps}.yaml"
        p.write_text(text.replace("STEPS", str(steps)))
        e = est_mod.estimate(plan_grid(load_grid(p)))
        hours[steps] = e.hours["accuracy"]
        assert "1 shared baseline trainings counted" in " ".join(e.notes)
    # one baseline of 1000 more steps: 1000 x batch 4 x 3 x its GFLOPs at 1 GFLOP/s, on the CPU and the GPU alike
    gf = next(iter(e.gflops.values()))  # the unpruned row's GFLOPs (the first cell is the baseline row)
    assert hours[1010]["cpu"] - hours[10]["cpu"] == pytest.approx(1000 * 4 * 3 * gf / 3600, rel=1e-6)
    assert hours[1010]["gpu"] > hours[10]["gpu"]


MODE_PLANS = """
name: m
backbones: [mixste]
presets: [tiny]
pruners: [none, cluster, uniform]
tokens: [3, 9, 18]
depths: [1, 2]
modes:
  - finetune: {pruners: [cluster]}
  - finetune: {pruners: [uniform], tokens: [9], depths: [1]}
  - finetune: {pruners: [cluster], schedules: [{tokens: [18, 9], depths: [1, 2]}]}
  - none: {pruners: [cluster], recoverers: [interpolation], depths: [1]}
measure: [flops]
"""


def _points(cells, pruner, mode, recoverer=None):
    return sorted(
        (c.model.tokens, c.model.depths)
        for c in cells
        if c.model.pruner == pruner
        and c.train.mode == mode
        and (recoverer is None or c.model.effective_recoverer == recoverer)
    )


def test_a_mode_entry_may_carry_its_own_token_plan(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(MODE_PLANS)
    cells = expand(load_grid(p))
    sweep = sorted(((n,), (k,)) for n in (3, 9, 18) for k in (1, 2))
    # cluster: the grid's 3 x 2 sweep, plus the entry that names only a schedule (schedule alone, no sweep)
    assert _points(cells, "cluster", "finetune") == sorted([*sweep, ((18, 9), (1, 2))])
    assert _points(cells, "uniform", "finetune") == [((9,), (1,))]  # one point, not the sweep
    # an entry naming depths only keeps the grid's tokens
    assert _points(cells, "cluster", "none") == [((3,), (1,)), ((9,), (1,)), ((18,), (1,))]
    assert len([c for c in cells if not c.model.pruned]) == 1


def test_a_mode_entry_with_a_bad_schedule_is_one_line(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(MODE_PLANS.replace("schedules: [{tokens: [18, 9], depths: [1, 2]}]", "schedules: [{tokens: [18]}]"))
    with pytest.raises(GridError, match=r"modes: finetune\.schedules\.depths: Field required"):
        load_grid(p)


def test_quick_grid_is_a_small_ablation_with_a_front_per_backbone():
    """3 token counts x 2 depths of the cluster pruner per backbone, the other pruners at HoT's point,
    and for each seq2seq backbone a hierarchical (H2OT) schedule and training-free interpolation rows."""
    from bench.grid import grid_source

    plan = plan_grid(load_grid(grid_source("quick")))
    assert not plan.skipped
    cells = plan.cells
    for backbone in ("mixste", "motionbert", "mhformer", "strided"):
        mine = [c for c in cells if c.model.backbone == backbone]
        one_shot = [p for p in _points(mine, "cluster", "finetune") if len(p[0]) == 1]
        tokens, depths = {p[0] for p in one_shot}, {p[1] for p in one_shot}
        assert len(tokens) >= 3 and len(depths) >= 2 and len(one_shot) == len(tokens) * len(depths), backbone
        for pruner in ("uniform", "attention", "motion"):
            assert ((0.33,), (1,)) in _points(mine, pruner, "finetune"), (backbone, pruner)
        hierarchical = [p for p in _points(mine, "cluster", "finetune") if len(p[0]) >= 2]
        free = _points(mine, "cluster", "none", "interpolation")
        if backbone in ("mixste", "motionbert"):
            assert hierarchical, backbone
            assert set(one_shot) <= set(free), backbone  # training-free interpolation at every cluster point
        else:
            assert not free


def test_estimate_times_a_small_model_at_its_own_training_step_rate(tmp_path, monkeypatch):
    """Tiny nets are overhead-bound: their CPU hours follow their own timed training steps, not the matmul rate."""
    from bench.grid import estimate as est_mod

    monkeypatch.setattr(est_mod, "calibrate_cpu", lambda *a, **k: 100.0)
    asked: list[tuple[str, int, int | None]] = []

    def step_rate(cfg, batch, threads, steps=3):  # type: ignore[no-untyped-def]
        asked.append((cfg.label(), batch, threads))
        return 4.0

    monkeypatch.setattr(est_mod, "calibrate_step", step_rate)
    p = tmp_path / "g.yaml"
    p.write_text(
        "name: e\nbackbones: [strided]\npresets: [tiny]\npruners: [none]\nmeasure: [accuracy]\n"
        "train: {steps: 100, batch_size: 8, threads: 1}\ndata: {source: synthetic}\n"
    )
    e = est_mod.estimate(plan_grid(load_grid(p)))
    assert asked == [("strided/tiny", 8, 1)]  # the cell's own batch and threads
    gf = next(iter(e.gflops.values()))
    assert e.hours["accuracy"]["cpu"] == pytest.approx(1.1 * 100 * 8 * 3 * gf / 4.0 / 3600)  # train + 10% eval
    assert any("strided/tiny 4.0" in n for n in e.notes)
