"""The row schema: which columns a stored result row has and how they read back (one owner).

A grid writes one record per (cell, measure) (``bench.grid.store``); records of one cell merge into one
row on ``IDENTITY`` (``bench.grid.load_rows``); ``bench.results.load`` types the columns for reports and
notebooks. A leaf: imports nothing of the suite.
"""

from __future__ import annotations

from typing import Any

#: one stored record: a cell's identity columns plus one measure's fields (plain data: the store's unit)
Row = dict[str, Any]

#: the columns every record of a cell carries, and on which a cell's measures merge into one row
IDENTITY = ("cell_id", "backbone", "preset", "pruner", "recoverer", "tokens", "depths", "seed", "label")
#: columns of a stored record that say how it was made (its resume key, its measure, the torch version) and that
#: the merged one-row-per-cell view leaves out
RECORD_ONLY = ("key", "measure", "torch")
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
    "aggregation",
    "per_sequence",
    "precision_note",
    "compile",
    "compile_error",
    "finished",
)
#: what a speed row carries from :meth:`SpeedResult.to_dict` and the paired speedups. ``latency_ms`` and
#: ``speedup`` are per call at ``speed_batch`` (1); ``fps`` is the throughput, output frames per second at
#: ``throughput_batch``, with ``throughput_speedup`` from the same rounds (``latency_fps``: the rate at batch 1)
SPEED_FIELDS = {
    "latency_ms_median": "latency_ms",
    "latency_ms_iqr": "latency_iqr_ms",
    "fps": "latency_fps",
    "throughput_fps": "fps",
    "throughput_batch": "throughput_batch",
    "throughput_ms_median": "throughput_ms",
    "throughput_ms_iqr": "throughput_iqr_ms",
    "throughput_speedup": "throughput_speedup",
    "throughput_speedup_q25": "throughput_speedup_q25",
    "throughput_speedup_q75": "throughput_speedup_q75",
    "throughput_speedup_iqr": "throughput_speedup_iqr",
    "throughput_speedup_rounds": "throughput_speedup_rounds",
    "batch": "speed_batch",
    "threads": "threads",
    "device": "device",
    "device_name": "device_name",
    "precision": "precision",
    "precision_note": "precision_note",
    "driver": "driver",
    "cuda": "cuda",
    "speedup": "speedup",
    "speedup_q25": "speedup_q25",
    "speedup_q75": "speedup_q75",
    "speedup_iqr": "speedup_iqr",
    "speedup_of_medians": "speedup_of_medians",
    "speedup_rounds": "speedup_rounds",
    "iqr_over_median": "latency_iqr_over_median",
    # the compiled form of the same configuration, timed in the same rounds (speed.compile: [none, inductor])
    "compile": "compile",
    "compile_error": "compile_error",
    "compile_s": "compile_s",
    "compiled_rel_err": "compiled_rel_err",
    "compiled_latency_ms": "compiled_latency_ms",
    "compiled_latency_iqr_ms": "compiled_latency_iqr_ms",
    "compiled_fps": "compiled_fps",
    "compiled_speedup": "compiled_speedup",
    "compiled_speedup_iqr": "compiled_speedup_iqr",
    "compiled_throughput_speedup": "compiled_throughput_speedup",
    "compiled_over_eager": "compiled_over_eager",
}

#: the other columns a record holds as text; every column not named here holds a number (or null)
_TEXT_FIELDS = frozenset((*TEXT_COLUMNS, *RECORD_ONLY, *LIST_COLUMNS, "train_mode", "baseline_key", "device_name"))
_TEXT_FIELDS |= {"precision", "precision_note", "driver", "cuda"}
#: the largest seed a record may carry (numpy's and the data generator's seeds are 32-bit)
MAX_SEED = 2**32 - 1


def record_problem(rec: Any) -> str:
    """Why ``rec`` (one parsed line of a record file) is not a result record, or '' when it is one: a JSON
    object with a text ``cell_id`` and every :data:`IDENTITY` column, text in the text columns (lists as
    JSON text), a number or null in every other column, and a seed in [0, MAX_SEED]."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if not isinstance(rec.get("cell_id"), str) or not rec["cell_id"]:
        return "no cell_id"
    missing = [k for k in IDENTITY if k not in rec]
    if missing:
        return f"no {missing[0]}"
    for k, v in rec.items():
        if v is None:
            continue
        if k in _TEXT_FIELDS:
            if not isinstance(v, str):
                return f"{k} is {type(v).__name__}, not text"
            if k in LIST_COLUMNS and not _number_list(v):
                return f"{k} is not a list of numbers"
        elif isinstance(v, bool) or not isinstance(v, int | float):
            return f"{k} is {type(v).__name__}, not a number"
    seed = rec.get("seed")
    if seed is not None and (not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        return f"seed {seed!r} is not an integer in [0, 2^32)"
    return ""


def _number_list(text: str) -> bool:
    import json

    try:
        v = json.loads(text)
    except ValueError:
        return False
    return isinstance(v, list) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)


__all__ = [
    "IDENTITY",
    "LIST_COLUMNS",
    "MAX_SEED",
    "RECORD_ONLY",
    "SPEED_FIELDS",
    "TEXT_COLUMNS",
    "Row",
    "record_problem",
]
