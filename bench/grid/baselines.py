"""The baselines a grid's cells share: trained once, cached under ``results/<grid>/baselines/<key>/``.

``key`` is :func:`~bench.config.stable_id` of the baseline's description (backbone, preset, data,
seed, budget), so a rerun, a resumed grid or a second grid with the same baseline reuses it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench.training.baselines import train_baseline
from bench.training.loop import MODEL_FILE, STATE_FILE

MapFn = Callable[..., Iterable[Any]]


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
        if not self.has(key):
            return None
        sd = torch.load(self.checkpoint(key), map_location="cpu", weights_only=True)
        return dict(sd)

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


def baselines_of(cells: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The distinct baseline descriptions the cells depend on, by key, in first-seen order."""
    out: dict[str, dict[str, Any]] = {}
    for c in cells:
        b = c.get("baseline")
        if b:
            out.setdefault(b["key"], {k: v for k, v in b.items() if k != "checkpoint"})
    return out


def ensure_baselines(
    cells: Iterable[Mapping[str, Any]],
    cache: BaselineCache,
    map_fn: MapFn = map,
    note: Callable[[str], None] | None = None,
) -> None:
    """Train every baseline the cells need that the cache lacks, once each, before any cell runs.

    ``note`` hears one line per baseline as it starts and ends (the CLI prints them)."""
    todo = [(k, d) for k, d in baselines_of(cells).items() if not cache.has(k)]
    if not todo:
        return
    descs = [d for _, d in todo]
    say = note or (lambda _: None)
    for key, desc in todo:
        steps = (desc.get("train") or {}).get("steps")
        model = f"{desc['model']['backbone']}/{desc['model']['preset']}"
        say(f"baseline {key}: {model}, {steps} steps (shared, trained once)")
    t0 = time.perf_counter()
    states = map_fn(train_baseline, descs, [cache.path(k) for k, _ in todo])
    for (key, desc), sd in zip(todo, states, strict=True):
        cache.save(key, sd, desc)
        say(f"baseline {key}: saved ({time.perf_counter() - t0:.0f} s since the first started)")


def attach_checkpoints(cells: Iterable[dict[str, Any]], cache: BaselineCache) -> None:
    """Point each dependent cell at its baseline's checkpoint (``cell["baseline"]["checkpoint"]``)."""
    for c in cells:
        if c.get("baseline"):
            c["baseline"]["checkpoint"] = str(cache.checkpoint(c["baseline"]["key"]))


__all__ = ["BaselineCache", "attach_checkpoints", "baselines_of", "ensure_baselines"]
