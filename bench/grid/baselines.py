"""The baselines a grid's cells share: trained once, cached under ``results/<grid>/baselines/<key>/``.

``key`` (:attr:`~bench.grid.cell.Baseline.key`) hashes the baseline's description (backbone, preset,
data, seed, budget), so a rerun, a resumed grid or a second grid with the same baseline reuses it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from backbones._checkpoint import clean_state_dict, extract_state_dict, load_state_dict_strict, read_checkpoint
from bench.grid.cell import Baseline, Task
from bench.training.baselines import train_baseline
from bench.training.loop import MODEL_FILE, STATE_FILE

MapFn = Callable[..., Iterable[Any]]


class BaselineStore(Protocol):
    """Where trained baselines are kept: :class:`BaselineCache` on disk (a test may keep them in memory)."""

    def path(self, key: str) -> Path: ...

    def checkpoint(self, key: str) -> Path: ...

    def has(self, key: str) -> bool: ...

    def load(self, key: str) -> dict[str, Tensor] | None: ...

    def save(self, key: str, state_dict: Mapping[str, Tensor], desc: Mapping[str, Any] | None = None) -> Any: ...

    def discard(self, key: str) -> None: ...

    def problem(self, key: str, baseline: Baseline) -> str: ...


class BaselineCache:
    """Baseline checkpoints keyed by description hash: ``root/<key>/model.pt`` (weights only)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def checkpoint(self, key: str) -> Path:
        return self.path(key) / MODEL_FILE

    def has(self, key: str) -> bool:
        return self.checkpoint(key).is_file()

    def load(self, key: str) -> dict[str, Tensor] | None:
        """The cached weights (``torch.load`` weights-only; a damaged file is a CheckpointError line)."""
        if not self.has(key):
            return None
        return extract_state_dict(read_checkpoint(self.checkpoint(key)))

    def problem(self, key: str, baseline: Baseline) -> str:
        """Why the cached weights cannot start ``baseline``'s cells ('' when they can or none are cached)."""
        return cached_problem(self, key, baseline)

    def discard(self, key: str) -> None:
        """Move an unusable cached checkpoint aside (``model.pt.rejected``): the baseline trains again."""
        if self.has(key):
            target = self.checkpoint(key)
            os.replace(target, target.with_name(target.name + ".rejected"))

    def save(self, key: str, state_dict: Mapping[str, Tensor], desc: Mapping[str, Any] | None = None) -> Path:
        """Write atomically (the model file appears complete or not at all); drop the resume state."""
        d = self.path(key)
        d.mkdir(parents=True, exist_ok=True)
        if desc is not None:
            (d / "baseline_desc.json").write_text(json.dumps(dict(desc), indent=2, sort_keys=True, default=str))
        target = self.checkpoint(key)
        tmp = target.with_name(target.name + ".tmp")
        torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp)
        os.replace(tmp, target)
        (d / STATE_FILE).unlink(missing_ok=True)
        return target


def train_shared(baseline: Baseline, work_dir: str | os.PathLike[str] | None = None) -> dict[str, Tensor]:
    """Train one shared baseline and return its weights (what a pool worker or a Ray task runs)."""
    return train_baseline(baseline.model, baseline.train, baseline.data, work_dir, key=baseline.key)


def cached_problem(cache: BaselineStore, key: str, b: Baseline) -> str:
    """Why the cached weights of baseline ``b`` cannot start its cells ('' when they can, or none are cached):
    the file must load weights-only and fit the baseline's model key for key, shape, dtype kind and finiteness."""
    from backbones import CheckpointError

    if not cache.has(key):
        return ""
    try:
        sd = cache.load(key)
        if sd is None:
            return ""
        load_state_dict_strict(b.model.build(), clean_state_dict(sd))
    except CheckpointError as e:
        return str(e)[:200]
    return ""


def discard_unusable(cache: BaselineStore, baselines: Iterable[Baseline], say: Callable[[str], None]) -> None:
    """Move aside each cached baseline whose weights cannot start its cells (:meth:`BaselineStore.problem`),
    saying so: it trains again like one never cached."""
    for b in baselines:
        why = cache.problem(b.key, b)
        if why:
            cache.discard(b.key)
            say(f"baseline {b.key}: its cached weights cannot be used ({why}); moved aside, trained again")


def baselines_of(tasks: Iterable[Task]) -> dict[str, Baseline]:
    """The distinct baselines the accuracy tasks depend on, by key, in first-seen order."""
    out: dict[str, Baseline] = {}
    for t in tasks:
        if t.needs_baseline and t.cell.baseline is not None:
            out.setdefault(t.cell.baseline.key, t.cell.baseline)
    return out


def ensure_baselines(
    tasks: Iterable[Task], cache: BaselineStore, map_fn: MapFn = map, note: Callable[[str], None] | None = None
) -> None:
    """Train every baseline the tasks need that the cache lacks, once each, before any task runs.

    ``map_fn`` is the executor's (a process pool trains them ``workers`` at a time), else the built-in
    ``map``; ``note`` hears one line per baseline as it starts and ends (the CLI prints them)."""
    say = note or (lambda _: None)
    needed = baselines_of(tasks)
    discard_unusable(cache, needed.values(), say)
    todo = [(k, b) for k, b in needed.items() if not cache.has(k)]
    if not todo:
        return
    for key, b in todo:
        say(f"baseline {key}: {b.model.backbone}/{b.model.preset}, {b.train.steps} steps (shared, trained once)")
    t0 = time.perf_counter()
    states = map_fn(train_shared, [b for _, b in todo], [cache.path(k) for k, _ in todo])
    for (key, b), sd in zip(todo, states, strict=True):
        cache.save(key, sd, {"key": key, **b.describe()})
        say(f"baseline {key}: saved ({time.perf_counter() - t0:.0f} s since the first started)")


def prepare_baselines(
    tasks: Sequence[Task], cache: BaselineStore, map_fn: MapFn = map, note: Callable[[str], None] | None = None
) -> list[Task]:
    """The tasks with their baselines trained (:func:`ensure_baselines`) and each dependent task pointed at
    its baseline's checkpoint (``task.checkpoint``)."""
    if not any(t.needs_baseline for t in tasks):
        return list(tasks)
    ensure_baselines(tasks, cache, map_fn=map_fn, note=note)
    return [
        dataclasses.replace(t, checkpoint=str(cache.checkpoint(t.cell.baseline_key))) if t.needs_baseline else t
        for t in tasks
    ]


__all__ = [
    "BaselineCache",
    "BaselineStore",
    "baselines_of",
    "ensure_baselines",
    "prepare_baselines",
    "train_shared",
]
