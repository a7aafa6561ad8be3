"""Benchmark: does the budgeted search find the front with a fraction of the grid's cells? (issue 20)

    python -m bench.benchmarks.search_front [--grid search_quick] [--fraction 0.4] [--seeds 0,1,2] [--out DIR]

Runs the grid in full (every cell trained and scored), then each sampler (multi-objective TPE and the
random control) with each seed, at ``fraction`` of the candidate cells, in the same results folder: the
store already holds every cell, so a search trains nothing and what is measured is its choice of cells,
with the exact values the full run measured. Reports each run's hypervolume after each distinct cell,
against the full grid's (same reference point), the median over seeds, and writes the curves
(``search_front.csv``) and a plot (``search_front.png``) into the folder.

Then (``--resume-check``, on by default) the kill-and-resume target: the same search command twice in
fresh folders, once uninterrupted and once killed with SIGKILL after ``--kill-after`` trials and run
again; it counts, in each folder's store and study, the distinct cells measured and the accuracy records
per cell (a cell trained twice would hold two).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bench.grid import grid_source, load_grid, plan_grid, run_grid
from bench.report.frame import accuracy_notes
from bench.search.run import OBJECTIVES, hypervolume, measured_cells, run_search

OBJECTIVE_PAIR = ("mpjpe_mm", "gflops")


def curve(trials: pd.DataFrame, reference: dict[str, float]) -> list[float]:
    """Hypervolume after each distinct cell, in the order the search first measured them."""
    first = trials.drop_duplicates("cell_id")
    sign = np.array([1.0 if OBJECTIVES[o] == "minimize" else -1.0 for o in OBJECTIVE_PAIR])
    pts = first[list(OBJECTIVE_PAIR)].to_numpy(float) * sign
    ref = np.array([reference[o] for o in OBJECTIVE_PAIR]) * sign
    return [hypervolume(pts[: i + 1], ref) for i in range(len(pts))]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grid", default="search_quick")
    ap.add_argument("--fraction", type=float, default=0.4)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="results")
    ap.add_argument("--resume-check", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--kill-after", type=int, default=4, help="trials before the SIGKILL (resume check)")
    args = ap.parse_args(argv)
    plan = plan_grid(load_grid(grid_source(args.grid)))
    folder = Path(args.out).absolute() / f"{plan.grid.name}-front"
    t0 = time.perf_counter()
    full = run_grid(plan, folder, fsync=False)
    full_s = time.perf_counter() - t0
    ok = full[(accuracy_notes(full) == "") & full["mpjpe_mm"].notna()]
    # the search measures the baselines first (they fix its reference point): they count in the budget
    baselines = sum(1 for c in plan.cells if not c.model.pruned)
    budget = max(1, round(args.fraction * len(plan.cells)) - baselines)
    rows, summary = [], []
    reference: dict[str, float] = {}
    for sampler in ("tpe", "random"):
        for seed in (int(s) for s in args.seeds.split(",")):
            t1 = time.perf_counter()
            res = run_search(plan, folder, budget, OBJECTIVE_PAIR, sampler=sampler, seed=seed)
            reference = res.reference
            hv = curve(res.trials, reference)  # over the distinct trial cells (the baselines come first)
            rows += [{"sampler": sampler, "seed": seed, "cells": i + 1, "hypervolume": v} for i, v in enumerate(hv)]
            summary.append(
                {"sampler": sampler, "seed": seed, "hv": hv[-1] if hv else 0.0, "s": time.perf_counter() - t1}
            )
    sign = np.array([1.0, 1.0])
    pts = ok[list(OBJECTIVE_PAIR)].to_numpy(float) * sign
    full_hv = hypervolume(pts, np.array([reference[o] for o in OBJECTIVE_PAIR]))
    curves = pd.DataFrame(rows)
    curves.to_csv(folder / "search_front.csv", index=False)
    _plot(curves, full_hv, budget, reference, folder / "search_front.png")
    table = pd.DataFrame(summary).assign(of_full=lambda d: d["hv"] / full_hv)
    print(f"full grid: {len(plan.cells)} cells, {len(ok)} results, hypervolume {full_hv:.5g} ({full_s:.0f} s)")
    ref = ", ".join(f"{k} {v:.4g}" for k, v in reference.items())
    used = budget + baselines
    print(
        f"reference point: {ref}; budget {budget} trial cells + {baselines} baseline(s) measured first = {used} "
        f"of {len(plan.cells)} cells ({100 * used / len(plan.cells):.0f} %)"
    )
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    for sampler, g in table.groupby("sampler"):
        print(f"{sampler}: median {g['of_full'].median():.3f} of the full grid's hypervolume over {len(g)} seeds")
    if args.resume_check:
        for killed in (False, True):
            c = resume_check(
                args.grid, budget, Path(args.out).absolute() / f"resume-{int(killed)}", killed, args.kill_after
            )
            print(
                f"{'killed after ' + str(args.kill_after) + ' trials and resumed' if killed else 'uninterrupted'}: "
                f"{c['distinct_trial_cells']} distinct trial cells, {c['accuracy_records']} accuracy records for "
                f"{c['distinct_cells']} cells (most per cell: {c['most_records_per_cell']}), {c['seconds']:.0f} s"
            )
    return 0 if math.isfinite(full_hv) else 1


def resume_check(grid: str, trials: int, out: Path, kill: bool, kill_after: int) -> dict[str, float]:
    """One search command in a fresh folder (killed after ``kill_after`` trials and run again when ``kill``):
    the distinct cells its study measured and the accuracy records per cell in its store."""
    cmd = [sys.executable, "-m", "run_bench", "search", grid, "--trials", str(trials), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    if kill:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert proc.stdout is not None
        seen = 0
        for line in proc.stdout:
            seen += line.startswith("[trial")
            if seen >= kill_after:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    folder = out / f"{load_grid(grid_source(grid)).name}-search"
    records = [json.loads(x)["cell_id"] for f in folder.glob("accuracy-*.jsonl") for x in f.read_text().splitlines()]
    measured = measured_cells(folder)
    counts = pd.Series(records).value_counts()
    return {
        "distinct_trial_cells": len(measured),
        "accuracy_records": len(records),
        "distinct_cells": len(counts),
        "most_records_per_cell": int(counts.max()),
        "seconds": time.perf_counter() - t0,
    }


def _plot(curves: pd.DataFrame, full_hv: float, budget: int, reference: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (sampler, seed), g in curves.groupby(["sampler", "seed"]):
        ax.plot(
            g["cells"],
            g["hypervolume"],
            color="C0" if sampler == "tpe" else "C1",
            alpha=0.8,
            label=f"{sampler}" if seed == curves["seed"].min() else None,
        )
    ax.axhline(full_hv, color="k", ls="--", label="full grid")
    ax.axhline(0.95 * full_hv, color="grey", ls=":", label="95 % of the full grid")
    ax.set_xlabel(f"distinct cells measured (budget {budget})")
    ax.set_ylabel("hypervolume (MPJPE mm x GFLOPs)")
    ref = ", ".join(f"{k} {v:.4g}" for k, v in reference.items())
    ax.set_title(f"search against the full grid (reference: {ref})", fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
