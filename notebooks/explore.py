# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore HourglassBench results
#
# This notebook reads one results folder (what `python run_bench.py` or `python run_bench.py run GRID`
# writes: `results/<grid>/`, one JSON-lines file per measure) through `bench.results.load`, and
# redraws the tables, plots and Pareto analysis that `python run_bench.py report RESULTS_DIR` writes.
# Nothing here computes a number the stored rows do not hold.
#
# Point it at a folder with `HOURGLASS_RESULTS=results/<grid> jupyter lab notebooks/explore.ipynb`; the
# default is the default run's output, `results/quick/`. On a fresh clone with no results yet it runs a
# small FLOPs-only grid (paper presets, a few seconds) into a temporary folder instead.

# %%
import io
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "configs").is_dir() and (p / "bench").is_dir())
sys.path.insert(0, str(ROOT))  # import the bench package of this checkout

from bench.report import ablation_tables, hot_table, hypervolume_table, pareto_mask, render  # noqa: E402
from bench.report.frame import select_rows  # noqa: E402
from bench.report.plots import figures  # noqa: E402
from bench.report.tables import render_many, sequence_table  # noqa: E402
from bench.results import has_results, load  # noqa: E402

RESULTS = Path(os.environ.get("HOURGLASS_RESULTS", ROOT / "results" / "quick"))


