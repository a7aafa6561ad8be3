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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.config import ModelConfig
from bench.errors import one_line
from bench.grid.cell import Cell, Task, identity_row
from bench.grid.executors import Executor, Note, local_executor
from bench.grid.expand import expand
from bench.grid.spec import Grid, GridError, Measure, check_data
from bench.grid.store import ResultStore
from bench.measure.speed import Clock
from bench.rows import Row


@dataclass(frozen=True)
class Plan:
    """The cells of a grid that can exist, and the skipped ones with their reasons."""

    grid: Grid
    cells: list[Cell]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (label, reason)
    tokens_fraction: dict[str, float] = field(default_factory=dict)  # cell id -> block tokens vs baseline


def _axis_values(cfg: ModelConfig) -> list[tuple[str, str]]:
    """The (axis, value) pairs a configuration was made of, to name a value no cell can use."""
    out: list[tuple[str, str]] = []
    if cfg.pruned:
        out += [("recoverers", cfg.effective_recoverer)]
        out += [("tokens", json.dumps(list(cfg.tokens))), ("depths", json.dumps(list(cfg.depths)))]
    for sect, name, opts in (
        ("backbone_options", cfg.backbone, cfg.overrides),
        ("pruner_options", cfg.pruner, cfg.pruner_options),
        ("recoverer_options", cfg.effective_recoverer, cfg.recoverer_options),
    ):
        out += [(f"{sect}.{name}.{k}", json.dumps(v)) for k, v in opts]
    return out


def _verdict(cfg: ModelConfig, base: Any, full: list[int], training_free: bool) -> str | float:
    """A reason the configuration cannot exist (str), or its block tokens as a fraction of the baseline's."""
    if isinstance(base, BaseException):
        return one_line(base)
    if not cfg.pruned:
        return 1.0
    try:
        cfg.insert_hourglass(base)
    except Exception as e:
        return one_line(e)
    if training_free:
        from bench.training.loop import training_free_problem

        why = training_free_problem(base, cfg)
        if why is not None:  # the grid asks for something the protocol forbids: refused whole
            raise GridError(f"{why} (give the none mode recoverers: [interpolation], or fine-tune it)")
    return sum(base.hourglass.tokens_per_block) / max(1, sum(full))


def plan_grid(grid: Grid) -> Plan:
    """Expand ``grid`` and validate every cell once, before anything runs (see the module docstring).

    Each distinct backbone configuration is built on the meta device once; each cell's hourglass is then
    inserted into it (which replaces the previous cell's)."""
    from strategies import block_tokens

    base: dict[
        tuple[str, str, str], Any
    ] = {}  # backbone configuration -> meta model (or the exception that refused it)
    full: dict[tuple[str, str, str], list[int]] = {}  # frame tokens per block without an hourglass
    verdict: dict[tuple[str, bool], str | float] = {}  # (model id, training-free) -> reason or fraction
    ok: list[Cell] = []
    skipped: list[tuple[str, str]] = []
    fractions: dict[str, float] = {}
    bad_values: dict[tuple[str, str], list[str]] = {}
    good_values: set[tuple[str, str]] = set()
    for c in expand(grid):
        cfg = c.model
        bkey = (cfg.backbone, cfg.preset, json.dumps(cfg.overrides, default=str))
        if bkey not in base:
            try:
                base[bkey] = cfg.baseline().build("meta")
                full[bkey] = block_tokens(base[bkey])  # before any cell inserts its hourglass into it
            except Exception as e:
                base[bkey] = e
        vkey = (cfg.model_id(), c.train.mode == "none")
        if vkey not in verdict:
            verdict[vkey] = _verdict(cfg, base[bkey], full.get(bkey, []), vkey[1])
        v = verdict[vkey]
        if isinstance(v, str):
            skipped.append((cfg.label(), v))
            for av in _axis_values(cfg):
                bad_values.setdefault(av, []).append(v)
        else:
            ok.append(c)
            fractions[c.id] = v
            good_values.update(_axis_values(cfg))
    order = ("tokens", "depths", "backbone_options", "pruner_options", "recoverer_options", "recoverers")
    for (key, value), reasons in sorted(bad_values.items(), key=lambda kv: order.index(kv[0][0].split(".")[0])):
        if (key, value) not in good_values:
            raise GridError(f"{key}: {value} cannot be used with any backbone of this grid ({reasons[0]})")
    if not ok:
        first = skipped[0][1] if skipped else "the grid is empty"
        raise GridError(f"no cell of grid '{grid.name}' can exist ({first})")
    return Plan(grid, ok, skipped, fractions)


