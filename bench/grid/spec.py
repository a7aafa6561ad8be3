"""Grid files: parse and validate a YAML grid (axes, measures, speed / train / data sections)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
    "modes",
    "baseline",
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
    modes: tuple[tuple[str, Mapping[str, Any]], ...] = (("scratch", {}),)  # (mode, axis restrictions)
    baseline: Mapping[str, Any] = field(default_factory=dict)  # train options of the shared baselines


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
    from bench.config import DataConfig, TrainConfig

    allowed = {
        "speed": {"batch", "warmup", "iters", "threads", "device"},
        "train": set(TrainConfig.model_fields) - {"seed", "mode"},
        "data": set(DataConfig.model_fields),
        "baseline": set(TrainConfig.model_fields) - {"seed", "mode"},
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
    from bench.grid.expand import check_protocol, parse_modes

    grid = Grid(
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
        modes=parse_modes(d.get("modes"), str(p)),
        baseline=dict(d.get("baseline") or {}),
    )
    check_protocol(grid, str(p))
    return grid