def show(fig):
    """Display a matplotlib Figure as a PNG (works with any matplotlib backend, Agg included)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    display(Image(data=buf.getvalue()))


# %% [markdown]
# ## Load the results
# With no results where we look, run the FLOPs-only paper grid (`configs/paper_flops.yaml`) on two
# backbones and a few (n, k) cells into a temporary folder. It measures FLOPs only: there will be no
# MPJPE, FPS or hypervolume below, and the cells that need them say so.

# %%
if not has_results(RESULTS):
    print(f"No results in {RESULTS} yet (run `python run_bench.py` to make them).")
    from bench.grid import grid_source, load_grid, plan_grid, run_grid

    small = ["backbones=[mixste,strided]", "pruners=[none,cluster,uniform]", "tokens=[27,81]", "depths=[1,2]"]
    grid = load_grid(grid_source("paper_flops"), small)
    RESULTS = Path(tempfile.mkdtemp()) / grid.name
    print(f"Running a small FLOPs-only grid into {RESULTS} ...")
    run_grid(plan_grid(grid), RESULTS)

df = load(RESULTS)
print(f"{len(df)} cells from {RESULTS}; {int((df['error'] != '').sum())} recorded an error")
df.head()

# %% [markdown]
# ## What each column means
# Columns appear only when the grid measured them (`measure: [flops, speed, accuracy]`).

# %%
COLUMNS = {
    "cell_id": "stable hash of the cell's configuration (the resume key)",
    "backbone": "registered backbone (mixste, motionbert, mhformer, strided)",
    "preset": "backbone size preset (paper, small, tiny, ...)",
    "pruner": "token pruner (none = the baseline; cluster = HoT's TPC, uniform = TPS, ...)",
    "recoverer": "token recoverer (attention = HoT's TRA; none for seq2frame backbones)",
    "tokens": "tokens kept n per pruning stage (a fraction < 1 means a share of the T frames)",
    "depths": "pruning depth k per stage: blocks before it run on all T tokens",
    "seed": "training seed",
    "label": "human label, e.g. mixste/paper cluster(81@3)+attention",
    "torch": "torch version that measured the cell",
    "error": "empty when the cell succeeded, else the exception (failure as data)",
    "params": "parameters",
    "gflops": "GFLOPs per clip (one window of T frames, batch 1, no flip), every matmul incl. attention",
    "gflops_paper": "GFLOPs per clip counted the way the papers count (2 x MACs of their layers)",
    "gflops_per_frame": "gflops divided by the frames one clip scores (T for seq2seq, 1 for seq2frame)",
    "tokens_per_block": "tokens each transformer block sees",
    "latency_ms": "median latency of one forward (ms)",
    "latency_iqr_ms": "interquartile range of that latency (ms)",
    "fps": "throughput: output frames per second at throughput_batch clips per forward",
    "throughput_batch": "clips per forward when timing throughput (the preset's default)",
    "throughput_ms": "median time of one forward at throughput_batch (ms)",
    "throughput_speedup": "baseline / cell throughput time, paired in the same rounds",
    "latency_fps": "output frames per second at speed_batch (latency, usually batch 1)",
    "speedup": "baseline / cell latency, paired in the same rounds",
    "speed_batch": "clips per timed forward for latency",
    "threads": "CPU threads used for timing",
    "device": "device timed on",
    "mpjpe_mm": "MPJPE (Protocol 1, action-wise mean, mm)",
    "pmpjpe_mm": "P-MPJPE (Protocol 2, after Procrustes alignment, mm)",
    "mpjve_mm": "MPJVE (velocity error, mm)",
    "trivial_mpjpe_mm": "MPJPE of the trivial predictor (mean pose) on the same test set: the error ceiling",
    "train_steps": "optimiser steps trained",
    "train_seconds": "training wall time (s)",
    "eval_output": "which output frames were scored",
    "data": "dataset name",
    "cell_seconds": "wall time of the whole cell (s)",
    "finished": "when the row was written (UTC)",
}
pd.DataFrame(
    {"dtype": [str(df[c].dtype) for c in df.columns], "meaning": [COLUMNS.get(c, "") for c in df.columns]},
    index=df.columns,
)

# %% [markdown]
# ## Paper-style tables
# HoT's layout, grouped by backbone, best value per column in bold, change against the backbone's
# baseline in %. With several seeds a value reads mean ± sd.

# %%
display(Markdown(render(hot_table(df), "md")))

# %% [markdown]
# MPI-INF-3DHP results (`quick_3dhp`, or `--set data.source=3dhp`) also carry every test sequence's scores:
# frames, MPJPE, PCK and AUC per sequence, then the three ways the literature combines them.

# %%
by_sequence = sequence_table(df)
display(Markdown(render(by_sequence, "md") if by_sequence is not None else "_no MPI-INF-3DHP rows_"))

# %%
ablation = ablation_tables(df)
display(Markdown(render_many(ablation[:4], "md") if ablation else "_no strategy measured at several (n, k)_"))

# %% [markdown]
# ## Filter
# Pick a backbone, a strategy (`pruner+recoverer`) or a training mode; `None` keeps everything.

# %%
BACKBONE = None  # e.g. "mixste"
STRATEGY = None  # e.g. "cluster+attention"
MODE = None  # e.g. "finetune" (only where the grid varies the training mode)

view = select_rows(df, backbone=BACKBONE, strategy=STRATEGY, train_mode=MODE)
print(f"{len(view)} of {len(df)} cells; backbones: {sorted(view['backbone'].unique())}")
print("strategies:", sorted((view["pruner"] + "+" + view["recoverer"]).unique()))

# %% [markdown]
# ## Plots
# MPJPE against GFLOPs and against FPS per backbone (colour = pruner, marker = recoverer, star = baseline,
# dashed step = Pareto front, labels = (n, k)), heatmaps over n x k per strategy, and measured speedup next
# to the FLOPs reduction. A FLOPs-only grid only gets the GFLOPs heatmaps.

# %%
figs = figures(view)
print("\n".join(figs) or "no plot applies to these rows")
for fig in figs.values():
    show(fig)

# %% [markdown]
# ## Pareto fronts
# Cells no other cell beats on every objective: per backbone, across backbones, and on all three
# objectives (GFLOPs, FPS, MPJPE) where they were measured.

# %%
pairs = [c for c in (["gflops", "mpjpe_mm"], ["fps", "mpjpe_mm"], ["gflops", "fps", "mpjpe_mm"]) if set(c) <= set(df)]
if not pairs:
    pairs = [["gflops", "params"]] if {"gflops", "params"} <= set(df) else []
    print("no accuracy measured: the front below trades FLOPs against parameters")
for objectives in pairs:
    per_backbone = pareto_mask(df, objectives, by="backbone")
    across = pareto_mask(df, objectives)
    print(
        f"{' / '.join(objectives)}: {int(per_backbone.sum())} cells on a per-backbone front, {int(across.sum())} across"
    )
    display(df.loc[across, ["label", *objectives]].sort_values(objectives[0]))

# %% [markdown]
# ## Hypervolume ranking
# Per (backbone, strategy) front: the area it dominates inside the box between the baseline's cost and the
# trivial predictor's MPJPE, both scaled to 1 (1 = a free, perfect model; 0 = nothing beats the baseline's
# cost while beating the trivial error). Highest first within each backbone.

# %%
for cost in ("gflops", "fps"):
    hv = hypervolume_table(df, cost=cost)
    if hv.empty:
        print(f"hypervolume over {cost}: needs {cost}, mpjpe_mm and trivial_mpjpe_mm (not in these rows)")
    else:
        print(f"hypervolume of the MPJPE-{cost} fronts")
        display(hv)
