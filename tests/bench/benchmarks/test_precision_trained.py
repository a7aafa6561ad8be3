"""`run_bench.py precision --results DIR`: a grid's trained baselines in fp32 and bf16, latency and MPJPE."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.cli import main
from bench.grid import load_grid, plan_grid, run_grid

GRID = """
name: prec
backbones: [strided, mhformer]
presets: [tiny]
pruners: [none, cluster]
tokens: [9]
depths: [1]
modes: [finetune]
measure: [accuracy]
train: {{steps: 1, batch_size: 4, eval_stride: 20, eval_every: 4, test_flip: false, threads: 1}}
baseline: {{steps: 3}}
data: {{source: synthetic, frames_per_sequence: 40, cache_dir: "{cache}"}}
"""
FAST = ["--warmup", "0", "--iters", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[Path, dict[str, float]]:
    """A grid folder with two tiny trained baselines; the MPJPE its baseline rows recorded, by backbone."""
    tmp = tmp_path_factory.mktemp("prec")
    (tmp / "g.yaml").write_text(GRID.format(cache=tmp / "cache"))
    df = run_grid(plan_grid(load_grid(tmp / "g.yaml")), tmp / "res")
    base = df[df["pruner"] == "none"]
    return tmp / "res", dict(zip(base["backbone"], base["mpjpe_mm"].astype(float), strict=True))


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["precision", *argv, *FAST, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_one_row_per_trained_baseline_with_fp32_mpjpe_as_the_grid_scored_it(results, capsys, monkeypatch):
    import bench.benchmarks.precision as prec

    monkeypatch.setattr(prec, "MEAN_POSE_LIMIT", 10.0)  # 3-step baselines: let their numbers through
    folder, grid_mpjpe = results
    rows = _json(["--results", str(folder)], capsys)
    assert sorted(r["backbone"] for r in rows) == ["mhformer", "strided"]
    for r in rows:
        for key in ("ratio", "rel_change", "mpjpe_fp32_mm", "mpjpe_low_mm", "mpjpe_change_mm", "trivial_mpjpe_mm"):
            assert isinstance(r[key], float) and math.isfinite(r[key]), (key, r[key])
        assert r["preset"] == "tiny" and r["precision"] == "bf16" and r["error"] is None
        assert r["mpjpe_fp32_mm"] == pytest.approx(grid_mpjpe[r["backbone"]], abs=1e-6)  # same data, same scoring
        assert r["mpjpe_change_mm"] == pytest.approx(r["mpjpe_low_mm"] - r["mpjpe_fp32_mm"])
        assert abs(r["mpjpe_change_mm"]) < 0.05 * r["mpjpe_fp32_mm"]
        assert r["eval"] == {"test_flip": False, "eval_stride": 20, "eval_batch": 64, "eval_every": 4}
        assert Path(r["checkpoint"]).parent.name == r["baseline_key"]


def test_a_baseline_at_the_mean_pose_gets_a_note_not_an_mpjpe(results, capsys):
    folder, grid_mpjpe = results  # 3 training steps: both baselines are still at the mean pose
    rows = _json(["--results", str(folder)], capsys)
    for r in rows:
        assert grid_mpjpe[r["backbone"]] > 0.5 * r["trivial_mpjpe_mm"]
        assert r["mpjpe_fp32_mm"] is None and r["mpjpe_low_mm"] is None and r["mpjpe_change_mm"] is None
        assert r["accuracy_note"].startswith("not off the mean pose: ")
        assert isinstance(r["ratio"], float)  # the latency ratio is still a result
    assert main(["precision", "--results", str(folder), "-b", "strided", *FAST]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("strided/tiny"))
    assert "–" in line and "not off the mean pose" in line


def test_backbone_filter_and_text_table(results, capsys):
    folder, _ = results
    assert main(["precision", "--results", str(folder), "-b", "strided", *FAST]) == 0
    out = capsys.readouterr().out
    assert "ΔMPJPE (mm)" in out and "strided/tiny" in out and "mhformer" not in out
    assert "each trained baseline's checkpoint on its grid's data" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["-b", "mixste"], "no trained baseline of mixste"),
        (["-p", "tiny"], "--preset names untrained models"),
        (["--precision", "fp16"], "fp16 runs on CUDA only"),
    ],
)
def test_results_mistakes_are_one_line(results, argv, fragment, capsys):
    folder, _ = results
    assert main(["precision", "--results", str(folder), *argv, *FAST]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


def test_a_folder_without_baselines_is_one_line(tmp_path, capsys):
    assert main(["precision", "--results", str(tmp_path / "nope"), *FAST]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["precision", "--results", str(tmp_path), *FAST]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "no baselines/ folder" in err[0]
    (tmp_path / "baselines" / "k").mkdir(parents=True)
    (tmp_path / "baselines" / "k" / "model.pt").write_bytes(b"")
    (tmp_path / "baselines" / "k" / "baseline_desc.json").write_text("{not json")
    assert main(["precision", "--results", str(tmp_path), *FAST]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "not a baseline description" in err[0]
