"""Grids: a spec (YAML) expands into cells; each cell runs in isolation; rows go to a store.

Owns orchestration: parsing and validating grid files, expansion into cells with stable ids, the
result store, and the executors (in-process, process pool, Ray). Imports everything below it
(``bench.config``, ``bench.measure``, ``bench.data``, ``bench.training``); never ``bench.report``
or ``bench.cli``.
"""

from bench.grid.cell import run_cell
from bench.grid.executors import Executor, local_executor, process_executor, ray_executor
from bench.grid.expand import expand
from bench.grid.runner import run_grid
from bench.grid.spec import MEASURES, Grid, GridError, load_grid
from bench.grid.store import ResultStore

__all__ = [
    "MEASURES",
    "Executor",
    "Grid",
    "GridError",
    "ResultStore",
    "expand",
    "load_grid",
    "local_executor",
    "process_executor",
    "ray_executor",
    "run_cell",
    "run_grid",
]
