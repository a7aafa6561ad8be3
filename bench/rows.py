"""The row schema: which columns a stored result row has and how they read back (one owner).

A grid writes one record per (cell, measure) (``bench.grid.store``); records of one cell merge into one
row on ``IDENTITY`` (``bench.grid.load_rows``); ``bench.results.load`` types the columns for reports and
notebooks. A leaf: imports nothing of the suite.
"""

from __future__ import annotations

#: the columns every record of a cell carries, and on which a cell's measures merge into one row
IDENTITY = ("cell_id", "backbone", "preset", "pruner", "recoverer", "tokens", "depths", "seed", "label")
#: columns holding lists (JSON lists in a CSV)
LIST_COLUMNS = ("tokens", "depths", "tokens_per_block")
#: columns that stay text when a table is read back (everything else that parses as a number is one)
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

__all__ = ["IDENTITY", "LIST_COLUMNS", "TEXT_COLUMNS"]
