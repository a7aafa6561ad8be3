"""`run_bench.py report` on a results folder writes the same files as the end of `run`."""

from __future__ import annotations

import pytest

from bench.cli import main

GRID = """name: tiny_flops
backbones: [mixste]
presets: [tiny]
pruners: [none, cluster]
tokens: [3, 9]
depths: [1, 2]
measure: [flops]
"""


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_report_rewrites_the_run_files_byte_for_byte(tmp_path, capsys):
    grid = tmp_path / "tiny_flops.yaml"
    grid.write_text(GRID)
    out = tmp_path / "res" / "tiny_flops"
    assert main(["run", str(grid), "--out", str(tmp_path / "res")]) == 0
    printed = capsys.readouterr().out
    first = {k: v for k, v in _snapshot(out).items() if k.startswith(("tables/", "plots/"))}
    assert {"tables/hot.md", "tables/hot.tex", "tables/hot.csv", "tables/ablation.md"} <= set(first)
    assert {"plots/heatmap_gflops_mixste-tiny.png", "plots/heatmap_gflops_mixste-tiny.pdf"} <= set(first)
    assert not any(k.startswith("plots/mpjpe_vs") for k in first)  # no MPJPE in a FLOPs-only grid
    assert "FLOPs (G)" in printed and "notebook:" in printed and "table: " in printed
    for sub in ("tables", "plots"):
        for p in (out / sub).iterdir():
            p.unlink()
    assert main(["report", str(out)]) == 0
    assert {k: v for k, v in _snapshot(out).items() if k.startswith(("tables/", "plots/"))} == first


def test_report_on_a_missing_folder_is_one_error_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no results folder") and err.count("\n") == 1
