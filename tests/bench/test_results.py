"""bench.results.load: lists parsed, numeric dtypes, one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.results import ResultsError, load


def test_load_parses_lists_and_types(tmp_path):
    pd.DataFrame(
        {
            "cell_id": ["0012", "abcd"],
            "backbone": ["mixste", "mixste"],
            "preset": ["tiny", "tiny"],
            "pruner": ["none", "cluster"],
            "recoverer": ["none", "attention"],
            "tokens": ["[]", "[121, 81, 41]"],
            "depths": ["[]", "[2, 4, 6]"],
            "tokens_per_block": ["[27, 27]", "[27, 9]"],
            "error": [None, "ScheduleError: x"],
            "gflops": ["0.5", ""],
            "seed": [0, 1],
        }
    ).to_csv(tmp_path / "results.csv", index=False)
    for where in (tmp_path, tmp_path / "results.csv"):
        df = load(where)
        assert df["tokens"].tolist() == [[], [121, 81, 41]] and df["depths"].tolist() == [[], [2, 4, 6]]
        assert df["tokens_per_block"].tolist() == [[27, 27], [27, 9]]
        assert df["cell_id"].tolist() == ["0012", "abcd"]  # not read as a number
        assert df["error"].tolist() == ["", "ScheduleError: x"]
        assert pd.api.types.is_float_dtype(df["gflops"]) and pd.api.types.is_integer_dtype(df["seed"])


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(ResultsError, match=r"no results folder"):
        load(tmp_path / "nothing")
