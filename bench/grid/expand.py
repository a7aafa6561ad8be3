"""Expansion of a grid into cells: plain dicts with a stable ``cell_id``."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from bench.config import ModelConfig, cell_id
from bench.grid.spec import Grid


def option_product(axes: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """``{k: [1, 2], m: [a]}`` -> ``[{k: 1, m: a}, {k: 2, m: a}]`` (``[{}]`` for no axes)."""
    keys = sorted(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(axes[k] for k in keys))]


def cell_key(cell: Mapping[str, Any]) -> str:
    """The id of a cell: its model, seed, training and data; not the measures to take nor the speed protocol.

    So a measure can be added to a finished grid, and a new speed protocol re-times the same cells.
    """
    return cell_id({k: v for k, v in cell.items() if k not in ("cell_id", "measure", "speed")})


def expand(grid: Grid) -> list[dict[str, Any]]:
    """All cells of a grid, in a stable order; a baseline (pruner none) appears once per backbone."""
    cells: list[dict[str, Any]] = []
    seen: set[str] = set()
    for backbone in grid.backbones:
        cells += _expand_backbone(grid.for_backbone(backbone), backbone, seen)
    return cells


def _expand_backbone(grid: Grid, backbone: str, seen: set[str]) -> list[dict[str, Any]]:
    """The cells of one backbone (``grid`` already carries its ``by_backbone`` axes)."""
    cells: list[dict[str, Any]] = []
    train = grid.train.model_dump(exclude={"seed"})
    modes = grid.modes or [train["mode"]]
    sweep = list(itertools.product(grid.tokens, grid.depths))
    for preset, seed, pruner, mode in itertools.product(grid.presets, grid.seeds, grid.pruners, modes):
        if pruner == "none":
            combos: Iterable[tuple[Any, Any, Any]] = [(None, None, None)]
        else:
            pairs = [(s.tokens, s.depths) for s in grid.schedules]
            pairs = [*sweep, *pairs] if grid.sweeps_tokens() or not pairs else pairs
            combos = ((r, t, k) for r in grid.recoverers for t, k in pairs)
        for recoverer, tokens, depths in combos:
            rec_name = recoverer or "attention"
            for bopts, popts, ropts in itertools.product(
                option_product(grid.backbone_options.get(backbone, {})),
                option_product(grid.pruner_options.get(pruner, {})),
                option_product(grid.recoverer_options.get(rec_name, {}) if pruner != "none" else {}),
            ):
                cfg = ModelConfig.create(
                    backbone, preset, pruner, recoverer, tokens, depths, bopts, popts or None, ropts or None
                )
                cell: dict[str, Any] = {
                    "model": cfg.to_dict(),
                    "seed": seed,
                    "measure": list(grid.measure),
                    "speed": grid.speed.model_dump(),
                    "train": {**train, "mode": mode},
                    "data": grid.data.model_dump(),
                    "baseline": None,
                }
                cid = cell_key(cell)
                cell["cell_id"] = cid
                if cid not in seen:
                    seen.add(cid)
                    cells.append(cell)
    return cells
