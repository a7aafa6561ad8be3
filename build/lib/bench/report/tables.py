"""Tables and Pareto plots derived from a results CSV (never edited by hand)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from tabulate import tabulate

SUMMARY_COLUMNS = (
    "label",
    "params",
    "gflops",
    "gflops_paper",
    "latency_ms",
    "fps",
    "mpjpe_mm",
    "pmpjpe_mm",
    "trivial_mpjpe_mm",
    "error",
)


def pareto_front(df: pd.DataFrame, cost: str, error: str) -> pd.Series:
    """Boolean mask of rows no other row beats on both ``cost`` and ``error`` (lower is better)."""
    ok = df[[cost, error]].notna().all(axis=1)
    mask = pd.Series(False, index=df.index)
    sub = df.loc[ok, [cost, error]]
    for i, (c, e) in sub.iterrows():
        dominated = ((sub[cost] <= c) & (sub[error] <= e) & ((sub[cost] < c) | (sub[error] < e))).any()
        mask[i] = not dominated
    return mask


def summary_table(df: pd.DataFrame, columns: Sequence[str] = SUMMARY_COLUMNS, fmt: str = "github") -> str:
    """A paper-style table of the columns present, one row per cell, grouped by backbone."""
    cols = [c for c in columns if c in df.columns]
    if "error" in cols and not df["error"].fillna("").astype(str).str.len().any():
        cols.remove("error")
    view = df.sort_values([c for c in ("backbone", "preset", "gflops") if c in df.columns])[cols].copy()
    if "params" in view:
        view["params"] = (view["params"] / 1e6).round(3)
        view = view.rename(columns={"params": "params (M)"})
    headers = [str(c) for c in view.columns]
    return tabulate(view.values.tolist(), headers=headers, tablefmt=fmt, floatfmt=".4g", missingval="-")


def plot_pareto(
    df: pd.DataFrame, path: str | os.PathLike[str], cost: str = "gflops", error: str = "mpjpe_mm"
) -> Path | None:
    """Scatter of ``error`` against ``cost`` per backbone with each backbone's Pareto front drawn."""
    if cost not in df or error not in df or df[[cost, error]].dropna().empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = df.dropna(subset=[cost, error])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.scatterplot(data=data, x=cost, y=error, hue="backbone", style="pruner", s=70, ax=ax)
    for _, group in data.groupby("backbone"):
        front = group[pareto_front(group, cost, error)].sort_values(cost)
        ax.plot(front[cost], front[error], lw=1, alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel(f"{cost} (per clip, all matmuls)" if cost == "gflops" else cost)
    ax.set_ylabel(f"{error} (action-wise)" if error == "mpjpe_mm" else error)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
