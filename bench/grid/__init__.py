"""Grids: a spec (YAML) expands into typed cells; each cell runs in isolation; rows go to a store.

Owns orchestration: parsing grid files, expansion into typed :class:`Cell` objects with stable ids (the
only place a cell is parsed), planning (every cell validated once, each model built on meta once), the
result store, the shared baselines, and the executors (in-process, process pool, Ray), which implement
one :class:`Executor` protocol over :class:`Task` objects (a cell and one measure). Imports everything below it
(``bench.config``, ``bench.measure``, ``bench.data``, ``bench.training``); never ``bench.report``
or ``bench.cli``.
"""

from bench.grid.cell import Baseline, Cell, Task, run_cell
from bench.grid.executors import Executor, LocalExecutor, local_executor, process_executor, ray_executor
from bench.grid.expand import expand, load_grid
from bench.grid.runner import Plan, plan_grid, run_grid
from bench.grid.spec import MEASURES, Grid, GridError, grid_source, packaged_grids
from bench.grid.store import ResultStore, load_rows

__all__ = [
    "MEASURES",
    "Baseline",
    "Cell",
    "Executor",
    "Grid",
    "GridError",
    "LocalExecutor",
    "Plan",
    "ResultStore",
    "Task",
    "expand",
    "grid_source",
    "load_grid",
    "load_rows",
    "local_executor",
    "packaged_grids",
    "plan_grid",
    "process_executor",
    "ray_executor",
    "run_cell",
    "run_grid",
]
