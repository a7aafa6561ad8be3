"""Read a results folder into one typed table: the single entry point for reports and notebooks.

A grid writes ``results/<grid>/`` (one JSON-lines file per measure, see ``bench.grid.store``), merged
into one row per cell by :func:`bench.grid.load_rows`. :func:`load` is the contract everything
downstream reads through; how rows are stored may change behind it. A CSV exported from such a
table (``load(dir).to_csv(...)``) loads too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import UserError
from bench.rows import LIST_COLUMNS, TEXT_COLUMNS


class ResultsError(UserError, ValueError):
    """No readable results where the user pointed (one-line message)."""


EXPORT_FILE = "results.csv"  # a merged table exported next to the records (``export``)


def has_results(results_dir: str | os.PathLike[str]) -> bool:
    """True when ``results_dir`` holds result records (or an exported ``results.csv``)."""
    path = Path(results_dir)
    if path.is_file():
        return True
    return path.is_dir() and (any(path.glob("*.jsonl")) or (path / EXPORT_FILE).is_file())


def export(results_dir: str | os.PathLike[str], cells: Collection[str] | None = None) -> Path:
    """Write the merged one-row-per-cell table of a results folder to ``results.csv`` beside it
    (only the rows of ``cells`` when given: the cell ids of the grid that last ran there)."""
    folder = Path(results_dir)
    df = load(folder)
    if cells is not None:
        df = df[df["cell_id"].isin(set(cells))].reset_index(drop=True)
    out = folder / EXPORT_FILE
    tmp = out.with_name(out.name + ".tmp")
    df.assign(**{c: df[c].map(json.dumps) for c in LIST_COLUMNS if c in df}).to_csv(tmp, index=False)
    os.replace(tmp, out)
    return out


def _read(results_dir: str | os.PathLike[str], note: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, Path]:
    """The raw rows of a results folder (or of an exported CSV) and the path read."""
    from bench.grid import GridError, load_rows

    path = Path(results_dir)
    if path.is_file():
        try:
            return pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}), path
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise ResultsError(f"{path}: not a readable results CSV ({str(e).splitlines()[0]})") from None
    if not path.is_dir():
        raise ResultsError(f"no results folder '{path}' (run a grid first: python run_bench.py run GRID)")
    if not any(path.glob("*.jsonl")) and (path / EXPORT_FILE).is_file():
        return _read(path / EXPORT_FILE)
    try:
        df = load_rows(path, note=note)
    except GridError as e:
        raise ResultsError(str(e)) from None
    if df.empty:
        raise ResultsError(f"no result rows in {path} (run a grid first: python run_bench.py run GRID)")
    return df, path


def _as_list(v: Any) -> list[Any]:
    if isinstance(v, list):
        return v
    if v is None or (isinstance(v, float) and pd.isna(v)) or v == "":
        return []
    out = json.loads(v) if isinstance(v, str) else v
    return list(out) if isinstance(out, list | tuple) else [out]


def load(results_dir: str | os.PathLike[str], note: Callable[[str], None] | None = None) -> pd.DataFrame:
    """All result rows of a results folder, one per cell.

    List-like columns (``tokens``, ``depths``, ``tokens_per_block``) are Python lists, text columns are
    strings (``error`` is ``""`` for a cell that succeeded) and every other column is numeric. ``note``
    hears the record lines that were skipped (not records).
    """
    df, path = _read(results_dir, note)
    for col in df.columns:
        if col in LIST_COLUMNS:
            try:
                df[col] = df[col].map(_as_list).astype(object)
            except json.JSONDecodeError as e:
                raise ResultsError(f"{path}: column '{col}' holds a value that is not a JSON list ({e})") from None
        elif col in TEXT_COLUMNS:
            df[col] = df[col].fillna("").astype(str)
        elif pd.api.types.is_datetime64_any_dtype(df[col]):
            continue
        else:
            num = pd.to_numeric(df[col], errors="coerce")
            # a column the store does not know stays text unless every value is a number
            df[col] = num if num.notna().sum() == df[col].notna().sum() else df[col].fillna("").astype(str)
    if "error" not in df:
        df["error"] = ""
    return df.reset_index(drop=True)
