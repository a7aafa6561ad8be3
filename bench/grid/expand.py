"""Expansion of a grid into typed cells (:class:`~bench.grid.cell.Cell`), and the ablation protocol.

Expansion is a pure product of the grid's axes: no model is built and nothing is checked that needs one
(the planner, :func:`bench.grid.runner.plan_grid`, validates every cell once). The papers' protocol
(HoT, H2OT): for each (backbone, preset, data, seed, baseline budget) one baseline is trained once;
pruned cells either fine-tune from it (mode ``finetune``: strategy inserted, whole model trained) or
evaluate it training-free (mode ``none``: a parameter-free strategy inserted, no optimisation);
``scratch`` trains a cell from random initialisation. A cell that depends on a baseline carries it as a
:class:`~bench.grid.cell.Baseline`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, get_args

from pydantic import ValidationError

from bench.config import Mode, ModelConfig, TrainConfig, validate
from bench.grid.cell import EVAL_ONLY, Baseline, Cell
from bench.grid.spec import MAX_COMBINATIONS, Grid, GridError, ScheduleSpec, default_recoverers, read_grid

MODES: tuple[str, ...] = get_args(Mode)
#: axes a ``modes`` entry may replace for its cells, e.g. ``{none: {recoverers: [interpolation]}}``; an entry
#: that names ``tokens``, ``depths`` or ``schedules`` has its own token plan (a sweep for one pruner, one
#: point for the others), as ``by_backbone`` does for a backbone
MODE_AXES = ("backbones", "pruners", "recoverers", "tokens", "depths", "schedules")
TOKEN_AXES = ("tokens", "depths", "schedules")


def parse_modes(value: Any, where: str) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """``modes: [finetune, {none: {recoverers: [interpolation], backbones: [mixste]}}]`` -> pairs.

    A mode may be listed more than once, each entry with its own axes (``{finetune: {pruners: [cluster]}}``
    and ``{finetune: {pruners: [uniform], tokens: [0.33], depths: [1]}}``)."""
    if value is None:
        return (("scratch", {}),)
    out: list[tuple[str, Mapping[str, Any]]] = []
    for entry in value if isinstance(value, list) else [value]:
        if isinstance(entry, Mapping) and len(entry) == 1:
            mode, axes = next(iter(entry.items()))
            axes = axes or {}
        else:
            mode, axes = entry, {}
        if mode not in MODES:
            raise GridError(f"{where}: unknown mode {mode!r} (known: {', '.join(MODES)})")
        if not isinstance(axes, Mapping) or set(axes) - set(MODE_AXES):
            raise GridError(f"{where}: mode '{mode}' may only replace the axes {', '.join(MODE_AXES)}")
        lists = {k: [v] if not isinstance(v, list) else list(v) for k, v in axes.items()}
        if "recoverers" in lists:
            lists["recoverers"] = default_recoverers(lists["recoverers"])
        if "schedules" in lists:
            lists["schedules"] = [_schedule(s, f"{where}: {mode}.schedules") for s in lists["schedules"]]
        out.append((str(mode), lists))
    if not out:
        raise GridError(f"{where}: 'modes' is an empty list")
    return tuple(out)


def _schedule(value: Any, where: str) -> ScheduleSpec:
    try:
        return ScheduleSpec.model_validate(value)
    except ValidationError as e:
        err = e.errors()[0]
        at = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int))
        raise GridError(f"{where}{'.' + at if at else ''}: {err.get('msg', 'invalid')} (got {value!r})") from None


def token_plan(grid: Grid, axes: Mapping[str, Any] | None = None) -> list[tuple[Any, Any]]:
    """The (tokens, depths) pairs of ``grid`` (a backbone's view), or of a mode entry's ``axes`` when it
    names its own: tokens x depths, plus the schedules (which replace the product when no sweep is given)."""
    axes = axes or {}
    if not set(TOKEN_AXES) & set(axes):
        sweep = list(itertools.product(grid.tokens, grid.depths))
        scheduled = [(s.tokens, s.depths) for s in grid.schedules]
        return [*sweep, *scheduled] if grid.sweeps_tokens() or not scheduled else scheduled
    scheduled = [(s.tokens, s.depths) for s in axes.get("schedules", [])]
    if not {"tokens", "depths"} & set(axes):
        return scheduled
    sweep = list(itertools.product(axes.get("tokens", grid.tokens), axes.get("depths", grid.depths)))
    return [*sweep, *scheduled]


def load_grid(
    path: str | os.PathLike[str], sets: Sequence[str] = (), note: Callable[[str], None] | None = None
) -> Grid:
    """Parse and validate a grid file plus ``--set`` overrides; every problem is a one-line :class:`GridError`.
    ``note`` hears what an override that narrows the grid dropped."""
    grid, where = read_grid(path, sets, note)
    check_protocol(grid, where)
    return grid


def check_protocol(grid: Grid, where: str) -> None:
    """Grid-level rules that need no model: the ``modes`` axis parses; trained cells have step budgets (not
    minutes). Rules that need a model (training-free cells parameter-free) are the planner's."""
    modes = mode_plan(grid)
    span = len(modes) * len(grid.seeds) * len(grid.presets) * len(grid.backbones)
    span *= len(grid.pruners) * len(grid.recoverers) * (len(grid.tokens) * len(grid.depths) + len(grid.schedules))
    if span > MAX_COMBINATIONS:
        raise GridError(
            f"{where}: the axes span {span:,} combinations (at most {MAX_COMBINATIONS:,}); split the grid into files"
        )
    if "accuracy" in grid.measure:
        for backbone in grid.backbones:
            g = grid.for_backbone(backbone)
            for section, opts in (("train", g.train.model_dump()), ("baseline", g.baseline)):
                if opts.get("minutes") is not None:
                    raise GridError(
                        f"{where}: {section}.minutes: grid cells train for a number of steps, so that a loaded "
                        f"and an idle machine give the same numbers; give {section}.steps (minutes stay on the CLI)"
                    )
            if not g.train.steps and g.uses_training():
                raise GridError(f"{where}: train.steps: give every accuracy cell a step budget ({backbone} has none)")


def mode_plan(grid: Grid) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """The grid's training modes with their axis restrictions (``train.mode`` when no ``modes`` axis)."""
    if grid.modes is None:
        return ((grid.train.mode, {}),)
    return parse_modes(grid.modes, f"grid '{grid.name}': modes")


def _baseline(grid: Grid, cfg: ModelConfig, seed: int) -> Baseline:
    """The shared baseline of ``cfg`` in ``grid``: its train section with the ``baseline`` changes, from scratch."""
    changes = {k: v for k, v in grid.baseline.items() if k not in EVAL_ONLY}
    train = {**grid.train.model_dump(exclude={*EVAL_ONLY}), **changes, "mode": "scratch", "seed": seed}
    return Baseline(cfg.baseline(), validate(TrainConfig, train, "baseline"), grid.data)


def option_product(axes: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """``{k: [1, 2], m: [a]}`` -> ``[{k: 1, m: a}, {k: 2, m: a}]`` (``[{}]`` for no axes)."""
    keys = sorted(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(axes[k] for k in keys))]


def expand(grid: Grid) -> list[Cell]:
    """All cells of a grid, in a stable order; a baseline (pruner none) appears once per backbone.

    When a mode needs a baseline, the baseline row evaluates the shared baseline (mode ``none``)."""
    cells: list[Cell] = []
    seen: set[str] = set()
    for backbone in grid.backbones:
        cells += _expand_backbone(grid.for_backbone(backbone), backbone, seen)
    return cells


def _expand_backbone(grid: Grid, backbone: str, seen: set[str]) -> list[Cell]:
    """The cells of one backbone (``grid`` already carries its ``by_backbone`` axes)."""
    cells: list[Cell] = []
    plan = mode_plan(grid)
    shared = any(mode != "scratch" for mode, _ in plan)
    for preset, seed, pruner in itertools.product(grid.presets, grid.seeds, grid.pruners):
        plans: list[tuple[str, Iterable[tuple[Any, Any, Any]]]] = []
        if pruner == "none":
            plans.append(("none" if shared else "scratch", [(None, None, None)]))
        else:
            for mode, axes in plan:
                if backbone not in axes.get("backbones", [backbone]):
                    continue
                if pruner not in axes.get("pruners", grid.pruners):
                    continue
                recs = axes.get("recoverers", grid.recoverers)
                plans.append((mode, [(r, t, k) for r in recs for t, k in token_plan(grid, axes)]))
        for mode, combos in plans:
            train = grid.train.replace(mode=mode, seed=seed)
            for recoverer, tokens, depths in combos:
                plain = ModelConfig.create(backbone, preset, pruner, recoverer, tokens, depths)
                for bopts, popts, ropts in itertools.product(
                    option_product(grid.backbone_options.get(backbone, {})),
                    option_product(grid.pruner_options.get(pruner, {})),
                    option_product(grid.recoverer_options.get(plain.effective_recoverer, {}) if plain.pruned else {}),
                ):
                    cfg = plain.replace(
                        overrides=tuple(sorted(bopts.items())),
                        pruner_options=tuple(sorted(popts.items())),
                        recoverer_options=tuple(sorted(ropts.items())),
                    )
                    baseline = _baseline(grid, cfg, seed) if mode != "scratch" else None
                    cell = Cell(cfg, train, grid.data, grid.speed, tuple(grid.measure), baseline)
                    if cell.id not in seen:
                        seen.add(cell.id)
                        cells.append(cell)
    return cells
