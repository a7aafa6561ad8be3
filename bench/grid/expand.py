"""Expansion of a grid into cells: plain dicts with a stable ``cell_id``, and the ablation protocol.

The papers' protocol (HoT, H2OT): for each (backbone, preset, data, seed, baseline budget) one baseline
is trained once; pruned cells either fine-tune from it (mode ``finetune``: strategy inserted, whole model
trained) or evaluate it training-free (mode ``none``: a parameter-free strategy inserted, no
optimisation); ``scratch`` trains a cell from random initialisation. A cell that depends on a baseline
carries its description under ``"baseline"`` (``key`` = :func:`~bench.config.stable_id` of the rest).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args

from pydantic import ValidationError

from bench.config import Mode, ModelConfig, cell_id, stable_id
from bench.grid.spec import Grid, GridError, ScheduleSpec, read_grid

MODES: tuple[str, ...] = get_args(Mode)
#: axes a ``modes`` entry may replace for its cells, e.g. ``{none: {recoverers: [interpolation]}}``; an entry
#: that names ``tokens``, ``depths`` or ``schedules`` has its own token plan (a sweep for one pruner, one
#: point for the others), as ``by_backbone`` does for a backbone
MODE_AXES = ("backbones", "pruners", "recoverers", "tokens", "depths", "schedules")
TOKEN_AXES = ("tokens", "depths", "schedules")
#: train options that change how a model is scored, not its weights: not part of a baseline's key
EVAL_ONLY = ("test_flip", "eval_stride", "eval_batch", "eval_every", "eval_precision")


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


def load_grid(path: str | os.PathLike[str], sets: Sequence[str] = ()) -> Grid:
    """Parse and validate a grid file plus ``--set`` overrides; every problem is a one-line :class:`GridError`."""
    grid, where = read_grid(path, sets)
    check_protocol(grid, where)
    return grid


def check_protocol(grid: Grid, where: str) -> None:
    """Grid-level rules: step budgets (not minutes) for trained cells; training-free cells parameter-free."""
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
    expand(grid)  # raises for a training-free cell with a parametrised strategy


def _train(grid: Grid) -> dict[str, Any]:
    """The grid's train section as plain data (its seed comes from the ``seeds`` axis)."""
    return grid.train.model_dump(exclude={"seed"})


def mode_plan(grid: Grid) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """The grid's training modes with their axis restrictions (``train.mode`` when no ``modes`` axis)."""
    if grid.modes is None:
        return ((grid.train.mode, {}),)
    return parse_modes(grid.modes, f"grid '{grid.name}': modes")


def _baseline(grid: Grid, cfg: ModelConfig, seed: int) -> dict[str, Any]:
    train = {k: v for k, v in {**_train(grid), **grid.baseline}.items() if k not in EVAL_ONLY}
    rest: dict[str, Any] = {
        "model": cfg.baseline().to_dict(),
        "train": {**train, "mode": "scratch"},
        "data": dict(grid.data),
        "seed": seed,
    }
    return {"key": stable_id(rest), **rest}


def _check_parameter_free(cfg: ModelConfig, grid: Grid) -> None:
    try:
        model = cfg.build("meta")
    except Exception:  # an impossible configuration is recorded as an error row when the cell runs
        return
    n = sum(p.numel() for name, p in model.named_parameters() if name.startswith("hourglass."))
    if n:
        raise GridError(
            f"grid '{grid.name}': training-free cell {cfg.label()} needs a parameter-free strategy, but it adds "
            f"{n} parameters (give the none mode recoverers: [interpolation], or fine-tune it)"
        )


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
    """All cells of a grid, in a stable order; a baseline (pruner none) appears once per backbone.

    When a mode needs a baseline, the baseline row evaluates the shared baseline (mode ``none``)."""
    cells: list[dict[str, Any]] = []
    seen: set[str] = set()
    for backbone in grid.backbones:
        cells += _expand_backbone(grid.for_backbone(backbone), backbone, seen)
    return cells


def _expand_backbone(grid: Grid, backbone: str, seen: set[str]) -> list[dict[str, Any]]:
    """The cells of one backbone (``grid`` already carries its ``by_backbone`` axes)."""
    cells: list[dict[str, Any]] = []
    train = _train(grid)
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
                recs = [None if r in (None, "default") else str(r) for r in axes.get("recoverers", grid.recoverers)]
                plans.append((mode, [(r, t, k) for r in recs for t, k in token_plan(grid, axes)]))
        for mode, combos in plans:
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
                    if mode == "none" and cfg.pruned:
                        _check_parameter_free(cfg, grid)
                    cell: dict[str, Any] = {
                        "model": cfg.to_dict(),
                        "seed": seed,
                        "measure": list(grid.measure),
                        "speed": grid.speed.model_dump(),
                        "train": {**train, "mode": mode},
                        "data": grid.data.model_dump(),
                        "baseline": _baseline(grid, cfg, seed) if mode != "scratch" else None,
                    }
                    cid = cell_key(cell)
                    cell["cell_id"] = cid
                    if cid not in seen:
                        seen.add(cid)
                        cells.append(cell)
    return cells
