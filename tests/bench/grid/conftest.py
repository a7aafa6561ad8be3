"""Fixtures of the grid tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from bench.grid import LocalExecutor, Task
from bench.grid.baselines import BaselineStore
from bench.grid.executors import Note
from bench.rows import Row


class CountingExecutor(LocalExecutor):
    """The local executor, recording the cell id of every task it is handed (``ran``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ran: list[str] = []

    def run(self, tasks: Sequence[Task], baselines: BaselineStore, note: Note | None = None) -> Iterator[Row]:
        self.ran.extend(t.cell.id for t in tasks)
        return super().run(tasks, baselines, note)


@pytest.fixture
def counting() -> CountingExecutor:
    return CountingExecutor()
