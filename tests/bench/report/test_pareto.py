"""Pareto fronts and hypervolume against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.report import hypervolume, hypervolume_table, pareto_front, pareto_mask
from bench.report.pareto import nondominated

# A(1,5) B(2,3) C(3,4) D(4,1) E=B(2,3) F(5,1): C is beaten by B, F ties D on error but costs more.
POINTS = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 1]], dtype=float)


def test_front_keeps_duplicates_and_drops_ties_that_lose():
    assert nondominated(POINTS, [False, False]).tolist() == [True, True, False, True, True, False]


def test_front_of_a_single_point_and_of_nothing():
    assert nondominated(np.array([[3.0, 7.0]]), [False, False]).tolist() == [True]
    assert nondominated(np.zeros((0, 2)), [False, False]).tolist() == []


def test_hypervolume_of_hand_made_sets():
    # y in [5,6]: 5 wide; y in [3,5]: 4 wide; y in [1,3]: 2 wide -> 5 + 8 + 4 = 17 (duplicates add nothing)
    assert hypervolume(POINTS, [6, 6]) == pytest.approx(17.0)
    assert hypervolume(np.array([[2.0, 3.0]]), [6, 6]) == pytest.approx(12.0)
    assert hypervolume(np.array([[7.0, 3.0]]), [6, 6]) == 0.0  # beyond the reference point
    # maximised first objective (FPS): (200 fps, 60 mm) and (100, 50) against (50 fps, 100 mm)
    pts = np.array([[200.0, 60.0], [100.0, 50.0]])
    assert hypervolume(pts, [50, 100], maximise=[True, False]) == pytest.approx(150 * 40 + 50 * 10)


def _rows(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"backbone": ["a"] * n, "preset": ["tiny"] * n, "error": [""] * n}
    return pd.DataFrame({**base, **cols})


def test_pareto_mask_directions_groups_and_errors():
    df = _rows(
        backbone=["a", "a", "a", "a", "b"],
        fps=[100.0, 200.0, 150.0, 200.0, 10.0],
        mpjpe_mm=[50.0, 60.0, 70.0, 60.0, 99.0],
        gflops=[1.0, 1.0, 1.0, 1.0, 1.0],
        error=["", "", "", "", ""],
    )
    assert pareto_mask(df, ["fps", "mpjpe_mm"], by="backbone").tolist() == [True, True, False, True, True]
    # across backbones b's point is beaten by all of a's
    assert pareto_mask(df, ["fps", "mpjpe_mm"]).tolist() == [True, True, False, True, False]
    df.loc[1, "error"] = "RuntimeError: x"
    assert pareto_mask(df, ["fps", "mpjpe_mm"]).tolist() == [True, False, False, True, False]
    # three objectives: cheaper FLOPs rescue the slow, inaccurate row 2
    df.loc[2, "gflops"] = 0.5
    assert pareto_mask(df, ["gflops", "fps", "mpjpe_mm"]).tolist() == [True, False, True, True, False]


def test_pareto_front_old_name_still_works():
    df = _rows(gflops=[0.0712, 0.037, 0.037, 0.5], mpjpe_mm=[50.0, 55.0, 60.0, 40.0])
    assert pareto_front(df, "gflops", "mpjpe_mm").tolist() == [True, True, False, True]


def test_hypervolume_table_ranks_strategies_against_baseline_and_trivial_error():
    df = _rows(
        pruner=["none", "cluster", "cluster", "cluster", "uniform"],
        recoverer=["none", "attention", "attention", "attention", "attention"],
        tokens=["[]", "[9]", "[3]", "[13]", "[9]"],
        depths=["[]", "[1]", "[1]", "[2]", "[1]"],
        gflops=[1.0, 0.5, 0.25, 1.2, 0.5],
        mpjpe_mm=[40.0, 60.0, 80.0, 45.0, 90.0],
        trivial_mpjpe_mm=[100.0] * 5,
    )
    hv = hypervolume_table(df)
    assert hv["strategy"].tolist() == ["cluster+attention", "uniform+attention"]
    # cluster scaled: (0.5, 0.6), (0.25, 0.8) and (1.2, 0.45) beyond the reference -> 0.5*0.2 + 0.75*0.2
    assert hv["hypervolume"].tolist() == pytest.approx([0.25, 0.05])
    assert hv["rank"].tolist() == [1, 2]
    assert hv["ref_cost"].tolist() == [1.0, 1.0] and hv["ref_error"].tolist() == [100.0, 100.0]
    assert hypervolume_table(df.drop(columns="trivial_mpjpe_mm")).empty


def test_hypervolume_table_averages_seeds(synthetic):
    hv = hypervolume_table(synthetic, cost="fps")
    assert set(hv["group"]) == {"mixste/tiny", "strided/tiny"} and (hv["cells"] == 6).all()
    assert ((hv["hypervolume"] > 0) & (hv["hypervolume"] < 1)).all()
    # cluster beats uniform on both backbones by construction (uniform: +3 mm at every cell)
    assert hv[hv["rank"] == 1]["strategy"].str.startswith("cluster").all()
