"""The one accuracy rule: an MPJPE above 0.5 x trivial (own or the baseline's) is not presented as a result."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bench.report.frame import accuracy_notes, with_accuracy_notes
from bench.report.plots import figures, left_out
from bench.report.seeds import seed_table
from bench.report.tables import hot_table, render


def _row(backbone: str, pruner: str, recoverer: str, mode: str, mpjpe: float, trivial: float) -> dict[str, object]:
    tokens, depths = ([], []) if pruner == "none" else ([9], [1])
    return {
        "backbone": backbone,
        "preset": "tiny",
        "pruner": pruner,
        "recoverer": recoverer,
        "tokens": json.dumps(tokens),
        "depths": json.dumps(depths),
        "seed": 0,
        "label": f"{backbone}/tiny {pruner}+{recoverer}",
        "train_mode": mode,
        "baseline_key": f"key-{backbone}",
        "error": "",
        "params": 5e4,
        "gflops": 0.3 if pruner == "none" else 0.15,
        "fps": 900.0 if pruner == "none" else 1500.0,
        "mpjpe_mm": mpjpe,
        "pmpjpe_mm": 0.7 * mpjpe,
        "trivial_mpjpe_mm": trivial,
    }


def frame() -> pd.DataFrame:
    """mixste: a trained baseline (60 mm) and a fine-tuned cell at the mean pose (100 > 80 mm) and one fine
    (63 mm); motionbert: its baseline at the mean pose (151.5 vs 157.8 mm), so its pruned cell is no result."""
    return pd.DataFrame(
        [
            _row("mixste", "none", "none", "finetune", 60.0, 160.0),
            _row("mixste", "cluster", "attention", "finetune", 63.0, 160.0),
            _row("mixste", "uniform", "attention", "finetune", 100.0, 160.0),
            _row("motionbert", "none", "none", "finetune", 151.5, 157.8),
            _row("motionbert", "cluster", "attention", "finetune", 70.0, 157.8),
        ]
    )


def test_notes_name_the_row_or_its_baseline_at_the_mean_pose():
    notes = list(accuracy_notes(frame()))
    assert notes[0] == "" and notes[1] == ""
    assert notes[2] == "not off the mean pose: 100.0 mm vs trivial 160.0 mm (> 0.5 x trivial)"
    assert notes[3] == "not off the mean pose: 151.5 mm vs trivial 157.8 mm (> 0.5 x trivial)"
    assert notes[4] == "baseline not off the mean pose: 151.5 mm vs trivial 157.8 mm (> 0.5 x trivial)"
    masked = with_accuracy_notes(frame())
    assert masked["mpjpe_mm"].isna().tolist() == [False, False, True, True, True]
    assert masked["pmpjpe_mm"].isna().tolist() == [False, False, True, True, True]
    assert masked["gflops"].notna().all()  # cost stays a result


def test_hot_table_prints_a_dash_and_the_reason():
    t = hot_table(frame())
    f = t.frame.set_index(["Backbone", "Method"])
    assert f.loc[("mixste/tiny", "mixste"), "MPJPE (mm)"] == 60.0
    assert f.loc[("mixste/tiny", "cluster+attention"), "MPJPE (mm)"] == 63.0
    assert np.isnan(f.loc[("mixste/tiny", "uniform+attention"), "MPJPE (mm)"])
    assert np.isnan(f.loc[("motionbert/tiny", "cluster+attention"), "MPJPE (mm)"])
    assert np.isnan(f.loc[("motionbert/tiny", "cluster+attention"), "ΔMPJPE (%)"])
    assert f.loc[("motionbert/tiny", "cluster+attention"), "Note"].endswith(
        "baseline not off the mean pose: 151.5 mm vs trivial 157.8 mm (> 0.5 x trivial)"
    )
    assert f.loc[("mixste/tiny", "cluster+attention"), "Note"] == ""
    text = render(t, "md")
    assert "151.5" not in text.split("Note")[0]  # only the note mentions the raw number
    assert "100.0 mm vs trivial" in text and "–" in text


def test_seed_table_and_plots_leave_the_mean_pose_out():
    text = seed_table(frame())
    line = next(x for x in text.splitlines() if "motionbert/tiny cluster" in x)
    assert "—" in line and "baseline not off the mean pose" in line and "70" not in line.split("baseline not off")[0]
    lines = left_out(frame())
    assert len(lines) == 3 and any("motionbert/tiny cluster+attention" in x for x in lines)
    figs = figures(frame())
    mix = figs["mpjpe_vs_gflops_mixste-tiny"]
    legend = [t.get_text() for lg in mix.legends for t in lg.get_texts()]
    assert any(x.startswith("1 point(s) left out") for x in legend)
    assert "mpjpe_vs_gflops_motionbert-tiny" not in figs  # no accuracy point of it is a result
