"""Reporting: tables and plots drawn from stored result rows alone.

Owns what a person looks at. Reads result rows (pandas); imports ``bench.config`` for labels, never
``bench.grid``'s runner, ``bench.training`` or ``bench.cli``.
"""

from bench.report.pareto import hypervolume, hypervolume_table, pareto_front, pareto_mask
from bench.report.tables import ablation_tables, hot_table, render, summary_table

__all__ = [
    "ablation_tables",
    "hot_table",
    "hypervolume",
    "hypervolume_table",
    "pareto_front",
    "pareto_mask",
    "render",
    "summary_table",
]
