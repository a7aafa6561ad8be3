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
    assert len({c["cell_id"] for c in cells}) == len(cells)
    baselines = [c for c in cells if c["model"]["pruner"] == "none"]
    assert [c["model"]["backbone"] for c in baselines] == ["mhformer", "mixste"]
    assert expand(load_grid(grid_file)) == cells  # stable


def test_every_row_is_on_disk_before_the_next_cell(grid_file, tmp_path):
    out = tmp_path / "r"
    seen = []

    def progress(row, i, n):
        seen.append(sum(len(f.read_text().splitlines()) for f in out.glob("flops-*.jsonl")))

    df = run_grid(load_grid(grid_file), out, local_executor, progress=progress)
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


def test_resume_runs_only_the_missing_cells(grid_file, tmp_path):
    out = tmp_path / "r"
    run_grid(load_grid(grid_file), out, limit=3)
    assert len(load_rows(out)) == 3
    ran = []

    def counting(cells):
        ran.extend(c["cell_id"] for c in cells)
        return local_executor(cells)

    df = run_grid(load_grid(grid_file), out, counting)
    assert len(ran) == 5 and len(df) == 8 and df["cell_id"].is_unique


def test_store_keeps_rows_when_columns_grow(tmp_path):
    with ResultStore(tmp_path / "r", tag="x") as store:
        store.append("flops", {"cell_id": "a", "x": 1})
        store.append("flops", {"cell_id": "b", "x": 2, "y": 3})
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
    assert {"quick", "paper_flops", "hierarchical"} <= set(grids)
    for path in grids.values():
        assert expand(load_grid(path)), path


def test_missing_grid_file():
    with pytest.raises(GridError, match="does not exist"):
        load_grid("/nonexistent/grid.yaml")
