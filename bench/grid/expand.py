"""Expansion of a grid into cells: plain dicts with a stable ``cell_id``."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from bench.config import ModelConfig, cell_id
from bench.grid.spec import Grid


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
