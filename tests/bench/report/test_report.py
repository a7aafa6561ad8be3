from __future__ import annotations

import pandas as pd

from bench.report import pareto_front, plot_pareto, summary_table


def _df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "backbone": ["a", "a", "a", "b"],
            "preset": ["tiny"] * 4,
            "pruner": ["none", "cluster", "uniform", "none"],
            "label": ["a", "a c", "a u", "b"],
            "params": [1e6, 1e6, 1e6, 2e6],
            "gflops": [0.0712, 0.037, 0.037, 0.5],
            "mpjpe_mm": [50.0, 55.0, 60.0, 40.0],
            "error": ["", "", "", ""],
        }
    )


def test_pareto_front_keeps_only_undominated_rows():
    df = _df()
    assert pareto_front(df, "gflops", "mpjpe_mm").tolist() == [True, True, False, True]


def test_summary_table_keeps_small_flops_visible_and_drops_empty_errors():
    text = summary_table(_df())
    assert "0.0712" in text and "0.037" in text
    assert "error" not in text and "params (M)" in text


def test_pareto_plot_is_written(tmp_path):
    out = plot_pareto(_df(), tmp_path / "p.png")
    assert out is not None and out.stat().st_size > 5000
    assert plot_pareto(_df().drop(columns="mpjpe_mm"), tmp_path / "q.png") is None
