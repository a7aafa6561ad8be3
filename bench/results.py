"""Read a results folder into one typed table: the single entry point for reports and notebooks.

A grid writes ``results/<grid>/results.csv`` (one row per cell, see ``bench.grid.store``). :func:`load`
is the contract everything downstream reads through; how rows are stored may change behind it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

RESULTS_FILE = "results.csv"
LIST_COLUMNS = ("tokens", "depths", "tokens_per_block")
TEXT_COLUMNS = (
    "cell_id",
    "backbone",
    "preset",
    "pruner",
    "recoverer",
    "label",
    "torch",
    "error",
    "device",
    "eval_output",
    "data",
    "finished",
)


class ResultsError(ValueError):
    """No readable results where the user pointed (one-line message)."""


def results_csv(results_dir: str | os.PathLike[str]) -> Path:
    """The CSV of a results folder (a path to the CSV itself is accepted too)."""
    p = Path(results_dir)
    return p if p.suffix == ".csv" else p / RESULTS_FILE


def _as_list(v: Any) -> list[Any]:
    if isinstance(v, list):
        return v
    if v is None or (isinstance(v, float) and pd.isna(v)) or v == "":
        return []
    out = json.loads(v) if isinstance(v, str) else v
    return list(out) if isinstance(out, list | tuple) else [out]


def load(results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """All result rows of a results folder, one per cell.

    List-like columns (``tokens``, ``depths``, ``tokens_per_block``) are Python lists, text columns are
    strings (``error`` is ``""`` for a cell that succeeded) and every other column is numeric.
    """
    path = results_csv(results_dir)
    if not path.is_file():
        raise ResultsError(f"no {path.name} in {path.parent} (run a grid first: python run_bench.py run GRID)")
    try:
        df = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path}: not a readable results CSV ({str(e).splitlines()[0]})") from None
    for col in df.columns:
        if col in LIST_COLUMNS:
            try:
                df[col] = df[col].map(_as_list).astype(object)
            except json.JSONDecodeError as e:
                raise ResultsError(f"{path}: column '{col}' holds a value that is not a JSON list ({e})") from None
        elif col in TEXT_COLUMNS:
            df[col] = df[col].fillna("").astype(str)
        else:
            num = pd.to_numeric(df[col], errors="coerce")
            # a column the store does not know stays text unless every value is a number
            df[col] = num if num.notna().sum() == df[col].notna().sum() else df[col].fillna("").astype(str)
    if "error" not in df:
        df["error"] = ""
    return df.reset_index(drop=True)
