"""Run a grid: the cells not yet stored, each row on disk before the next cell starts."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.grid.baselines import BaselineCache, attach_checkpoints, ensure_baselines
from bench.grid.executors import Executor, local_executor
from bench.grid.expand import expand
from bench.grid.spec import Grid
from bench.grid.store import ResultStore


def run_grid(
    grid: Grid,
    out_csv: str | os.PathLike[str],
    executor: Executor = local_executor,
    progress: Callable[[dict[str, Any], int, int], None] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Run the cells of ``grid`` not yet in ``out_csv``; each row is on disk before the next starts."""
    store = ResultStore(out_csv)
    done = store.done_ids()
    todo = [c for c in expand(grid) if c["cell_id"] not in done]
    if limit is not None:
        todo = todo[:limit]
    if any(c.get("baseline") for c in todo):  # the shared baselines, trained once, before their cells
        cache = BaselineCache(Path(out_csv).parent / "baselines")
        ensure_baselines(todo, cache)
        attach_checkpoints(todo, cache)
    for i, row in enumerate(executor(todo), 1):
        store.append(row)
        if progress is not None:
            progress(row, i, len(todo))
    return store.read()
