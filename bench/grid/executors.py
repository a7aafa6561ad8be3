"""Executors: run a grid's tasks (one cell, one measure) in this process, in worker processes, or as Ray tasks.

Every executor implements :class:`Executor`: ``run(tasks, baselines, note)`` trains the shared baselines
the accuracy tasks need (once each, into the cache; on Ray as task dependencies) and yields one row per
task, in any order. Crashes are data: with worker processes, a task whose worker dies (segfault,
``os.abort()``, out-of-memory kill) becomes an error row, the broken pool is replaced, and the other
tasks go on. Workers watch their parent and exit when it is gone, so a ``kill -9`` of the grid leaves
no orphans.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from bench.errors import one_line
from bench.grid.baselines import BaselineStore, baselines_of, discard_unusable, prepare_baselines
from bench.grid.cell import Task, error_row, run_cell
from bench.grid.spec import GridError
from bench.rows import Row

#: one task to one row (in a worker: it must be importable or picklable); Ray also hands it the baseline's state
TaskFn = Callable[..., Row]
#: hears one line per shared baseline as it starts and ends (the CLI prints them)
Note = Callable[[str], None]


class Executor(Protocol):
    """Runs a grid's tasks and the shared baselines they need. ``remote``: its tasks run on other machines
    (their speed is timed there, one by one, and a CUDA speed device need not be on this one)."""

    remote: bool

    def run(self, tasks: Sequence[Task], baselines: BaselineStore, note: Note | None = None) -> Iterator[Row]:
        """One row per task, in any order; each accuracy task of a pruned cell starts from its baseline."""
        ...


class LocalExecutor:
    """Tasks one after another in this process (baselines first, one after the other)."""

    remote = False

    def __init__(self, task: TaskFn = run_cell) -> None:
        self.task = task

    def run(self, tasks: Sequence[Task], baselines: BaselineStore, note: Note | None = None) -> Iterator[Row]:
        for t in prepare_baselines(tasks, baselines, map, note):
            yield self.task(t)


local_executor = LocalExecutor()


# ---- worker processes ------------------------------------------------------------------------------
def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.2)


def _worker_init(parent: int) -> None:
    """Worker start-up: exit as soon as the grid's process is gone (no orphans after ``kill -9``), and leave
    Ctrl-C to the grid's process, which stops the workers itself (:func:`_stop_workers`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """After Ctrl-C in the grid's process: SIGTERM to each worker (a training loop saves its state between two
    steps and stops, anything else ends at once), then the pool is shut down without waiting for queued work."""
    for p in list(getattr(pool, "_processes", {}).values()):
        with contextlib.suppress(OSError, AttributeError):
            p.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


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
    """Tasks in ``workers`` spawned processes, yielding rows as they finish; the shared baselines first,
    ``workers`` at a time (:meth:`map`; each trains once, and its ``train_state.pt`` resumes a killed run).

    A broken pool (a worker died) is replaced. The tasks that were in flight are suspects: each runs
    again alone in a one-worker pool, and the one that kills that worker becomes an error row.
    """

    remote = False

    def __init__(self, workers: int, task: TaskFn = run_cell) -> None:
        if workers < 1:
            raise GridError(f"--workers must be >= 1, got {workers}")
        self.workers, self.task = workers, task

    def run(self, tasks: Sequence[Task], baselines: BaselineStore, note: Note | None = None) -> Iterator[Row]:
        yield from self._pool(prepare_baselines(tasks, baselines, self.map, note))

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
            except KeyboardInterrupt:
                _stop_workers(pool)
                raise

    def _pool(self, tasks: list[Task]) -> Iterator[Row]:
        import multiprocessing as mp

        pending: deque[Task] = deque(tasks)
        suspects: deque[Task] = deque()
        ctx = mp.get_context("spawn")
        while pending or suspects:
            alone = bool(suspects)
            source = suspects if alone else pending
            n = 1 if alone else self.workers
            pool = ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),))
            inflight: dict[Future[Row], Task] = {}
            procs: list[Any] = []
            broken = False
            try:
                while (source or inflight) and not broken:
                    while source and len(inflight) < n:
                        t = source.popleft()
                        inflight[pool.submit(self.task, t)] = t
                        procs = list(getattr(pool, "_processes", {}).values()) or procs
                    done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                    for f in done:
                        t = inflight.pop(f)
                        try:
                            yield f.result()
                        except BrokenProcessPool:
                            broken = True
                            inflight[f] = t  # handled below with the others in flight
                        except Exception as e:  # the task raised outside run_cell's own guard
                            yield error_row(t, f"{type(e).__name__}: {one_line(e)}")
                if broken:
                    wait(list(inflight))
                    for t in inflight.values():
                        if alone:
                            why = f"WorkerDied: the worker process {_death(procs)} (crash, abort or out of memory)"
                            yield error_row(t, why)
                        else:
                            suspects.append(t)
            except KeyboardInterrupt:
                _stop_workers(pool)
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)


def process_executor(workers: int, task: TaskFn = run_cell) -> ProcessExecutor:
    """A :class:`ProcessExecutor` of ``workers`` spawned processes."""
    return ProcessExecutor(workers, task)


# ---- Ray ----------------------------------------------------------------------------------------
def task_resources(task: Task, cpus_per_task: float = 1.0) -> dict[str, float]:
    """What a task declares to Ray: its CPUs (its measure's threads, else ``cpus_per_task``); a GPU for CUDA speed."""
    cell = task.cell
    threads = (
        cell.speed.threads if task.measure == "speed" else cell.train.threads if task.measure == "accuracy" else None
    )
    gpus = 1.0 if task.measure == "speed" and cell.speed.device.startswith("cuda") else 0.0
    return {"num_cpus": float(threads or cpus_per_task), "num_gpus": gpus}


class RayExecutor:
    """Run tasks as Ray tasks (``pip install -e '.[ray]'``): ``address`` joins a cluster, else a local one starts.

    Each task declares its CPUs, and one GPU when its speed device is CUDA (:func:`task_resources`).
    The driver (this process) receives every row and alone writes them: no shared filesystem is needed.
    Baselines are task dependencies: one remote ``train_baseline(baseline)`` per baseline key not in the
    driver's cache, its ObjectRef passed as ``baseline_state`` to every dependent task; the driver saves
    each returned state into the cache.
    """

    remote = True

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        cpus_per_task: float = 1.0,
        task: TaskFn = run_cell,
        train_baseline: Callable[..., Any] | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.address, self.num_cpus, self.cpus_per_task = address, num_cpus, cpus_per_task
        self.task, self.train_baseline = task, train_baseline
        self.init_kwargs = dict(init_kwargs or {})

    def _baselines(
        self, ray: Any, tasks: Sequence[Task], cache: BaselineStore, note: Note | None
    ) -> tuple[dict[str, Any], dict]:
        """({key: ObjectRef of its state}, {training ref: key}) for the baselines the accuracy tasks need."""
        train = self.train_baseline
        if train is None:
            from bench.grid.baselines import train_shared

            train = train_shared
        remote_train = ray.remote(train)
        state_refs: dict[str, Any] = {}
        training: dict[Any, str] = {}
        needed = baselines_of(tasks)
        discard_unusable(cache, needed.values(), note or (lambda _: None))
        for b in needed.values():
            state = cache.load(b.key)
            if state is not None:
                state_refs[b.key] = ray.put(state)
                continue
            ref = remote_train.options(num_cpus=float(b.train.threads or self.cpus_per_task), max_retries=0).remote(b)
            state_refs[b.key] = ref
            training[ref] = b.key
        return state_refs, training

    def run(self, tasks: Sequence[Task], baselines: BaselineStore, note: Note | None = None) -> Iterator[Row]:
        try:
            import ray
        except ImportError:
            raise GridError("Ray is not installed: pip install -c constraints-cpu.txt -e '.[ray]'") from None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        started = not ray.is_initialized()
        if started:
            if self.address:
                check_address(self.address)
                try:
                    ray.init(address=self.address, log_to_driver=False, **self.init_kwargs)
                except (ConnectionError, RuntimeError, ValueError) as e:
                    raise GridError(
                        f"--ray-address {self.address}: Ray could not join it ({one_line(e)[:200]})"
                    ) from None
            else:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False, **self.init_kwargs)
        try:
            state_refs, training = self._baselines(ray, tasks, baselines, note)
            remote = ray.remote(self.task)
            refs: dict[Any, Task] = {}
            for t in tasks:
                state = state_refs.get(t.cell.baseline_key) if t.needs_baseline else None
                args = (t,) if state is None else (t, state)
                refs[remote.options(**task_resources(t, self.cpus_per_task), max_retries=0).remote(*args)] = t
            pending = [*training, *refs]
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ref = done[0]
                if ref in training:
                    with contextlib.suppress(Exception):  # a failure: its dependent tasks record the cause
                        baselines.save(training[ref], ray.get(ref))  # the driver alone writes
                    continue
                try:
                    yield ray.get(ref)
                except Exception as e:  # a worker crash or a failed baseline surfaces here: an error row
                    yield error_row(refs[ref], f"{type(e).__name__}: {one_line(e)[:300]}")
        finally:
            if started:
                ray.shutdown()


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """A ``host:port`` (or ``ray://host:port``) Ray address that resolves and accepts a connection within
    ``timeout_s``, else one :class:`GridError` line (``ray.init`` itself retries an unreachable head for
    minutes). ``auto`` and ``local`` are Ray's to find."""
    import socket

    if address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise GridError(f"--ray-address {address!r}: expected host:port, ray://host:port, auto or local")
    try:
        socket.getaddrinfo(host, int(port))
    except (OSError, UnicodeError):
        raise GridError(f"--ray-address {address}: the host '{host}' is not known") from None
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise GridError(f"--ray-address {address}: nothing answers there ({why}); is the Ray head running?") from None


def ray_executor(
    address: str | None = None, num_cpus: int | None = None, cpus_per_task: float = 1.0, task: TaskFn = run_cell
) -> RayExecutor:
    """A :class:`RayExecutor`: ``address`` joins a cluster (``auto`` or ``host:port``, checked now), else a local
    instance starts."""
    if address:
        check_address(address)
    return RayExecutor(address, num_cpus, cpus_per_task, task)
