"""YAML grids: backbones x presets x pruners x recoverers x tokens x depths x seeds -> result rows.

A grid file expands into *cells*; each cell is a plain dict (its :class:`~bench.config.ModelConfig`,
what to measure, the data and budgets) with a stable ``cell_id``. :func:`run_cell` is a pure
function from that dict to one result row, so cells run in-process, in a process pool or as Ray
tasks alike. The runner appends every finished row to the results CSV (and flushes it) before the
next cell starts, and skips cells whose id is already there: a killed grid resumes where it stopped.
A failing or impossible cell becomes a row with its ``error``, never a crash of the grid.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.config import ModelConfig

MEASURES = ("flops", "speed", "accuracy")
GRID_KEYS = {
    "name",
    "description",
    "backbones",
    "presets",
    "pruners",
    "recoverers",
    "tokens",
    "depths",
    "schedules",
    "seeds",
    "measure",
    "speed",
    "train",
    "data",
}


class GridError(ValueError):
    """A malformed grid file (one-line message)."""


@dataclass(frozen=True)
class Grid:
    """A parsed grid file."""

    name: str
    backbones: tuple[str, ...]
    presets: tuple[str, ...]
    pruners: tuple[str, ...]
    recoverers: tuple[str | None, ...]
    tokens: tuple[Any, ...]  # each: a number or a list (hierarchical schedule)
    depths: tuple[Any, ...]
    schedules: tuple[tuple[Any, Any], ...]  # explicit (tokens, depths) pairs; replace the product
    seeds: tuple[int, ...]
    measure: tuple[str, ...]
    speed: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


def _list(d: Mapping[str, Any], key: str, default: list[Any]) -> tuple[Any, ...]:
    v = d.get(key, default)
    if v is None:
        return tuple(default)
    if not isinstance(v, list):
        v = [v]
    if not v:
        raise GridError(f"'{key}' is an empty list")
    return tuple(v)


def load_grid(path: str | os.PathLike[str]) -> Grid:
    """Parse and validate a grid YAML file; every problem is a one-line :class:`GridError`."""
    p = Path(path)
    if not p.is_file():
        raise GridError(f"grid file '{p}' does not exist")
    try:
        d = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "invalid YAML"
        raise GridError(f"{p}: not valid YAML ({first})") from None
    if not isinstance(d, dict):
        raise GridError(f"{p}: a grid file is a mapping of axis names to lists")
    unknown = sorted(set(d) - GRID_KEYS)
    if unknown:
        raise GridError(f"{p}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(GRID_KEYS))})")
    from backbones import get_backbone_spec, list_backbones

    patterns = _list(d, "backbones", ["*"])
    names = list_backbones(list(map(str, patterns)))
    if not names:
        raise GridError(f"{p}: backbones {list(patterns)} match nothing (known: {', '.join(list_backbones())})")
    presets = tuple(map(str, _list(d, "presets", ["tiny"])))
    for n in names:
        for pr in presets:
            get_backbone_spec(n).preset(pr)
    measure = tuple(map(str, _list(d, "measure", ["flops"])))
    bad = sorted(set(measure) - set(MEASURES))
    if bad:
        raise GridError(f"{p}: unknown measure {', '.join(bad)} (known: {', '.join(MEASURES)})")
    recoverers = tuple(None if r in (None, "default") else str(r) for r in _list(d, "recoverers", ["default"]))
    from strategies import list_pruners, list_recoverers

    pruners = tuple(map(str, _list(d, "pruners", ["none"])))
    for pr in pruners:
        if pr not in list_pruners():
            raise GridError(f"{p}: unknown pruner '{pr}' (known: {', '.join(list_pruners())})")
    for r in recoverers:
        if r is not None and r not in list_recoverers():
            raise GridError(f"{p}: unknown recoverer '{r}' (known: {', '.join(list_recoverers())})")
    from bench.train import DataConfig, TrainConfig

    allowed = {
        "speed": {"batch", "warmup", "iters", "threads", "device"},
        "train": set(TrainConfig.__dataclass_fields__) - {"seed", "mode"},
        "data": set(DataConfig.__dataclass_fields__),
    }
    for key, fields in allowed.items():
        section = d.get(key) or {}
        if not isinstance(section, dict):
            raise GridError(f"{p}: '{key}' must be a mapping")
        bad_opts = sorted(set(section) - fields)
        if bad_opts:
            raise GridError(f"{p}: unknown {key} option(s) {', '.join(bad_opts)} (known: {', '.join(sorted(fields))})")
    schedules = []
    for s in d.get("schedules") or []:
        if not isinstance(s, dict) or set(s) != {"tokens", "depths"}:
            raise GridError(f"{p}: each schedule is a mapping with 'tokens' and 'depths'")
        schedules.append((s["tokens"], s["depths"]))
    seeds = _list(d, "seeds", [0])
    if not all(isinstance(s, int) for s in seeds):
        raise GridError(f"{p}: seeds must be integers")
    return Grid(
        name=str(d.get("name", p.stem)),
        description=str(d.get("description", "")),
        backbones=tuple(names),
        presets=presets,
        pruners=pruners,
        recoverers=recoverers,
        tokens=_list(d, "tokens", [0.33]),
        depths=_list(d, "depths", [1]),
        schedules=tuple(schedules),
        seeds=tuple(int(s) for s in seeds),
        measure=measure,
        speed=dict(d.get("speed") or {}),
        train=dict(d.get("train") or {}),
        data=dict(d.get("data") or {}),
    )


def expand(grid: Grid) -> list[dict[str, Any]]:
    """All cells of a grid, in a stable order; a baseline (pruner none) appears once per backbone."""
    cells: list[dict[str, Any]] = []
    seen: set[str] = set()
    for backbone, preset, seed, pruner in itertools.product(grid.backbones, grid.presets, grid.seeds, grid.pruners):
        if pruner == "none":
            combos: Iterable[tuple[Any, Any, Any]] = [(None, None, None)]
        else:
            pairs = grid.schedules or tuple(itertools.product(grid.tokens, grid.depths))
            combos = ((r, t, k) for r in grid.recoverers for t, k in pairs)
        for recoverer, tokens, depths in combos:
            cfg = ModelConfig.create(backbone, preset, pruner, recoverer, tokens, depths)
            cell = {
                "model": cfg.to_dict(),
                "seed": seed,
                "measure": list(grid.measure),
                "speed": dict(grid.speed),
                "train": dict(grid.train),
                "data": dict(grid.data),
            }
            cid = cell_id(cell)
            cell["cell_id"] = cid
            if cid not in seen:
                seen.add(cid)
                cells.append(cell)
    return cells


def cell_id(cell: Mapping[str, Any]) -> str:
    """Stable hash of everything that defines a cell's result."""
    import hashlib

    blob = json.dumps({k: v for k, v in cell.items() if k != "cell_id"}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _flops_fields(cfg: ModelConfig) -> dict[str, Any]:
    from bench.flops import count_flops

    r = count_flops(cfg, counters=("fcm",)).to_dict()
    return {
        "params": r["params"],
        "gflops": r["gflops"],
        "gflops_paper": r["gflops_paper"],
        "gflops_per_frame": r["gflops_per_frame"],
        "tokens_per_block": json.dumps(r["tokens_per_block"]),
    }


def _speed_fields(cfg: ModelConfig, opts: Mapping[str, Any]) -> dict[str, Any]:
    from bench.speed import measure_speed

    r = measure_speed(
        cfg,
        batch=int(opts.get("batch", 1)),
        warmup=int(opts.get("warmup", 5)),
        iters=int(opts.get("iters", 20)),
        threads=opts.get("threads"),
        device=str(opts.get("device", "cpu")),
    ).to_dict()
    return {
        "latency_ms": r["latency_ms_median"],
        "latency_iqr_ms": r["latency_ms_iqr"],
        "fps": r["fps"],
        "speed_batch": r["batch"],
        "threads": r["threads"],
        "device": r["device"],
    }


@functools.lru_cache(maxsize=2)
def _cached_data(cfg: Any) -> Any:
    """One dataset per data configuration and process (cells of a grid share it)."""
    from bench.train import load_data

    return load_data(cfg)


def _accuracy_fields(cfg: ModelConfig, cell: Mapping[str, Any]) -> dict[str, Any]:
    from bench.train import DataConfig, TrainConfig, train

    t = dict(cell.get("train") or {})
    known = set(TrainConfig.__dataclass_fields__) - {"seed"}
    unknown = sorted(set(t) - known)
    if unknown:
        raise GridError(f"unknown train option(s) {', '.join(unknown)}")
    tc = TrainConfig(seed=int(cell.get("seed", 0)), **t)
    data = _cached_data(DataConfig(**dict(cell.get("data") or {})))
    res = train(cfg, tc, data, None, progress=False, data_name=data.name).to_dict()
    return {
        "mpjpe_mm": res["mpjpe_mm"],
        "pmpjpe_mm": res["pmpjpe_mm"],
        "mpjve_mm": res["mpjve_mm"],
        "trivial_mpjpe_mm": res["trivial_mpjpe_mm"],
        "train_steps": res["steps"],
        "train_seconds": res["seconds"],
        "eval_output": res["eval_output"],
        "data": res["data"],
    }


def run_cell(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Measure one cell: a pure function from the cell dict to one flat result row."""
    import torch

    cfg = ModelConfig.from_dict(cell["model"])
    row: dict[str, Any] = {
        "cell_id": cell["cell_id"],
        "backbone": cfg.backbone,
        "preset": cfg.preset,
        "pruner": cfg.pruner,
        "recoverer": cfg.effective_recoverer,
        "tokens": json.dumps(list(cfg.tokens)),
        "depths": json.dumps(list(cfg.depths)),
        "seed": cell.get("seed", 0),
        "label": cfg.label(),
        "torch": torch.__version__,
        "error": "",
    }
    t0 = time.perf_counter()
    try:
        cfg.build("meta")  # validates the configuration without allocating
        if "flops" in cell["measure"]:
            row.update(_flops_fields(cfg))
        if "speed" in cell["measure"]:
            row.update(_speed_fields(cfg, cell.get("speed") or {}))
        if "accuracy" in cell["measure"]:
            row.update(_accuracy_fields(cfg, cell))
    except Exception as e:  # failure as data: the row records it, the grid goes on
        msg = " ".join(str(e).split()) or type(e).__name__
        row["error"] = f"{type(e).__name__}: {msg}"[:500]
        if os.environ.get("HOURGLASS_DEBUG"):
            traceback.print_exc()
    row["cell_seconds"] = round(time.perf_counter() - t0, 2)
    row["finished"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    return row


class ResultStore:
    """An append-only CSV of result rows, one per cell, keyed by ``cell_id``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def done_ids(self) -> set[str]:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return set()
        df = pd.read_csv(self.path, usecols=["cell_id"], dtype=str)
        return set(df["cell_id"])

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row and flush it to disk before returning (columns may grow between rows)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = pd.DataFrame([dict(row)])
        if self.path.is_file() and self.path.stat().st_size > 0:
            old = pd.read_csv(self.path, dtype={"cell_id": str})
            if set(new.columns) - set(old.columns):
                merged = pd.concat([old, new], ignore_index=True)
                tmp = self.path.with_name(self.path.name + ".tmp")
                merged.to_csv(tmp, index=False)
                os.replace(tmp, self.path)
                return
            new = new.reindex(columns=old.columns)
            with self.path.open("a", newline="") as f:
                new.to_csv(f, header=False, index=False)
                f.flush()
                os.fsync(f.fileno())
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        new.to_csv(tmp, index=False)
        os.replace(tmp, self.path)

    def read(self) -> pd.DataFrame:
        return pd.read_csv(self.path, dtype={"cell_id": str}) if self.path.is_file() else pd.DataFrame()


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


def run_grid(
    grid: Grid,
    out_csv: str | os.PathLike[str],
    executor: Executor = local_executor,
    progress: Callable[[dict[str, Any], int, int], None] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Run the cells of ``grid`` not yet in ``out_csv``; each row is on disk before the next starts."""
    store = ResultStore(out_csv)
    done = store.done_ids()
    todo = [c for c in expand(grid) if c["cell_id"] not in done]
    if limit is not None:
        todo = todo[:limit]
    for i, row in enumerate(executor(todo), 1):
        store.append(row)
        if progress is not None:
            progress(row, i, len(todo))
    return store.read()
