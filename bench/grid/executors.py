"""Executors: run tasks (one cell, one measure) in this process, in worker processes, or as Ray tasks.

An executor maps a list of task cells (cell dicts whose ``measure`` holds one measure) to an iterator
of rows, in any order; each row carries ``cell_id`` and ``measure``. Crashes are data: with worker
processes, a task whose worker dies (segfault, ``os.abort()``, out-of-memory kill) becomes an error
row, the broken pool is replaced, and the other tasks go on. Workers watch their parent and exit
when it is gone, so a ``kill -9`` of the grid leaves no orphans.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import one_line
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
    """The row of a task that could not return one (its worker died): the cell's identity, as every row has."""
    from bench.grid.cell import identity_row

    return {
        **identity_row(cell),
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


def _death(procs: list[Any], wait_s: float = 5.0) -> str:
    """How a dead pool's worker ended (the signal or exit status), once the OS has reported its exit."""
    deadline = time.monotonic() + wait_s
    while all(getattr(p, "exitcode", None) in (None, 0) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)  # the pool notices a death before the dying process has been reaped
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


class ProcessExecutor:
    """The process-pool executor: runs grid tasks (``__call__``) and trains shared baselines (``map``).

    ``map`` trains the grid's baselines ``workers`` at a time in spawned processes, before any cell runs
    (each baseline trains once; its ``train_state.pt`` still resumes a killed run)."""

    def __init__(self, run: Executor, workers: int) -> None:
        self._run, self.workers = run, workers

    def __call__(self, cells: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        return self._run(cells)

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]:
        """``fn`` over ``iterables`` in the pool, yielded in input order as each is ready (the caller saves and
        reports each baseline while the others still train); a dead worker is one GridError line."""
        import multiprocessing as mp

        args = [list(it) for it in iterables]
        n = min(self.workers, max(1, len(args[0]) if args else 1))
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)) as pool:
            try:
                yield from pool.map(fn, *args)
            except BrokenProcessPool:
                raise GridError(
                    "a worker died while training a shared baseline (crash or out of memory); rerun to resume it"
                ) from None


def process_executor(workers: int, task: Task = run_task) -> ProcessExecutor:
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
                            yield error_row(c, f"{type(e).__name__}: {one_line(e)}")
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

    return ProcessExecutor(run, workers)


# ---- Ray ----------------------------------------------------------------------------------------
def task_resources(cell: Mapping[str, Any], cpus_per_task: float = 1.0) -> dict[str, float]:
    """What a task declares to Ray: its CPUs (its measure's threads, else ``cpus_per_task``); a GPU for CUDA speed."""
    measure = cell["measure"][0]
    section = cell.get("speed") if measure == "speed" else cell.get("train") if measure == "accuracy" else None
    threads = (section or {}).get("threads")
    gpus = 1.0 if measure == "speed" and str((cell.get("speed") or {}).get("device", "cpu")).startswith("cuda") else 0.0
    return {"num_cpus": float(threads or cpus_per_task), "num_gpus": gpus}


class RayExecutor:
    """Run tasks as Ray tasks (``pip install -e '.[ray]'``): ``address`` joins a cluster, else a local one starts.

    Each task declares its CPUs, and one GPU when its speed device is CUDA (:func:`task_resources`).
    The driver (this process) receives every row and alone writes them: no shared filesystem is needed.
    Baselines are task dependencies: one remote ``train_baseline(desc)`` per baseline key not in the
    driver's cache, its ObjectRef passed as ``baseline_state`` to every dependent cell task; the driver
    saves each returned state into the cache (``bench.grid.baselines.BaselineCache``).
    """

    handles_baselines = True

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        cpus_per_task: float = 1.0,
        task: Callable[..., dict[str, Any]] = run_task,
        train_baseline: Callable[..., Any] | None = None,
        cache_factory: Callable[[Path], Any] | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.address, self.num_cpus, self.cpus_per_task = address, num_cpus, cpus_per_task
        self.task, self.train_baseline, self.cache_factory = task, train_baseline, cache_factory
        self.init_kwargs = dict(init_kwargs or {})

    def _baselines(self, ray: Any, cells: list[dict[str, Any]], root: Path | None) -> tuple[Any, dict[str, Any], dict]:
        """(cache, {key: ObjectRef of its state}, {training ref: key}) for the baselines the accuracy tasks need."""
        needs = [c for c in cells if c.get("baseline") and "accuracy" in c["measure"]]
        if not needs:
            return None, {}, {}
        if self.cache_factory is not None:
            cache = self.cache_factory(root or Path("results") / "baselines")
        else:
            from bench.grid.baselines import BaselineCache

            cache = BaselineCache(root or Path("results") / "baselines")
        train = self.train_baseline
        if train is None:
            from bench.training.baselines import train_baseline

            train = train_baseline
        remote_train = ray.remote(train)
        state_refs: dict[str, Any] = {}
        training: dict[Any, str] = {}
        for c in needs:
            key = c["baseline"]["key"]
            if key in state_refs:
                continue
            state = cache.load(key)
            if state is not None:
                state_refs[key] = ray.put(state)
                continue
            desc = {k: v for k, v in c["baseline"].items() if k != "checkpoint"}
            threads = (desc.get("train") or {}).get("threads")
            ref = remote_train.options(num_cpus=float(threads or self.cpus_per_task), max_retries=0).remote(desc)
            state_refs[key] = ref
            training[ref] = key
        return cache, state_refs, training

    def __call__(self, cells: list[dict[str, Any]], baseline_root: Path | None = None) -> Iterator[dict[str, Any]]:
        try:
            import ray
        except ImportError:
            raise GridError("Ray is not installed: pip install -c constraints-cpu.txt -e '.[ray]'") from None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        started = not ray.is_initialized()
        if started:
            if self.address:
                ray.init(address=self.address, log_to_driver=False, **self.init_kwargs)
            else:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False, **self.init_kwargs)
        try:
            cache, state_refs, training = self._baselines(ray, cells, baseline_root)
            remote = ray.remote(self.task)
            refs: dict[Any, dict[str, Any]] = {}
            for c in cells:
                opts = task_resources(c, self.cpus_per_task)
                needs = c.get("baseline") and "accuracy" in c["measure"]
                state = state_refs.get(c["baseline"]["key"]) if needs else None
                args = (c,) if state is None else (c, state)
                refs[remote.options(**opts, max_retries=0).remote(*args)] = c
            pending = [*training, *refs]
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ref = done[0]
                if ref in training:
                    with contextlib.suppress(Exception):  # a failure: its dependent cells record the cause
                        cache.save(training[ref], ray.get(ref))  # the driver alone writes
                    continue
                try:
                    yield ray.get(ref)
                except Exception as e:  # a worker crash or a failed baseline surfaces here: an error row
                    yield error_row(refs[ref], f"{type(e).__name__}: {one_line(e)[:300]}")
        finally:
            if started:
                ray.shutdown()


def ray_executor(
    address: str | None = None, num_cpus: int | None = None, cpus_per_task: float = 1.0, task: Task = run_task
) -> RayExecutor:
    """A :class:`RayExecutor`: ``address`` joins a cluster (``auto`` or ``host:port``), else a local instance starts."""
    return RayExecutor(address, num_cpus, cpus_per_task, task)
