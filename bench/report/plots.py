"""Figures from result rows (matplotlib + seaborn), sized for a paper column, saved as PNG and PDF.

Every ``*_figure`` function returns a :class:`matplotlib.figure.Figure` (no pyplot state) or ``None``
when the rows lack what it needs (a FLOPs-only grid has no MPJPE or FPS); :func:`write_plots` saves all
that apply. Rows that recorded an error are left out; seeds are averaged (error bars = sd).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.report.frame import (
    ACCURACY_MEASURES,
    BASELINE,
    PRECISION,
    aggregate_seeds,
    baseline_values,
    fps_protocol,
    has,
    precisions,
    schedule_key,
    varies_precision,
    with_accuracy_notes,
)
from bench.report.pareto import MAXIMISE, direction, pareto_mask

COLUMN_WIDTH_IN = 3.4  # one column of a two-column paper
PNG_DPI = 200  # PDF is vector; the PNG is for a quick look
TEXT_WIDTH_IN = 7.0
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
FRONT_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)))  # one Pareto front line style per precision
LABEL_LIMIT = 24  # more points than this: only the front's points get their (n, k) label
AXIS_LABELS = {
    "gflops": "FLOPs per clip (GFLOPs)",
    "gflops_paper": "FLOPs per clip, paper count (GFLOPs)",
    "fps": "Throughput (output frames/s)",
    "latency_fps": "Output frames/s at the latency batch",
    "mpjpe_mm": "MPJPE (mm)",
    "pmpjpe_mm": "P-MPJPE (mm)",
    "latency_ms": "Latency per clip (ms)",
}
PDF_METADATA = {"CreationDate": None}  # byte-identical PDFs for identical rows


@contextmanager
def _style() -> Iterator[None]:
    rc: dict[str, Any] = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=0.85)}
    rc.update({"figure.dpi": 100, "legend.fontsize": 6.5, "legend.title_fontsize": 7})
    with mpl.rc_context(rc):  # type: ignore[arg-type]
        yield


def _palette(values: pd.Series) -> dict[str, Any]:
    names = sorted(v for v in values.unique() if v != BASELINE)
    colours = sns.color_palette("colorblind", max(len(names), 1))
    return dict(zip(names, colours))


def _marker_column(agg: pd.DataFrame) -> str:
    """The speed precision where the rows hold several, else the training mode where a grid varies it,
    else the recoverer."""
    if varies_precision(agg):
        return PRECISION
    return "train_mode" if "train_mode" in agg and agg["train_mode"].nunique() > 1 else "recoverer"


def _speed_note(rows: pd.DataFrame) -> str:
    """The device ``rows`` (one backbone/preset) were timed on (the axis label names batch, threads and
    precision)."""
    if "device" in rows and rows["device"].notna().any():
        return str(rows["device"].dropna().iloc[0])
    return ""


def _cost_label(rows: pd.DataFrame, cost: str) -> str:
    """The x-axis label of ``rows`` (one backbone/preset): a throughput axis names how it was timed
    (``Throughput (output frames/s, batch 64, 1 thread, fp32)``), a latency axis its one precision."""
    label = AXIS_LABELS.get(cost, cost)
    found = precisions(rows)
    how = fps_protocol(rows) if cost == "fps" else (found[0] if cost == "latency_ms" and len(found) == 1 else "")
    if not how:
        return label
    return f"{label[:-1]}, {how})" if label.endswith(")") else f"{label} ({how})"


def _fronts(ax: Any, agg: pd.DataFrame, cost: str, error: str) -> tuple[pd.Series, list[Line2D]]:
    """Draw the Pareto front of ``agg`` (one per precision where it varies) as step lines.

    Returns the on-front mask and the legend handles ("Pareto front" or "Pareto front (bf16)")."""
    where = "pre" if direction(cost) == MAXIMISE else "post"
    several = varies_precision(agg)
    on = pareto_mask(agg, [cost, error], by=PRECISION if several else None)
    groups = [(p, agg[PRECISION].astype(str) == p) for p in precisions(agg)] if several else [("", on | ~on)]
    handles = []
    for (prec, rows), ls in zip(groups, FRONT_STYLES * len(groups)):
        front = agg[on & rows].sort_values(cost)
        label = f"Pareto front ({prec})" if prec else "Pareto front"
        ax.step(front[cost], front[error], where=where, color="0.35", lw=0.9, ls=ls, zorder=2, label=label)
        handles.append(Line2D([], [], color="0.35", lw=0.9, ls=ls, label=label))
    return on, handles


def _baselines(ax: Any, base: pd.DataFrame, cost: str, error: str) -> list[Line2D]:
    """Baselines as black stars (one star style per precision where it varies); their legend handles."""
    if base.empty:
        return [Line2D([], [], marker="*", ls="", color="black", ms=8, label="baseline")]
    if not varies_precision(base):
        ax.scatter(base[cost], base[error], marker="*", s=110, color="black", zorder=4, label="baseline")
        return [Line2D([], [], marker="*", ls="", color="black", ms=8, label="baseline")]
    handles = []
    for i, prec in enumerate(precisions(base)):
        b = base[base[PRECISION].astype(str) == prec]
        face = "black" if i == 0 else "white"
        label = f"baseline ({prec})"
        ax.scatter(b[cost], b[error], marker="*", s=110, facecolor=face, edgecolor="black", zorder=4, label=label)
        handles.append(Line2D([], [], marker="*", ls="", mfc=face, mec="black", ms=8, label=label))
    return handles


def tradeoff_figure(df: pd.DataFrame, group: str, cost: str = "gflops", error: str = "mpjpe_mm") -> Figure | None:
    """``error`` against ``cost`` for one backbone/preset: colour = pruner, marker = recoverer (or mode),
    the baseline as a black star, the Pareto front as a step line, points labelled (n, k).

    Rows timed at several precisions: marker = precision, one Pareto front (line style) and one
    baseline star per precision, each named in the legend. At one precision a throughput axis and
    the title name it."""
    if not has(df, cost, error):
        return None
    agg = aggregate_seeds(df)
    noted = agg[(agg["group"] == group) & (agg["accuracy_note"] != "")] if "accuracy_note" in agg else agg.iloc[:0]
    agg = agg.dropna(subset=[cost, error])
    agg = agg[agg["group"] == group]
    if agg.empty:
        return None
    pruned = agg[agg["pruner"] != BASELINE]
    base = agg[agg["pruner"] == BASELINE]
    marker = _marker_column(agg)
    with _style():
        fig = Figure(figsize=(COLUMN_WIDTH_IN, 2.6), layout="constrained")
        ax = fig.add_subplot()
        sd = f"{error}_sd"
        if sd in agg and agg[sd].notna().any():
            ax.errorbar(agg[cost], agg[error], yerr=agg[sd], fmt="none", ecolor="0.6", elinewidth=0.7, zorder=1)
        on, front_handles = _fronts(ax, agg, cost, error)
        palette = _palette(agg["pruner"])
        styles = sorted(pruned[marker].astype(str).unique())
        markers = dict(zip(styles, MARKERS))
        if not pruned.empty:
            sns.scatterplot(
                data=pruned,
                x=cost,
                y=error,
                hue="pruner",
                style=marker,
                palette=palette,
                markers=markers,
                s=28,
                ax=ax,
                zorder=3,
                linewidth=0.3,
                edgecolor="white",
                legend=False,
            )
        base_handles = _baselines(ax, base, cost, error)
        label_rows = pruned if len(pruned) <= LABEL_LIMIT else pruned[on.loc[pruned.index]]
        for _, r in label_rows.iterrows():
            ax.annotate(
                f"({r['n']}, {r['k']})",
                (r[cost], r[error]),
                xytext=(3, 3),
                textcoords="offset points",
                fontsize=5,
                color="0.25",
            )
        rows = df[(df["backbone"] + "/" + df["preset"]) == group]
        ax.set_xlabel(_cost_label(rows, cost))
        ax.set_ylabel(AXIS_LABELS.get(error, error))
        note = _speed_note(rows) if cost == "fps" else ""
        ax.set_title(group + (f" ({note})" if note else ""), fontsize=7.5)
        ax.margins(x=0.12, y=0.12)
        handles = base_handles + front_handles
        handles += [Line2D([], [], marker="o", ls="", color=c, label=f"pruner: {p}") for p, c in palette.items()]
        handles += [Line2D([], [], marker=m, ls="", color="0.3", label=f"{marker}: {v}") for v, m in markers.items()]
        if len(noted) and error in ACCURACY_MEASURES:
            text = f"{len(noted)} point(s) left out: model or its baseline at the mean pose (> 0.5 x trivial MPJPE)"
            handles.append(Line2D([], [], ls="", label=text))
        fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False, fontsize=6, handletextpad=0.3)
    return fig


def heatmap_figure(df: pd.DataFrame, group: str, metric: str) -> Figure | None:
    """``metric`` over tokens kept n (rows) x pruning depth k (columns), one panel per strategy.

    ``None`` unless some strategy of ``group`` was measured at two or more (n, k) cells.
    """
    if not has(df, metric):
        return None
    agg = aggregate_seeds(df).dropna(subset=[metric])
    agg = agg[(agg["group"] == group) & (agg["pruner"] != BASELINE)]
    strategies = [s for s, g in agg.groupby("strategy", sort=True) if len(g[["n", "k"]].drop_duplicates()) > 1]
    if not strategies:
        return None
    cols = min(len(strategies), 4)
    rows = int(np.ceil(len(strategies) / cols))
    width = min(TEXT_WIDTH_IN, 1.2 + 1.9 * cols)
    vmin, vmax = float(agg[metric].min()), float(agg[metric].max())
    with _style():
        fig = Figure(figsize=(width, 0.4 + 2.0 * rows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        for ax, strategy in zip(axes, strategies):
            g = agg[agg["strategy"] == strategy]
            pivot = g.pivot_table(index="n", columns="k", values=metric, aggfunc="mean")
            pivot = pivot.loc[sorted(pivot.index, key=schedule_key), sorted(pivot.columns, key=schedule_key)]
            sns.heatmap(
                pivot,
                ax=ax,
                vmin=vmin,
                vmax=vmax,
                cmap="mako_r",
                annot=True,
                fmt=".3g",
                annot_kws={"fontsize": 5.5},
                cbar=False,
                linewidths=0.4,
                linecolor="white",
            )
            ax.set_title(strategy, fontsize=7.5)
            ax.set_xlabel("pruning depth k (block)")
            ax.set_ylabel("tokens kept n" if ax.get_subplotspec().is_first_col() else "")
            ax.tick_params(labelsize=6, rotation=0)
        for ax in axes[len(strategies) :]:
            ax.set_visible(False)
        mappable = axes[0].collections[0]
        cbar = fig.colorbar(mappable, ax=list(axes[: len(strategies)]), shrink=0.9)
        cbar.set_label(AXIS_LABELS.get(metric, metric))
        fig.suptitle(group, fontsize=8)
    return fig


def speedup_figure(df: pd.DataFrame) -> Figure | None:
    """Measured speedup next to the FLOPs reduction (baseline GFLOPs / GFLOPs), per cell, sorted by backbone;
    rows at several precisions are each compared with the baseline at their own precision.

    The speedup is the row's paired ``speedup`` (timed in the same rounds as its baseline) where the grid
    measured one, else the ratio of FPS columns."""
    if not has(df, "fps", "gflops"):
        return None
    agg = aggregate_seeds(df).dropna(subset=["fps", "gflops"])
    base_gflops, base_fps = baseline_values(agg, "gflops"), baseline_values(agg, "fps")
    pruned = agg[(agg["pruner"] != BASELINE) & base_fps.notna()].copy()
    if pruned.empty:
        return None
    pruned["FLOPs reduction"] = base_gflops.loc[pruned.index] / pruned["gflops"]
    ratio = pruned["fps"] / base_fps.loc[pruned.index]
    # the paired throughput speedup of the grid's speed groups (same rounds as the baseline) where the rows
    # carry it (older folders: the paired speedup at the latency batch), else the ratio of FPS columns
    nan = pd.Series(float("nan"), index=pruned.index)
    paired = pruned.get("throughput_speedup", nan)
    if "speedup" in pruned and not paired.notna().any():
        paired = pruned["speedup"]
    pruned["measured speedup"] = paired.where(paired.notna(), ratio)
    where = pruned["group"] if agg["preset"].nunique() > 1 else pruned["backbone"]
    pruned["cell"] = where + "  " + pruned["strategy"] + " (" + pruned["n"] + ", " + pruned["k"] + ")"
    if varies_precision(agg):  # each precision against its own baseline, named on its bar
        pruned["cell"] += " " + pruned[PRECISION].astype(str)
    pruned = pruned.sort_values("cell")
    long = pruned.melt(id_vars="cell", value_vars=["FLOPs reduction", "measured speedup"], var_name="factor")
    with _style():
        fig = Figure(figsize=(COLUMN_WIDTH_IN, 0.9 + 0.22 * len(pruned)), layout="constrained")
        ax = fig.add_subplot()
        sns.barplot(data=long, y="cell", x="value", hue="factor", ax=ax, palette=["0.65", "tab:blue"], orient="h")
        ax.axvline(1.0, color="black", lw=0.8)
        how = fps_protocol(df)
        ax.set_xlabel("Factor against the baseline (×)" + (f"; throughput at {how}" if how else ""))
        ax.set_ylabel("")
        ax.tick_params(axis="y", labelsize=5.5)
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False)
    return fig


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def save(fig: Figure, stem: str | os.PathLike[str]) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf``."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=PNG_DPI, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata=PDF_METADATA)
    return paths


def left_out(df: pd.DataFrame) -> list[str]:
    """One line per configuration whose accuracy the plots leave out, and why (the tables' rule)."""
    agg = aggregate_seeds(with_accuracy_notes(df)) if len(df) else pd.DataFrame()
    if "accuracy_note" not in agg:
        return []
    bad = agg[agg["accuracy_note"] != ""]
    return [f"{g} {s}: {n}" for g, s, n in zip(bad["group"], bad["strategy"], bad["accuracy_note"], strict=True)]


def figures(df: pd.DataFrame) -> Mapping[str, Figure]:
    """Every figure the rows allow, by file stem (``mpjpe_vs_gflops_mixste-tiny``, ...).

    Accuracy points at the mean pose (:func:`~bench.report.frame.accuracy_notes`) are left out; each
    trade-off legend counts them."""
    df = with_accuracy_notes(df) if len(df) else df
    out: dict[str, Figure] = {}
    groups = sorted((df["backbone"].astype(str) + "/" + df["preset"].astype(str)).unique()) if len(df) else []
    for group in groups:
        for cost in ("gflops", "fps"):
            fig = tradeoff_figure(df, group, cost)
            if fig is not None:
                out[f"mpjpe_vs_{cost}_{_slug(group)}"] = fig
        for metric in ("mpjpe_mm", "gflops"):
            fig = heatmap_figure(df, group, metric)
            if fig is not None:
                out[f"heatmap_{metric.removesuffix('_mm')}_{_slug(group)}"] = fig
    fig = speedup_figure(df)
    if fig is not None:
        out["speedup_vs_flops"] = fig
    return out


def write_plots(df: pd.DataFrame, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Save every figure the rows allow under ``out_dir`` as PNG and PDF; the paths written."""
    paths: list[Path] = []
    for stem, fig in figures(df).items():
        paths += save(fig, Path(out_dir) / stem)
    for line in left_out(df):
        print(f"plots leave out {line}")
    return paths
