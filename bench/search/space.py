"""The search space: a grid's planned cells as candidates, free-measure constraints, and a conditional
Optuna space whose every sample is a planned cell (an impossible combination is never proposed)."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.grid.cell import Cell
from bench.grid.spec import GridError

#: the columns a constraint may name: the free measures, known before any trial
FREE = ("gflops", "params", "gflops_per_frame", "gflops_paper")
_OPS: Mapping[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}


@dataclass(frozen=True)
class Constraint:
    """``column op value`` on a free measure, e.g. ``gflops<=150``."""

    column: str
    op: str
    value: float

    def holds(self, free: Mapping[str, float]) -> bool:
        return bool(_OPS[self.op](float(free[self.column]), self.value))

    def __str__(self) -> str:
        return f"{self.column}{self.op}{self.value:g}"


def parse_where(texts: Sequence[str]) -> list[Constraint]:
    """``["gflops<=150", "params<1e6"]`` -> constraints; anything else is one :class:`GridError` line."""
    out = []
    for text in texts:
        m = re.fullmatch(r"\s*([a-z_]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*", text)
        if m is None:
            raise GridError(f"--where {text!r}: give COLUMN<=VALUE (or <, >=, >) on a free measure")
        column, op, value = m.groups()
        if column not in FREE:
            raise GridError(f"--where {text!r}: {column} is not a free measure (free: {', '.join(FREE)})")
        try:
            out.append(Constraint(column, op, float(value)))
        except ValueError:
            raise GridError(f"--where {text!r}: {value!r} is not a number") from None
    return out


@dataclass(frozen=True)
class Candidate:
    """One cell a trial may choose, with its free measures and the axis values that name it."""

    cell: Cell
    free: Mapping[str, float]

    @property
    def axes(self) -> tuple[tuple[str, str], ...]:
        """(axis, value) from the most to the least general: the order of the conditional choices."""
        m = self.cell.model
        schedule = ",".join(f"{t}@{d}" for t, d in zip(m.tokens, m.depths, strict=False)) or "-"
        options = json.dumps([m.overrides, m.pruner_options, m.recoverer_options], default=str)
        return (
            ("backbone", f"{m.backbone}/{m.preset}"),
            ("pruner", m.pruner),
            ("recoverer", m.effective_recoverer),
            ("mode", self.cell.train.mode),
            ("schedule", schedule),
            ("options", options),
        )


class SearchSpace:
    """The candidates of a plan that meet the constraints, sampled axis by axis.

    Each choice is an Optuna categorical named by its axis and the choices still open
    (``schedule:0.11@1|0.33@1|...``): where the grid offers the same choices in every context (the usual
    case) the parameter is one and the sampler learns across contexts (a token count that is good with one
    pruner is tried with the others); where an impossible region narrows them it is another parameter. So a
    parameter's choices never change between trials, and every path through the choices ends at a planned
    cell."""

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        if not candidates:
            raise GridError("no cell of the grid meets the search's constraints")
        self.candidates = list(candidates)

    def suggest(self, trial: Any) -> Candidate:
        """The candidate ``trial`` (an Optuna trial) chooses."""
        pool = self.candidates
        for level in range(len(pool[0].axes)):
            axis = pool[0].axes[level][0]
            values = sorted({c.axes[level][1] for c in pool})
            name = f"{axis}:{'|'.join(values)}"
            value = values[0] if len(values) == 1 else trial.suggest_categorical(name, values)
            pool = [c for c in pool if c.axes[level][1] == value]
        return pool[0]

    def by_id(self, cell_id: str) -> Candidate | None:
        return next((c for c in self.candidates if c.cell.id == cell_id), None)
