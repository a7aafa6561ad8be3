"""bench.report.frame: the notebook's row filter."""

from __future__ import annotations

import pandas as pd

from bench.report.frame import select_rows


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "backbone": ["mixste", "mixste", "mixste", "strided"],
            "pruner": ["none", "cluster", "cluster", "cluster"],
            "recoverer": ["none", "attention", "interpolation", "none"],
            "train_mode": ["none", "finetune", "none", "finetune"],
        }
    )


def test_select_rows_filters_on_the_train_mode_rows_carry():
    """Rows carry train_mode (never 'mode'): the filter must key on it, or it silently keeps everything."""
    df = _rows()
    assert select_rows(df, train_mode="finetune").index.tolist() == [1, 3]
    assert select_rows(df, backbone="mixste", strategy="cluster+interpolation").index.tolist() == [0, 2]
    assert select_rows(df).equals(df)
