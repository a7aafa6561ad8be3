"""Plan and run a grid: validate it whole, skip impossible combinations, run only what is not stored.

:func:`plan_grid` expands a grid and checks every cell's model on the ``meta`` device (one build
per backbone configuration, then the hourglass applied to it per cell): a combination that cannot
exist for one backbone (depth 3 on MHFormer's trunk) is *skipped* with its reason; a value that no
cell can use (tokens 999, an unknown pruner option) or a grid with no possible cell is a
:class:`GridError`. :func:`run_grid` then runs one task per missing (cell, measure) and appends each
row before the next is taken.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.config import ModelConfig, stable_id
from bench.errors import one_line
from bench.grid.executors import Executor, local_executor
from bench.grid.expand import expand
from bench.grid.spec import Grid, GridError, check_data
from bench.grid.store import ResultStore
from bench.measure.speed import Clock


@dataclass
class Plan:
    """The cells of a grid that can exist, and the skipped ones with their reasons."""

    grid: Grid
    cells: list[dict[str, Any]]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (label, reason)
    tokens_fraction: dict[str, float] = field(default_factory=dict)  # cell_id -> block tokens vs baseline


def _axis_values(cell: dict[str, Any]) -> list[tuple[str, str]]:
    m = cell["model"]
    out = [("recoverers", str(m["recoverer"]))] if m["pruner"] != "none" else []
    if m["pruner"] != "none":
        out += [("tokens", json.dumps(m["tokens"])), ("depths", json.dumps(m["depths"]))]
    for sect, name in (("backbone_options", m["backbone"]), ("pruner_options", m["pruner"])):
        src = m["overrides"] if sect == "backbone_options" else m.get("pruner_options", {})
        out += [(f"{sect}.{name}.{k}", json.dumps(v)) for k, v in src.items()]
    out += [
        (f"recoverer_options.{m['recoverer']}.{k}", json.dumps(v)) for k, v in m.get("recoverer_options", {}).items()
    ]
    return out


def plan_grid(grid: Grid) -> Plan:
    """Expand and validate ``grid`` whole, before anything runs (see the module docstring)."""
    from strategies import block_tokens

    cells = expand(grid)
    base: dict[str, Any] = {}  # backbone configuration -> meta model (or the exception that refused it)
    full: dict[str, list[int]] = {}  # backbone configuration -> frame tokens per block without an hourglass
    verdict: dict[str, str | float] = {}  # model id -> reason (str) or tokens fraction (float)
    ok: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    fractions: dict[str, float] = {}
    bad_values: dict[tuple[str, str], list[str]] = {}
    good_values: set[tuple[str, str]] = set()
    for c in cells:
        m = c["model"]
        mid = stable_id(m)
        if mid not in verdict:
            cfg = ModelConfig.from_dict(m)
            bkey = stable_id({"b": cfg.backbone, "p": cfg.preset, "o": m["overrides"]})
            if bkey not in base:
                try:
                    base[bkey] = cfg.baseline().build("meta")
                    full[bkey] = block_tokens(base[bkey])  # before any cell inserts its hourglass into it
                except Exception as e:
                    base[bkey] = e
            model = base[bkey]
            if isinstance(model, BaseException):
                verdict[mid] = one_line(model)
            else:
                try:
                    if cfg.pruned:
                        cfg.insert_hourglass(model)
                        verdict[mid] = sum(model.hourglass.tokens_per_block) / max(1, sum(full[bkey]))
                    else:
                        verdict[mid] = 1.0
                except Exception as e:
                    verdict[mid] = one_line(e)
        v = verdict[mid]
        label = ModelConfig.from_dict(m).label()
        if isinstance(v, str):
            skipped.append((label, v))
            for av in _axis_values(c):
                bad_values.setdefault(av, []).append(v)
        else:
            ok.append(c)
            fractions[c["cell_id"]] = v
            good_values.update(_axis_values(c))
    order = ("tokens", "depths", "backbone_options", "pruner_options", "recoverer_options", "recoverers")
    for (key, value), reasons in sorted(bad_values.items(), key=lambda kv: order.index(kv[0][0].split(".")[0])):
        if (key, value) not in good_values:
            raise GridError(f"{key}: {value} cannot be used with any backbone of this grid ({reasons[0]})")
    if not ok:
        first = skipped[0][1] if skipped else "the grid is empty"
        raise GridError(f"no cell of grid '{grid.name}' can exist ({first})")
    return Plan(grid, ok, skipped, fractions)


# ---- tasks -----------------------------------------------------------------------------------------
def measure_key(cell: dict[str, Any], measure: str) -> str:
    """What a measure depends on: FLOPs on the model; speed also on the protocol; accuracy on training."""
    parts: dict[str, Any] = {"measure": measure, "model": cell["model"]}
    if measure == "speed":
        parts["speed"] = cell["speed"]
    if measure == "accuracy":
        parts.update(seed=cell["seed"], train=cell["train"], data=cell["data"], baseline=cell.get("baseline"))
    return stable_id(parts)


def pending_tasks(
    cells: Iterable[dict[str, Any]], store: ResultStore, measures: Iterable[str], retry_failed: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(tasks to run, rows to copy): a measure already stored under another cell id is copied, not rerun."""
    todo: list[dict[str, Any]] = []
    copies: list[dict[str, Any]] = []
    for c in cells:
        for m in measures:
            if m not in c["measure"]:
                continue
            key = measure_key(c, m)
            rec = store.record(m, key)
            if rec is not None and not (retry_failed and rec.get("error")):
                if not store.has_cell(m, c["cell_id"]):
                    copies.append({**seed_copy(rec, c), "key": key, "measure": m})
                continue
            # only accuracy depends on a baseline: a FLOPs or speed task never waits for one to train
            base = c.get("baseline") or {}
            todo.append(
                {
                    **c,
                    "measure": [m],
                    "key": key,
                    "baseline": base or None if m == "accuracy" else None,
                    "baseline_key": base.get("key", ""),
                }
            )
    return todo, copies


