"""Rows timed at two speed precisions: separate series, fronts and baselines; tables show the precision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.report.frame import aggregate_seeds
from bench.report.pareto import hypervolume_table, pareto_mask
from bench.report.plots import speedup_figure, tradeoff_figure
from bench.report.tables import hot_table, render, summary_table

from .conftest import synthetic_results

BF16_SPEED = 0.7  # bf16 rows are slower here (emulated bf16 on a CPU without native support)


def _two_precisions() -> pd.DataFrame:
    fp32 = synthetic_results(seeds=(0,)).assign(precision="fp32")
    bf16 = fp32.assign(precision="bf16", fps=fp32["fps"] * BF16_SPEED, cell_id=fp32["cell_id"] + "-bf16")
    bf16.loc[bf16["pruner"] == "uniform", "fps"] *= 2.0  # uniform wins at bf16 only: the fronts differ
    return pd.concat([fp32, bf16], ignore_index=True)


def _legend(fig) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def _fronts(ax) -> dict[str, np.ndarray]:
    return {ln.get_label(): np.asarray(ln.get_xdata(), float) for ln in ax.get_lines() if "Pareto" in ln.get_label()}


def test_seeds_are_averaged_per_precision_never_across() -> None:
    df = _two_precisions()
    agg = aggregate_seeds(df)
    assert len(agg) == 2 * len(aggregate_seeds(df[df["precision"] == "fp32"]))
    assert set(agg["precision"]) == {"fp32", "bf16"}


@pytest.mark.parametrize("cost", ["fps", "gflops"])
def test_tradeoff_has_one_front_and_marker_per_precision(cost: str) -> None:
    df = _two_precisions()
    fig = tradeoff_figure(df, "mixste/tiny", cost)
    ax = fig.axes[0]
    fronts = _fronts(ax)
    assert set(fronts) == {"Pareto front (bf16)", "Pareto front (fp32)"}
    agg = aggregate_seeds(df)
    agg = agg[agg["group"] == "mixste/tiny"]
    for prec in ("fp32", "bf16"):
        rows = agg[agg["precision"] == prec]
        expected = np.sort(rows[pareto_mask(rows, [cost, "mpjpe_mm"])][cost].to_numpy(float))
        assert np.allclose(np.sort(fronts[f"Pareto front ({prec})"]), expected), prec
    legend = set(_legend(fig))
    assert {"precision: bf16", "precision: fp32", "baseline (bf16)", "baseline (fp32)"} <= legend
    assert {"Pareto front (bf16)", "Pareto front (fp32)"} <= legend and "Pareto front" not in legend
    if cost == "fps":
        bf16, fp32 = fronts["Pareto front (bf16)"], fronts["Pareto front (fp32)"]
        assert len(bf16) != len(fp32) or not np.allclose(np.sort(bf16), np.sort(fp32))  # fronts of their own
        assert "precision per marker" in ax.get_xlabel() and "cpu" in ax.get_title()


def test_one_precision_is_named_on_the_throughput_axis_and_title() -> None:
    df = synthetic_results(seeds=(0,)).assign(precision="fp32")
    fig = tradeoff_figure(df, "mixste/tiny", "fps")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Throughput (output frames/s, batch 1, 1 thread, fp32)"
    assert ax.get_title() == "mixste/tiny (cpu)"
    assert set(_fronts(ax)) == {"Pareto front"} and "precision: fp32" not in _legend(fig)
    assert hot_table(df).title == "HoT-style comparison (FPS: output frames/s at batch 1, 1 thread, fp32)"
    assert "Precision" not in hot_table(df).frame and "precision" not in summary_table(df).splitlines()[0]


def test_hot_table_shows_precision_and_compares_with_the_same_precision_baseline() -> None:
    df = _two_precisions()
    t = hot_table(df)
    frame = t.frame
    assert list(frame.columns[:4]) == ["Backbone", "Method", "Frames", "Precision"]
    assert set(frame["Precision"]) == {"fp32", "bf16"}
    assert "Precision" in render(t, "md").splitlines()[0]
    # a bf16 cluster row's ΔFPS is against the bf16 baseline: the same as the fp32 row's against fp32
    rows = frame[(frame["Backbone"] == "mixste/tiny") & (frame["Method"] == "cluster+attention")]
    by = {p: g["ΔFPS (%)"].to_numpy(float) for p, g in rows.groupby("Precision")}
    assert np.allclose(by["bf16"], by["fp32"], atol=0.11)
    assert set(frame[frame["Method"] == "mixste"]["ΔFPS (%)"].isna()) == {True}


def test_hypervolume_summary_and_speedup_separate_precisions() -> None:
    df = _two_precisions()
    hv = hypervolume_table(df, cost="fps")
    assert "precision" in hv.columns and set(hv["precision"]) == {"fp32", "bf16"}
    assert len(hv) == 2 * len(hypervolume_table(df[df["precision"] == "fp32"], cost="fps"))
    assert set(hv.groupby(["group", "precision"])["rank"].min()) == {1}
    assert "precision" in summary_table(df).splitlines()[0]
    fig = speedup_figure(df)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 48 and sum(x.endswith(" bf16") for x in labels) == 24
