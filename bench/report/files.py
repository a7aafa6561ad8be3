"""Write a results folder's report: ``tables/`` and ``plots/`` beside its ``results.csv``.

The same function runs at the end of ``run_bench.py run`` and as ``run_bench.py report RESULTS_DIR``, so
the files depend on the stored rows alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.report.pareto import hypervolume_table
from bench.report.plots import write_plots
from bench.report.tables import (
    Table,
    ablation_long,
    ablation_tables,
    hot_table,
    render,
    render_many,
    round_sig,
    sequence_table,
)

TABLES = ("hot", "ablation", "hypervolume")
FORMATS = {"md": ".md", "latex": ".tex", "csv": ".csv"}


@dataclass
class ReportFiles:
    """What :func:`write_report` wrote, and the headline table as terminal text."""

    tables: list[Path] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    headline: str = ""


def _hv_table(df: pd.DataFrame, cost: str) -> Table | None:
    hv = hypervolume_table(df, cost=cost)
    if hv.empty:
        return None
    for col in ("ref_cost", "ref_error", "hypervolume"):
        hv[col] = hv[col].astype(float).map(round_sig)
    title = f"Hypervolume of each strategy's MPJPE-{cost} front (reference: baseline {cost}, trivial MPJPE)"
    return Table(hv.rename(columns={"ref_cost": f"baseline {cost}", "ref_error": "trivial MPJPE (mm)"}), title=title)


def write_report(
    df: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    tables: Sequence[str] = TABLES,
    formats: Sequence[str] = tuple(FORMATS),
    plots: bool = True,
) -> ReportFiles:
    """Tables (``out_dir/tables/<name>.<md|tex|csv>``) and plots (``out_dir/plots/*.png|pdf``) of ``df``."""
    out = Path(out_dir)
    files = ReportFiles()

    def write(name: str, fmt: str, text: str) -> None:
        path = out / "tables" / f"{name}{FORMATS[fmt]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n")
        files.tables.append(path)

    if df.empty:
        return files
    hot = hot_table(df)
    files.headline = render(hot, "text")
    if "hot" in tables:
        for fmt in formats:
            write("hot", fmt, render(hot, fmt))
    if "ablation" in tables:
        abl = ablation_tables(df)
        if abl:
            for fmt in formats:
                write("ablation", fmt, ablation_long(df).to_csv(index=False) if fmt == "csv" else render_many(abl, fmt))
    if "hot" in tables and (seq := sequence_table(df)) is not None:  # MPI-INF-3DHP: per test sequence
        for fmt in formats:
            write("sequences_3dhp", fmt, render(seq, fmt))
    if "hypervolume" in tables:
        for cost in ("gflops", "fps"):
            t = _hv_table(df, cost)
            if t is not None:
                for fmt in formats:
                    write(f"hypervolume_{cost}", fmt, render(t, fmt))
    if plots:
        files.plots = write_plots(df, out / "plots")
    return files