# ---- tasks -----------------------------------------------------------------------------------------
def pending_tasks(
    cells: Iterable[Cell], store: ResultStore, measures: Iterable[Measure], retry_failed: bool = False
) -> tuple[list[Task], list[Row]]:
    """(tasks to run, rows to copy): a measure already stored under another cell id is copied, not rerun."""
    todo: list[Task] = []
    copies: list[Row] = []
    for c in cells:
        for m in measures:
            if m not in c.measures:
                continue
            task = Task(c, m)
            rec = store.record(m, task.key)
            if rec is not None and not (retry_failed and rec.get("error")):
                if not store.has_cell(m, c.id):
                    copies.append(seed_copy(rec, task))
                continue
            todo.append(task)
    return todo, copies


def seed_copy(row: Row, task: Task) -> Row:
    """``row`` (a FLOPs or speed record, the same for every seed) as the record of ``task``, another seed of
    the same configuration: its own cell id, seed and shared baseline (each seed trains its own)."""
    cell = task.cell
    return {**row, "cell_id": cell.id, "seed": cell.seed, "baseline_key": cell.baseline_key, "key": task.key}


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
    plan: Plan,
    out_dir: str | os.PathLike[str],
    executor: Executor = local_executor,
    progress: Callable[[Row, int, int], None] | None = None,
    limit: int | None = None,
    only: Iterable[str] | None = None,
    retry_failed: bool = False,
    fsync: bool = True,
    speed_clock: Clock | None = None,
    note: Note | None = None,
) -> pd.DataFrame:
    """Run the (cell, measure) tasks of ``plan`` not yet stored in ``out_dir``; each row is on disk before the next.

    ``only`` restricts the measures; ``limit`` the number of cells run; ``retry_failed`` reruns the
    stored error rows. Returns the merged rows of the folder.

    Speed is measured last, in this process, while nothing else runs: the speed tasks of one
    (backbone, preset, overrides, protocol) are timed round-robin together with their baseline
    (:mod:`bench.grid.speed_groups`), so each row's ``speedup`` comes from the same rounds.
    ``speed_clock`` replaces the timer (tests). Under Ray the speed tasks go to the cluster one by
    one like the others (their rows then carry no ``speedup``).
    """
    from bench.grid.baselines import BaselineCache

    g = plan.grid
    measures: list[Measure] = [m for m in g.measure if only is None or m in set(only)]
    remote = executor.remote
    _check_device(g, measures, remote)
    check_data(g, measures)  # missing Human3.6M files: one line before any cell runs
    with ResultStore(out_dir, fsync=fsync, note=note) as store:
        import yaml

        store.write_side("grid.yaml", yaml.safe_dump(g.resolved(), sort_keys=False))
        store.write_side(f"env-{store.tag}.json", json.dumps(environment_record(g), indent=2, default=str))
        todo, copies = pending_tasks(plan.cells, store, measures, retry_failed)
        for row in copies:
            store.append(row["measure"], row)
        if limit is not None:
            keep = set(list(dict.fromkeys(t.cell.id for t in todo))[:limit])
            todo = [t for t in todo if t.cell.id in keep]
        # one task per (measure, key): the seeds of a cell share its FLOPs and speed; the others get copies
        same: dict[tuple[str, str], list[Task]] = {}
        for t in todo:
            same.setdefault((t.measure, t.key), []).append(t)
        first = {(ts[0].cell.id, ts[0].measure): ts for ts in same.values()}
        timed = [ts[0] for ts in same.values() if ts[0].measure == "speed"] if not remote else []
        others = [ts[0] for ts in same.values() if not timed or ts[0].measure != "speed"]
        rows = itertools.chain(
            executor.run(others, BaselineCache(Path(out_dir) / "baselines"), note),
            _speed_rows(timed, speed_clock, store),
        )
        for i, row in enumerate(rows, 1):
            tasks = first.get((row["cell_id"], row["measure"]), [])
            store.append(row["measure"], row)
            for t in tasks[1:]:
                store.append(row["measure"], seed_copy(row, t))
            if progress is not None:
                progress(row, i, len(first))
    df = store.read()
    return df[df["cell_id"].isin({c.id for c in plan.cells})].reset_index(drop=True)


def _speed_rows(tasks: list[Task], clock: Clock | None, store: ResultStore) -> Iterator[Row]:
    """The speed tasks, timed group by group against their baseline in this process; each group's
    finished rounds are kept in the store until its rows are (a killed group resumes)."""
    from bench.grid.speed_groups import group_name, run_speed_group, speed_groups

    for group in speed_groups(tasks):
        yield from run_speed_group(group, identity_row, clock=clock, rounds=store.rounds(group_name(group)))
