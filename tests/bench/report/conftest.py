"""Fixtures: a small synthetic results frame with accuracy, speed and two seeds (for report tests)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

T = 27


def synthetic_results(seeds: tuple[int, ...] = (0, 1)) -> pd.DataFrame:
    """Two tiny backbones: the baseline and cluster/uniform pruning at n in {3, 9, 13}, k in {1, 2}; one failed cell."""
    rng = np.random.default_rng(0)
    rows = []
    for backbone, base_g, base_fps, base_mp, rec in (
        ("mixste", 0.30, 900.0, 60.0, "attention"),
        ("strided", 0.20, 1500.0, 65.0, "none"),
    ):
        cells: list[tuple[str, str, list[int], list[int]]] = [("none", "none", [], [])]
        cells += [(p, rec, [n], [k]) for p in ("cluster", "uniform") for n in (3, 9, 13) for k in (1, 2)]
        for pruner, recoverer, tokens, depths in cells:
            frac = 1.0 if not tokens else depths[0] / 4 + (1 - depths[0] / 4) * tokens[0] / T
            penalty = 0.0 if not tokens else 30 * (1 - tokens[0] / T) / depths[0] + (3 if pruner == "uniform" else 0)
            for seed in seeds:
                mpjpe = base_mp + penalty + rng.normal(0, 1)
                rows.append(
                    {
                        "cell_id": f"{backbone}-{pruner}-{tokens}-{depths}-{seed}",
                        "backbone": backbone,
                        "preset": "tiny",
                        "pruner": pruner,
                        "recoverer": recoverer,
                        "tokens": json.dumps(tokens),
                        "depths": json.dumps(depths),
                        "seed": seed,
                        "label": f"{backbone}/tiny {pruner}",
                        "error": "",
                        "params": 5e4,
                        "gflops": base_g * frac,
                        "gflops_paper": 0.9 * base_g * frac,
                        "tokens_per_block": json.dumps([T] * 4),
                        "latency_ms": 1.0,
                        "fps": base_fps / frac * (0.8 + 0.05 * rng.random()),
                        "mpjpe_mm": mpjpe,
                        "pmpjpe_mm": 0.7 * mpjpe,
                        "trivial_mpjpe_mm": 200.0,  # every MPJPE here is a result (<= 0.5 x trivial)
                        "device": "cpu",
                        "threads": 1,
                        "speed_batch": 1,
                    }
                )
    failed = dict(rows[-1], cell_id="failed", error="ScheduleError: depth 9 is outside 1..3")
    failed.update(gflops=np.nan, fps=np.nan, mpjpe_mm=np.nan, pmpjpe_mm=np.nan)
    rows.append(failed)
    return pd.DataFrame(rows)


@pytest.fixture
def results_dir(tmp_path):
    """A results folder holding the synthetic rows as results.csv (what a grid writes)."""
    folder = tmp_path / "synthetic"
    folder.mkdir()
    synthetic_results().to_csv(folder / "results.csv", index=False)
    return folder


@pytest.fixture
def synthetic(results_dir) -> pd.DataFrame:
    """The synthetic rows as :func:`bench.results.load` returns them."""
    from bench.results import load

    return load(results_dir)
