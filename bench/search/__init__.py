"""Budgeted Pareto search over a grid's cells (Optuna multi-objective; issue 20, in progress).

A search is one more way of choosing cells on the grid path: the same planner, store and executors as
``run``. Every candidate's FLOPs and parameters are counted first on the meta device (free measures,
ordinary rows, never trials); each trial is then one cell, trained and evaluated through
:func:`bench.grid.run_grid`, whose store reuses a cell already measured. Optuna is an optional extra
(``pip install -e '.[search]'``). Sits above ``bench.grid`` and ``bench.report``; nothing imports it but
the CLI.
"""

from bench.search.run import SearchResult, run_search
from bench.search.space import Candidate, Constraint, SearchSpace, parse_where

__all__ = ["Candidate", "Constraint", "SearchResult", "SearchSpace", "parse_where", "run_search"]