def seed_copy(row: Mapping[str, Any], cell: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` (a FLOPs or speed record, the same for every seed) as the record of ``cell``, another seed of
    the same configuration: its own cell id, seed and shared baseline (each seed trains its own)."""
    from bench.grid.cell import baseline_key

    return {**row, "cell_id": cell["cell_id"], "seed": cell["seed"], "baseline_key": baseline_key(cell)}


def environment_record(grid: Grid) -> dict[str, Any]:
    """Versions, CPU/GPU, threads and git commit of this run (written beside the rows)."""
    from bench.measure.env import environment

    env = dict(environment(grid.speed.device if grid.speed.device.startswith("cuda") else "cpu"))
    env["git_commit"] = _git_commit()
    env["written"] = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    return env


def _git_commit() -> str | None:
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _check_device(grid: Grid, measures: Iterable[str], remote: bool) -> None:
    if "speed" in measures and grid.speed.device.startswith("cuda") and not remote:
        import torch

        if not torch.cuda.is_available():
            raise GridError(f"speed.device: {grid.speed.device} but this machine has no CUDA (run it through --ray)")


def run_grid(
    grid: Grid | Plan,
    out_dir: str | os.PathLike[str],
    executor: Executor = local_executor,
    progress: Callable[[dict[str, Any], int, int], None] | None = None,
    limit: int | None = None,
    only: Iterable[str] | None = None,
    retry_failed: bool = False,
    remote: bool = False,
    fsync: bool = True,
    speed_clock: Clock | None = None,
    note: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Run the (cell, measure) tasks of ``grid`` not yet stored in ``out_dir``; each row is on disk before the next.

    ``only`` restricts the measures; ``limit`` the number of cells run; ``retry_failed`` reruns the
    stored error rows. Returns the merged rows of the folder.

    Speed is measured last, in this process, while nothing else runs: the speed tasks of one
    (backbone, preset, overrides, protocol) are timed round-robin together with their baseline
    (:mod:`bench.grid.speed_groups`), so each row's ``speedup`` comes from the same rounds.
    ``speed_clock`` replaces the timer (tests). Under Ray the speed tasks go to the cluster one by
    one like the others (their rows then carry no ``speedup``).
    """
    plan = grid if isinstance(grid, Plan) else plan_grid(grid)
    g = plan.grid
    measures = [m for m in g.measure if only is None or m in set(only)]
    _check_device(g, measures, remote)
    check_data(g, measures)  # missing Human3.6M files: one line before any cell runs
    with ResultStore(out_dir, fsync=fsync) as store:
        import yaml

        store.write_side("grid.yaml", yaml.safe_dump(g.resolved(), sort_keys=False))
        store.write_side(f"env-{store.tag}.json", json.dumps(environment_record(g), indent=2, default=str))
        todo, copies = pending_tasks(plan.cells, store, measures, retry_failed)
        for row in copies:
            store.append(row["measure"], row)
        if limit is not None:
            keep = list(dict.fromkeys(t["cell_id"] for t in todo))[:limit]
            todo = [t for t in todo if t["cell_id"] in set(keep)]
        # one task per (measure, key): the seeds of a cell share its FLOPs and speed; the others get copies
        same: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for t in todo:
            same.setdefault((t["measure"][0], t["key"]), []).append(t)
        todo = [ts[0] for ts in same.values()]
        keys = {(t["cell_id"], t["measure"][0]): t["key"] for t in todo}
        timed = [t for t in todo if t["measure"][0] == "speed"] if not remote else []
        others = [t for t in todo if not timed or t["measure"][0] != "speed"]
        if not any(t.get("baseline") for t in others):
            rows: Iterable[dict[str, Any]] = executor(others)
        elif getattr(executor, "handles_baselines", False):  # Ray: baselines are task dependencies
            rows = executor(others, baseline_root=Path(out_dir) / "baselines")  # type: ignore[call-arg]
        else:
            _prepare_baselines(others, Path(out_dir), note, getattr(executor, "map", map))
            rows = executor(others)
        rows = itertools.chain(rows, _speed_rows(timed, speed_clock))
        for i, row in enumerate(rows, 1):
            row["key"] = keys.get((row["cell_id"], row["measure"]))
            store.append(row["measure"], row)
            for t in same.get((row["measure"], row["key"]), [])[1:]:
                store.append(row["measure"], seed_copy(row, t))
            if progress is not None:
                progress(row, i, len(todo))
    df = store.read()
    return df[df["cell_id"].isin({c["cell_id"] for c in plan.cells})].reset_index(drop=True)


def _speed_rows(tasks: list[dict[str, Any]], clock: Clock | None) -> Iterator[dict[str, Any]]:
    """The speed tasks, timed group by group against their baseline in this process."""
    from bench.grid.cell import identity_row
    from bench.grid.speed_groups import run_speed_group, speed_groups

    for group in speed_groups(tasks):
        for row in run_speed_group(group, identity_row, clock=clock):
            row["measure"] = "speed"
            yield row


def _prepare_baselines(
    todo: list[dict[str, Any]],
    out_dir: Path,
    note: Callable[[str], None] | None = None,
    map_fn: Callable[..., Iterable[Any]] = map,
) -> None:
    """Train every baseline the tasks need, once, before they run; ``map_fn`` is the executor's (a process
    pool trains them ``workers`` at a time), else the built-in ``map`` (one after the other, here)."""
    from bench.grid.baselines import BaselineCache, attach_checkpoints, ensure_baselines

    cache = BaselineCache(out_dir / "baselines")
    ensure_baselines(todo, cache, map_fn=map_fn, note=note)
    attach_checkpoints(todo, cache)
