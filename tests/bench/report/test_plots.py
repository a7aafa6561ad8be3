"""Figures: axis labels with units, legends, missing columns, valid PNG and PDF files."""

from __future__ import annotations

import matplotlib.image
import pytest

from bench.report.plots import figures, heatmap_figure, speedup_figure, tradeoff_figure, write_plots


def _texts(fig) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


@pytest.mark.parametrize(
    ("cost", "xlabel"),
    [("gflops", "FLOPs per clip (GFLOPs)"), ("fps", "Throughput (output frames/s, batch 1, 1 thread)")],
)
def test_tradeoff_axes_legend_front_and_labels(synthetic, cost, xlabel):
    fig = tradeoff_figure(synthetic, "mixste/tiny", cost)
    ax = fig.axes[0]
    assert ax.get_xlabel() == xlabel and ax.get_ylabel() == "MPJPE (mm)"
    legend = _texts(fig)
    assert {"baseline", "Pareto front", "pruner: cluster", "pruner: uniform", "recoverer: attention"} <= set(legend)
    assert ax.get_legend() is None  # the legend sits below the axes, clear of the data
    labels = {t.get_text() for t in ax.texts}
    assert {f"({n}, {k})" for n in (3, 9, 13) for k in (1, 2)} <= labels
    step = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(step) == 1 and len(step[0].get_xdata()) >= 2
    if cost == "fps":
        assert "cpu" in ax.get_title()  # the device; the axis names batch, threads and precision


def test_heatmap_and_speedup_labels(synthetic):
    fig = heatmap_figure(synthetic, "strided/tiny", "mpjpe_mm")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["cluster+none", "uniform+none"]
    assert all(ax.get_xlabel() == "pruning depth k (block)" for ax in panels)
    assert panels[0].get_ylabel() == "tokens kept n"
    assert [t.get_text() for t in panels[0].get_yticklabels()] == ["3", "9", "13"]
    cbar = [ax for ax in fig.axes if ax.get_ylabel() == "MPJPE (mm)"]
    assert len(cbar) == 1
    fig = speedup_figure(synthetic)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Factor against the baseline (×); throughput at batch 1, 1 thread"
    assert set(_texts(fig)) == {"FLOPs reduction", "measured speedup"}
    assert len(ax.get_yticklabels()) == 24


def test_missing_columns_skip_plots(synthetic):
    flops_only = synthetic.drop(columns=["mpjpe_mm", "pmpjpe_mm", "fps", "trivial_mpjpe_mm"])
    assert tradeoff_figure(flops_only, "mixste/tiny", "gflops") is None
    assert speedup_figure(flops_only) is None
    assert sorted(figures(flops_only)) == ["heatmap_gflops_mixste-tiny", "heatmap_gflops_strided-tiny"]
    errors_only = synthetic.assign(error="RuntimeError: x")
    assert dict(figures(errors_only)) == {}


@pytest.mark.slow
def test_every_plot_file_is_a_valid_png_and_pdf(synthetic, tmp_path):
    paths = write_plots(synthetic[synthetic["backbone"] == "strided"], tmp_path)
    stems = {p.stem for p in paths}
    assert stems == {
        *(f"mpjpe_vs_{c}_strided-tiny" for c in ("gflops", "fps")),
        *(f"heatmap_{m}_strided-tiny" for m in ("mpjpe", "gflops")),
        "speedup_vs_flops",
    }
    for p in paths:
        assert p.is_file()
        if p.suffix == ".png":
            img = matplotlib.image.imread(p)
            assert img.ndim == 3 and min(img.shape[:2]) > 300
        else:
            data = p.read_bytes()
            assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert len([p for p in paths if p.suffix == ".png"]) == len([p for p in paths if p.suffix == ".pdf"]) == 5


def test_the_marker_shows_the_training_mode_where_the_grid_varies_it(synthetic):
    """Rows carry ``train_mode`` (finetune / none): the plots key their marker on it (they read a ``mode``
    column that no row has, so the marker fell back to the recoverer)."""
    df = synthetic.copy()
    pruned = df["pruner"] != "none"
    df["train_mode"] = "finetune"
    df.loc[pruned & (df["pruner"] == "uniform"), "train_mode"] = "none"
    df.loc[~pruned, "train_mode"] = "scratch"
    legend = _texts(tradeoff_figure(df, "mixste/tiny", "gflops"))
    assert "train_mode: none" in legend and "train_mode: finetune" in legend
    assert not any(t.startswith("recoverer:") for t in legend)
