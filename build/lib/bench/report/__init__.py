"""Reporting: tables and plots drawn from stored result rows alone.

Owns what a person looks at. Reads result rows (pandas); imports ``bench.config`` for labels, never
``bench.grid``'s runner, ``bench.training`` or ``bench.cli``.
"""

from bench.report.tables import pareto_front, plot_pareto, summary_table

__all__ = ["pareto_front", "plot_pareto", "summary_table"]
