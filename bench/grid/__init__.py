"""Grids: a spec (YAML) expands into cells; each cell runs in isolation; rows go to a store.

Owns orchestration: parsing and validating grid files, expansion into cells with stable ids, the
result store, and the executors (in-process, process pool, Ray). Imports everything below it
(``bench.config``, ``bench.measure``, ``bench.data``, ``bench.training``); never ``bench.report``
or ``bench.cli``.
"""

from bench.grid.cell import run_cell
from bench.grid.executors import Executor, local_executor, process_executor, ray_executor
from bench.grid.expand import expand, load_grid
from bench.grid.runner import Plan, plan_grid, run_grid
from bench.grid.spec import MEASURES, Grid, GridError, grid_source, packaged_grids
from bench.grid.store import ResultStore, load_rows

__all__ = [
    "MEASURES",
    "Executor",
    "Grid",
    "GridError",
    "Plan",
    "ResultStore",
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
