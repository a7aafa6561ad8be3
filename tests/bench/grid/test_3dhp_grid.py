"""The MPI-INF-3DHP path through a grid and the CLI: PCK / AUC / per-sequence rows, tables, one-line errors."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.grid import load_grid, plan_grid, run_grid
from bench.results import load

GRID = """name: t3dhp
backbones: [strided]
presets: [tiny]
pruners: [none, cluster]
tokens: [9]
depths: [1]
modes: [finetune]
measure: [flops, accuracy]
train: {steps: 2, batch_size: 4, eval_stride: 1, test_flip: true, threads: 1}
baseline: {steps: 150}
data: {source: synthetic_3dhp, noise: none, frames_per_sequence: 60, cache_dir: "CACHE"}
"""


def test_a_3dhp_grid_rows_carry_pck_auc_and_every_sequence(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(GRID.replace("CACHE", str(tmp_path / "cache")))
    df = run_grid(plan_grid(load_grid(path)), tmp_path / "res", fsync=False)
    assert len(df) == 2 and not df["error"].astype(str).str.len().any()
    assert df["pck"].between(1, 100).all() and df["auc"].between(0, 100).all() and (df["auc"] < df["pck"]).all()
    assert set(df["aggregation"]) == {"pooled"}
    per = json.loads(df["per_sequence"].iloc[0])
    assert list(per) == ["TS1", "TS2", "TS3", "TS4", "TS5", "TS6"] and all(0 < v["frames"] < 60 for v in per.values())
    typed = load(tmp_path / "res")  # the typed reader keeps the JSON text as text
    assert typed["per_sequence"].map(type).eq(str).all() and typed["pck"].dtype == float


def test_3dhp_on_the_command_line(tmp_path, capsys):
    argv = ["train", "-b", "strided", "-p", "tiny", "--data", "synthetic_3dhp", "--noise", "none", "--steps", "2"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--format", "json", "--aggregation", "sequence_mean"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["aggregation"] == "sequence_mean" and set(out["per_sequence"]) == {f"TS{i}" for i in range(1, 7)}
    assert out["mpjpe_mm"] == pytest.approx(sum(v["mpjpe_mm"] for v in out["per_sequence"].values()) / 6)
    for bad, message in [
        (["--data", "3dhp"], "--data 3dhp needs --data-root DIR"),
        (["--data", "3dhp", "--data-root", str(tmp_path / "none")], "data_train_3dhp.npz: file not found"),
        (["--data", "synthetic_3dhp", "--data-root", str(tmp_path)], "--data-root names real files"),
    ]:
        assert main(["train", "-b", "strided", "-p", "tiny", "--steps", "1", *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
