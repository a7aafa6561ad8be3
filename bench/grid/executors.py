"""Executors: run tasks (one cell, one measure) in this process, in worker processes, or as Ray tasks.

An executor maps a list of task cells (cell dicts whose ``measure`` holds one measure) to an iterator
of rows, in any order; each row carries ``cell_id`` and ``measure``. Crashes are data: with worker
processes, a task whose worker dies (segfault, ``os.abort()``, out-of-memory kill) becomes an error
row, the broken pool is replaced, and the other tasks go on. Workers watch their parent and exit
when it is gone, so a ``kill -9`` of the grid leaves no orphans.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pandas as pd

from bench.grid.spec import GridError

Executor = Callable[[list[dict[str, Any]]], Iterator[dict[str, Any]]]
Task = Callable[[dict[str, Any]], dict[str, Any]]


def run_task(cell: Mapping[str, Any], baseline_state: Any = None) -> dict[str, Any]:
    """Run one (cell, measure) task: :func:`bench.grid.cell.run_cell` plus its ``measure``."""
    from bench.grid.cell import run_cell

    run: Any = run_cell  # run_cell(cell, baseline_state) once the baselines module exists (contract, issue 9)
    row = run(cell, baseline_state) if baseline_state is not None else run(cell)
    row["measure"] = cell["measure"][0]
    return row


def error_row(cell: Mapping[str, Any], message: str) -> dict[str, Any]:
    """The row of a task that could not return one (its worker died)."""
    from bench.config import ModelConfig

    m = cell["model"]
    cfg = ModelConfig.from_dict(m)
    return {
        "cell_id": cell["cell_id"],
        "backbone": cfg.backbone,
        "preset": cfg.preset,
        "pruner": cfg.pruner,
        "recoverer": cfg.effective_recoverer,
        "tokens": str(list(cfg.tokens)),
        "depths": str(list(cfg.depths)),
        "seed": cell.get("seed", 0),
        "label": cfg.label(),
        "error": message[:500],
        "cell_seconds": float("nan"),
        "finished": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "measure": cell["measure"][0],
    }


def local_executor(cells: list[dict[str, Any]], task: Task = run_task) -> Iterator[dict[str, Any]]:
    """Run tasks one after another in this process."""
    for cell in cells:
        yield task(cell)


# ---- worker processes ------------------------------------------------------------------------------
def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.2)


def _worker_init(parent: int) -> None:
    """Worker start-up: exit as soon as the grid's process is gone (no orphans after ``kill -9``)."""
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _death(procs: list[Any]) -> str:
    for p in procs:
        code = getattr(p, "exitcode", None)
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        if code not in (None, 0):
            return f"exit status {code}"
    return "died"


def process_executor(workers: int, task: Task = run_task) -> Executor:
    """Run tasks in ``workers`` spawned processes, yielding rows as they finish.

    A broken pool (a worker died) is replaced. The tasks that were in flight are suspects: each runs
    again alone in a one-worker pool, and the one that kills that worker becomes an error row.
    """
    if workers < 1:
        raise GridError(f"--workers must be >= 1, got {workers}")

    def run(cells: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        import multiprocessing as mp

        pending: deque[dict[str, Any]] = deque(cells)
        suspects: deque[dict[str, Any]] = deque()
        ctx = mp.get_context("spawn")
        while pending or suspects:
            alone = bool(suspects)
            source = suspects if alone else pending
            n = 1 if alone else workers
            pool = ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),))
            inflight: dict[Future[dict[str, Any]], dict[str, Any]] = {}
            procs: list[Any] = []
            broken = False
            try:
                while (source or inflight) and not broken:
                    while source and len(inflight) < n:
                        c = source.popleft()
                        inflight[pool.submit(task, c)] = c
                        procs = list(getattr(pool, "_processes", {}).values()) or procs
                    done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                    for f in done:
                        c = inflight.pop(f)
                        try:
                            yield f.result()
                        except BrokenProcessPool:
                            broken = True
                            inflight[f] = c  # handled below with the others in flight
                        except Exception as e:  # the task raised outside run_cell's own guard
                            yield error_row(c, f"{type(e).__name__}: {' '.join(str(e).split())}")
                if broken:
                    wait(list(inflight))
                    for c in inflight.values():
                        if alone:
                            yield error_row(
                                c, f"WorkerDied: the worker process {_death(procs)} (crash, abort or out of memory)"
                            )
                        else:
                            suspects.append(c)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    return run


# ---- Ray ----------------------------------------------------------------------------------------
def ray_executor(
    address: str | None = None, num_cpus: int | None = None, cpus_per_task: float = 1.0, task: Task = run_task
) -> Executor:
    """Run tasks as Ray tasks (``pip install -e '.[ray]'``): ``address`` joins a cluster, else a local one starts.

    Each task declares ``cpus_per_task`` CPUs, and one GPU when its speed device is CUDA. The driver
    (this process) receives every row and alone writes them: no shared filesystem is needed.
    """

    def run(cells: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            import ray
        except ImportError:
            raise GridError("Ray is not installed: pip install -c constraints-cpu.txt -e '.[ray]'") from None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        started = not ray.is_initialized()
        if started:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        try:
            remote = ray.remote(task)
            refs: dict[Any, dict[str, Any]] = {}
            for c in cells:
                gpus = 1 if str(c.get("speed", {}).get("device", "cpu")).startswith("cuda") else 0
                refs[remote.options(num_cpus=cpus_per_task, num_gpus=gpus, max_retries=0).remote(c)] = c
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    yield ray.get(done[0])
                except Exception as e:  # a worker crash surfaces here: an error row
                    yield error_row(refs[done[0]], f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")
        finally:
            if started:
                ray.shutdown()

    return run
