"""Seed summaries: mean ± sd over seeds, each cell against its own baseline, targets."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.report.seeds import seed_table, summarise_seeds


def test_seed_summary_compares_each_cell_with_its_own_baseline():
    rows = []
    for seed, (base, ft, tf) in enumerate([(60.0, 63.0, 70.0), (70.0, 80.0, 84.0)]):
        key = f"k{seed}"
        common = {"seed": seed, "baseline_key": key, "trivial_mpjpe_mm": 200.0}
        rows += [
            {**common, "label": "m/tiny", "pruner": "none", "train_mode": "none", "mpjpe_mm": base},
            {**common, "label": "m/tiny cluster", "pruner": "cluster", "train_mode": "finetune", "mpjpe_mm": ft},
            {**common, "label": "m/tiny cluster+i", "pruner": "cluster", "train_mode": "none", "mpjpe_mm": tf},
        ]
    s = summarise_seeds(pd.DataFrame(rows)).set_index("label")
    assert s.loc["m/tiny", "seeds"] == 2 and s.loc["m/tiny", "MPJPE mm"] == "65.0 ± 7.1"
    assert s.loc["m/tiny", "ratio_mean"] == pytest.approx((60 / 200 + 70 / 200) / 2)
    assert s.loc["m/tiny cluster", "ratio_mean"] == pytest.approx((63 / 60 + 80 / 70) / 2)
    assert not s.loc["m/tiny cluster", "meets_all"]  # seed 1: 80 / 70 > 1.10
    assert s.loc["m/tiny cluster+i", "meets_all"] and s.loc["m/tiny cluster+i", "target"] == 1.25
    assert "65.0 ± 7.1" in seed_table(pd.DataFrame(rows))
    at_mean_pose = [{**r, "mpjpe_mm": 150.0} for r in rows]
    assert "nan" not in seed_table(pd.DataFrame(at_mean_pose))


def test_seed_summary_lists_each_backbone_baseline_first_then_finetuned_then_training_free():
    rows = []
    for bb in ("z", "a"):  # rows arrive out of order
        common = {"seed": 0, "baseline_key": bb, "trivial_mpjpe_mm": 200.0}
        rows += [
            {**common, "label": f"{bb}/tiny uniform", "pruner": "uniform", "train_mode": "none", "mpjpe_mm": 72.0},
            {**common, "label": f"{bb}/tiny cluster", "pruner": "cluster", "train_mode": "finetune", "mpjpe_mm": 71.0},
            {**common, "label": f"{bb}/tiny", "pruner": "none", "train_mode": "none", "mpjpe_mm": 70.0},
        ]
    s = summarise_seeds(pd.DataFrame(rows))
    assert s["label"].tolist() == [
        "a/tiny",
        "a/tiny cluster",
        "a/tiny uniform",
        "z/tiny",
        "z/tiny cluster",
        "z/tiny uniform",
    ]
    assert s["train_mode"].tolist() == ["baseline", "finetune", "none"] * 2
