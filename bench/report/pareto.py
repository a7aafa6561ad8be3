"""Pareto fronts and hypervolume of result rows (``moocore`` does the geometry).

Objectives are columns: cost (``gflops``, minimised, or ``fps``, maximised) against error
(``mpjpe_mm``, minimised), or all three at once. A row is on the front when no other usable row is at
least as good on every objective and better on one; exact duplicates of a front point all stay on it.

Hypervolume of a (backbone, strategy) front: both objectives are scaled to the reference point
``(baseline's cost, trivial predictor's error)`` -- cost as ``gflops / gflops_baseline`` or
``fps_baseline / fps``, error as ``mpjpe_mm / trivial_mpjpe_mm`` -- and the area the front dominates
inside the unit box ``[0, 1] x [0, 1]`` is reported. 0 means nothing beats the baseline's cost while
beating the trivial predictor; 1 would be a free, perfect model. Two strategies on one backbone
compare by this single number.
"""

from __future__ import annotations

from collections.abc import Sequence

import moocore
import numpy as np
import pandas as pd

from bench.report.frame import BASELINE, PRECISION, aggregate_seeds, baseline_values, ok_rows, varies_precision

MINIMISE = "min"
MAXIMISE = "max"
DIRECTIONS = {
    "params": MINIMISE,
    "gflops": MINIMISE,
    "gflops_paper": MINIMISE,
    "gflops_per_frame": MINIMISE,
    "latency_ms": MINIMISE,
    "fps": MAXIMISE,
    "mpjpe_mm": MINIMISE,
    "pmpjpe_mm": MINIMISE,
    "mpjve_mm": MINIMISE,
}


def direction(column: str) -> str:
    """``'min'`` or ``'max'``: whether smaller or larger values of ``column`` are better."""
    if column not in DIRECTIONS:
        raise KeyError(f"no optimisation direction known for column '{column}' (known: {', '.join(DIRECTIONS)})")
    return DIRECTIONS[column]


def nondominated(points: np.ndarray, maximise: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (ties and duplicates are all kept)."""
    pts = np.asarray(points, dtype=float)
    if pts.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(pts, maximise=list(maximise), keep_weakly=True), dtype=bool)


def pareto_mask(df: pd.DataFrame, objectives: Sequence[str], by: str | Sequence[str] | None = None) -> pd.Series:
    """Rows of ``df`` on the Pareto front of ``objectives`` (directions from :data:`DIRECTIONS`).

    ``by`` computes one front per group (e.g. ``"backbone"``); ``None`` gives one front across all rows.
    Rows that recorded an error or miss an objective are never on a front.
    """
    objectives = list(objectives)
    maximise = [direction(c) == MAXIMISE for c in objectives]
    mask = pd.Series(False, index=df.index)
    if not all(c in df.columns for c in objectives):
        return mask
    usable = ok_rows(df)[objectives].apply(pd.to_numeric, errors="coerce")
    usable = usable[np.isfinite(usable).all(axis=1)]
    if usable.empty:
        return mask
    if by is None:
        groups = [usable]
    else:
        keys = [by] if isinstance(by, str) else list(by)
        groups = [g for _, g in usable.groupby(df.loc[usable.index, keys].apply(tuple, axis=1))]
    for g in groups:
        mask.loc[g.index] = nondominated(g.to_numpy(), maximise)
    return mask


def pareto_front(df: pd.DataFrame, cost: str, error: str, by: str | Sequence[str] | None = None) -> pd.Series:
    """Rows on the (``cost``, ``error``) front: :func:`pareto_mask` of the two columns."""
    return pareto_mask(df, [cost, error], by=by)


def hypervolume(points: np.ndarray, ref: Sequence[float], maximise: Sequence[bool] | bool = False) -> float:
    """Hypervolume dominated by ``points`` and bounded by the reference point ``ref``."""
    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        return 0.0
    return float(moocore.hypervolume(pts, ref=np.asarray(ref, dtype=float), maximise=maximise))


def hypervolume_table(df: pd.DataFrame, cost: str = "gflops", error: str = "mpjpe_mm") -> pd.DataFrame:
    """Hypervolume of each (backbone/preset, strategy) front; highest first within a backbone.

    Seeds are averaged first. Columns: ``group, strategy, cells, front, ref_cost, ref_error,
    hypervolume, rank``, and ``precision`` after ``strategy`` where the rows hold several speed
    precisions (one front per precision, against the baseline at that precision). Empty when the rows
    hold no ``cost``, ``error`` or ``trivial_mpjpe_mm``.
    """
    several = varies_precision(df)
    keys = ["group", "strategy", PRECISION] if several else ["group", "strategy"]
    cols = [*keys, "cells", "front", "ref_cost", "ref_error", "hypervolume", "rank"]
    need = (cost, error, "trivial_mpjpe_mm")
    if not all(c in df.columns for c in need):
        return pd.DataFrame(columns=cols)
    agg = aggregate_seeds(df).dropna(subset=list(need))
    agg = agg.assign(_ref=baseline_values(agg, cost))
    rows = []
    for key, g in agg[(agg["pruner"] != BASELINE) & agg["_ref"].notna()].groupby(keys, sort=True):
        ref_cost, ref_error = float(g["_ref"].iloc[0]), float(g["trivial_mpjpe_mm"].mean())
        scaled_cost = g[cost] / ref_cost if direction(cost) == MINIMISE else ref_cost / g[cost]
        pts = np.column_stack([scaled_cost.to_numpy(), (g[error] / ref_error).to_numpy()])
        on_front = nondominated(pts, [False, False])
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "cells": len(g),
                "front": int(on_front.sum()),
                "ref_cost": ref_cost,
                "ref_error": ref_error,
                "hypervolume": hypervolume(pts[on_front], [1.0, 1.0]),
            }
        )
    out = pd.DataFrame(rows, columns=cols[:-1])
    if out.empty:
        return pd.DataFrame(columns=cols)
    within = ["group", PRECISION] if several else ["group"]  # strategies rank against each other per precision
    out = out.sort_values([*within, "hypervolume"], ascending=[*(True for _ in within), False], kind="stable")
    out["rank"] = out.groupby(within).cumcount() + 1
    return out.reset_index(drop=True)
