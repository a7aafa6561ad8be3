"""Executors: run cells in this process, in a process pool, or as Ray tasks, yielding rows."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from bench.grid.cell import run_cell
from bench.grid.spec import GridError

Executor = Callable[[list[dict[str, Any]]], Iterator[dict[str, Any]]]


def local_executor(cells: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Run cells one after another in this process."""
    for cell in cells:
        yield run_cell(cell)


def process_executor(workers: int) -> Executor:
    """Run cells in ``workers`` processes (spawned), yielding rows as they finish."""

    def run(cells: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        import multiprocessing as mp
        from concurrent.futures import as_completed

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(run_cell, c) for c in cells]
            for f in as_completed(futures):
                yield f.result()

    return run


def ray_executor(address: str | None = None, num_cpus: int | None = None) -> Executor:
    """Run cells as Ray tasks (``pip install -e '.[ray]'``); ``address`` joins an existing cluster."""

    def run(cells: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            import ray
        except ImportError:
            raise GridError("Ray is not installed: pip install -c constraints-cpu.txt -e '.[ray]'") from None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        started = not ray.is_initialized()
        if started:
            ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        try:
            remote = ray.remote(num_cpus=1)(run_cell)
            pending = [remote.remote(c) for c in cells]
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
        finally:
            if started:
                ray.shutdown()

    return run
