"""One grid cell, typed: a :class:`Cell` (built once, at expansion), a :class:`Task` (a cell and one
measure) and :func:`run_cell`, a pure function from a task to one flat result row.

Nothing after expansion parses a cell again: the planner, the runner, the executors (in this process,
in worker processes, on Ray) and the speed groups read these objects' fields. They become plain data
only for the store (:meth:`Cell.describe` is what a cell's id hashes) and for a worker's pickle.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from torch import Tensor

from bench.config import DataConfig, ModelConfig, SpeedConfig, TrainConfig, stable_id
from bench.errors import one_line
from bench.grid.spec import Measure
from bench.rows import SPEED_FIELDS, Row

#: train options that change how a model is scored, not its weights: not part of a baseline's key
EVAL_ONLY = ("test_flip", "eval_stride", "eval_batch", "eval_every", "eval_precision")


@dataclass(frozen=True)
class Baseline:
    """The shared baseline of a pruned cell (HoT's protocol): the plain backbone, trained from scratch once
    per ``key`` (:func:`~bench.config.stable_id` of :meth:`describe`), then fine-tuned from or pruned as is."""

    model: ModelConfig  # no hourglass
    train: TrainConfig  # mode scratch, a step budget, seed = the cell's seed; evaluation options unused
    data: DataConfig
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", stable_id(self.describe()))

    @property
    def seed(self) -> int:
        return self.train.seed

    def describe(self) -> dict[str, Any]:
        """The baseline as plain data: what its key hashes and its cache folder records."""
        train = self.train.model_dump(exclude={"seed", *EVAL_ONLY})
        return {"model": self.model.to_dict(), "train": train, "data": self.data.model_dump(), "seed": self.seed}


@dataclass(frozen=True)
class Cell:
    """One configuration of a grid: model, training (its seed is the cell's), data, speed protocol, the
    measures to take and the shared baseline it depends on. ``id`` hashes everything but the measures and
    the speed protocol, so a measure can be added to a finished grid and a new protocol re-times its cells."""

    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    measures: tuple[Measure, ...] = ("flops",)
    baseline: Baseline | None = None
    id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", stable_id(self.describe()))

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def baseline_key(self) -> str:
        """The key of the shared baseline the cell is scored against (``""`` for a cell without one)."""
        return self.baseline.key if self.baseline is not None else ""

    def _baseline_record(self) -> dict[str, Any] | None:
        return None if self.baseline is None else {"key": self.baseline.key, **self.baseline.describe()}

    def describe(self) -> dict[str, Any]:
        """The cell as plain data, less its measures and speed protocol: what its id hashes."""
        return {
            "model": self.model.to_dict(),
            "seed": self.seed,
            "train": self.train.model_dump(exclude={"seed"}),
            "data": self.data.model_dump(),
            "baseline": self._baseline_record(),
        }

    def measure_key(self, measure: Measure) -> str:
        """What a measure depends on: FLOPs on the model; speed also on the protocol; accuracy on training."""
        parts: dict[str, Any] = {"measure": measure, "model": self.model.to_dict()}
        if measure == "speed":
            # the default compile mode is left out, so records stored before the axis existed still match
            parts["speed"] = self.speed.model_dump(exclude={"compile"} if self.speed.compile == ("none",) else None)
        if measure == "accuracy":
            d = self.describe()
            parts.update(seed=d["seed"], train=d["train"], data=d["data"], baseline=d["baseline"])
        return stable_id(parts)


@dataclass(frozen=True)
class Task:
    """A cell and one measure; ``checkpoint`` is its baseline's weights file once the runner has them."""

    cell: Cell
    measure: Measure
    checkpoint: str | None = None
    key: str = field(init=False)  # the resume key of the stored record (Cell.measure_key)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.cell.measure_key(self.measure))

    @property
    def needs_baseline(self) -> bool:
        """Only accuracy depends on a baseline: a FLOPs or speed task never waits for one to train."""
        return self.measure == "accuracy" and self.cell.baseline is not None


def _flops_fields(cfg: ModelConfig) -> Row:
    from bench.measure.flops import count_flops

    r = count_flops(cfg, counters=("fcm",)).to_dict()
    return {
        "params": r["params"],
        "gflops": r["gflops"],
        "gflops_paper": r["gflops_paper"],
        "gflops_per_frame": r["gflops_per_frame"],
        "tokens_per_block": json.dumps(r["tokens_per_block"]),
    }


def _speed_fields(cfg: ModelConfig, speed: SpeedConfig) -> Row:
    """One cell timed alone (the Ray path; local grids time speed in groups, bench.grid.speed_groups),
    under the cell's whole speed protocol, precision included, with the same columns as a group's rows."""
    from bench.measure.speed import check_device, measure_speed

    check_device(speed)
    r = measure_speed(cfg, speed).to_dict()
    return {ours: r[theirs] for theirs, ours in SPEED_FIELDS.items() if theirs in r}


def _accuracy_fields(task: Task, baseline_state: Mapping[str, Tensor] | None) -> Row:
    from bench.training.loop import cached_data, train

    cell = task.cell
    data = cached_data(cell.data)
    init = baseline_state if baseline_state is not None else task.checkpoint
    res = train(cell.model, cell.train, data, None, init=init, progress=False, data_name=data.name).to_dict()
    return {
        "baseline_steps": cell.baseline.train.steps if cell.baseline is not None else None,
        "mpjpe_mm": res["mpjpe_mm"],
        "pmpjpe_mm": res["pmpjpe_mm"],
        "mpjve_mm": res["mpjve_mm"],
        "trivial_mpjpe_mm": res["trivial_mpjpe_mm"],
        "train_steps": res["steps"],
        "train_seconds": res["seconds"],
        "eval_output": res["eval_output"],
        "data": res["data"],
        # MPI-INF-3DHP only (pooled over valid frames): PCK@150 mm, AUC and each test sequence's scores
        **(
            {"pck": res["pck"], "auc": res["auc"], "aggregation": res["aggregation"]}
            | {"per_sequence": json.dumps(res["per_sequence"])}
            if res["pck"] is not None
            else {}
        ),
    }


def identity_row(task: Task) -> Row:
    """The columns that say which cell a row belongs to (every result and error row starts with them)."""
    import torch

    cell, cfg = task.cell, task.cell.model
    return {
        "cell_id": cell.id,
        "backbone": cfg.backbone,
        "preset": cfg.preset,
        "pruner": cfg.pruner,
        "recoverer": cfg.effective_recoverer,
        "tokens": json.dumps(list(cfg.tokens)),
        "depths": json.dumps(list(cfg.depths)),
        "seed": cell.seed,
        "train_mode": cell.train.mode,
        # every measure's row names the cell's baseline (a FLOPs or speed task carries no baseline to wait for)
        "baseline_key": cell.baseline_key,
        "label": cfg.label(),
        "torch": torch.__version__,
        "measure": task.measure,
        "key": task.key,
        "error": "",
    }


def error_row(task: Task, message: str) -> Row:
    """The row of a task that could not return one (its worker died): the cell's identity, as every row has."""
    return {**identity_row(task), "error": message[:500], "cell_seconds": float("nan"), "finished": _now()}


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")


def run_cell(task: Task, baseline_state: Mapping[str, Tensor] | None = None) -> Row:
    """Take one measure of one cell: a pure function from the task (and its baseline's weights) to one row.

    An accuracy task of a cell with a baseline starts from ``baseline_state`` when given, else from the
    checkpoint the runner attached (``task.checkpoint``)."""
    row = identity_row(task)
    t0 = time.perf_counter()
    try:
        # the grid was validated whole before its first cell; each measure builds its model once
        if task.measure == "flops":
            row.update(_flops_fields(task.cell.model))
        elif task.measure == "speed":
            row.update(_speed_fields(task.cell.model, task.cell.speed))
        else:
            row.update(_accuracy_fields(task, baseline_state))
    except Exception as e:  # failure as data: the row records it, the grid goes on
        row["error"] = f"{type(e).__name__}: {one_line(e)}"[:500]
        if os.environ.get("HOURGLASS_DEBUG"):
            traceback.print_exc()
    row["cell_seconds"] = round(time.perf_counter() - t0, 2)
    row["finished"] = _now()
    return row


__all__ = ["EVAL_ONLY", "Baseline", "Cell", "Task", "error_row", "identity_row", "run_cell"]
