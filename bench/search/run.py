"""Run a budgeted search: free measures first, then one grid cell per trial, the study in the results folder."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.grid import Executor, Plan, local_executor, run_grid
from bench.grid.spec import GridError
from bench.search.space import Candidate, Constraint, SearchSpace

#: objectives a search may optimise, with their direction
OBJECTIVES = {"mpjpe_mm": "minimize", "gflops": "minimize", "fps": "maximize", "params": "minimize"}
SAMPLERS = ("tpe", "nsga2", "gp", "random")
STUDY_FILE = "search.journal"


@dataclass
class SearchResult:
    """What a search found: one row per completed trial, the front, and the hypervolume after each trial."""

    trials: pd.DataFrame
    front: pd.DataFrame
    hypervolume: list[float]
    reference: dict[str, float]
    candidates: int
    notes: list[str] = field(default_factory=list)
    figure: Path | None = None  # hypervolume against trials, and the front over the candidates


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise GridError("the search needs Optuna: pip install -c constraints-cpu.txt -e '.[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def make_sampler(name: str, seed: int, budget: int = 30) -> Any:
    """Optuna's multi-objective TPE (default), NSGA-II, GP (where installed) or the random control.

    TPE starts from a third of the budget of random trials (3 to 10; Optuna's default is 10), so a small
    budget still leaves it most of its trials to model the front."""
    optuna = _optuna()
    if name == "tpe":
        with warnings.catch_warnings():  # group=True (conditional spaces) is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            startup = max(3, min(10, budget // 3))
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=startup)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        try:
            return optuna.samplers.GPSampler(seed=seed)
        except (ImportError, AttributeError) as e:
            raise GridError(f"--sampler gp needs Optuna's GP extras (torch, scipy): {e}") from None
    raise GridError(f"--sampler {name!r}: one of {', '.join(SAMPLERS)}")


def _sub_plan(plan: Plan, cells: Sequence[Any]) -> Plan:
    return dataclasses.replace(plan, cells=list(cells))


def free_measures(plan: Plan, out_dir: Path, executor: Executor) -> pd.DataFrame:
    """FLOPs and parameters of every planned cell (the first seed), counted on meta and stored as rows."""
    seed = plan.grid.seeds[0]
    cells = [c for c in plan.cells if c.seed == seed]
    return run_grid(_sub_plan(plan, cells), out_dir, executor, only=["flops"], fsync=False)


def journal(folder: Path) -> Any:
    """The Optuna storage of a search folder (its ``search.journal``)."""
    optuna = _optuna()
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / STUDY_FILE)))


def measured(study: Any) -> set[str]:
    """The distinct cells a study has measured (a result or not), as its trials record them: the budget."""
    return {str(t.user_attrs["cell_id"]) for t in study.get_trials(deepcopy=False) if t.user_attrs.get("measured")}


def measured_cells(folder: Path) -> set[str]:
    """:func:`measured` of the (one) study of a search folder."""
    optuna = _optuna()
    storage = journal(folder)
    (summary,) = optuna.get_all_study_summaries(storage)
    return measured(optuna.load_study(study_name=summary.study_name, storage=storage))


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Area dominated by ``points`` (minimised objectives) inside the box up to ``reference``."""
    import moocore

    inside = points[(points < reference).all(axis=1)] if len(points) else points
    return float(moocore.hypervolume(inside, ref=reference)) if len(inside) else 0.0


def run_search(
    plan: Plan,
    out_dir: str | os.PathLike[str],
    trials: int,
    objectives: Sequence[str] = ("mpjpe_mm", "gflops"),
    where: Sequence[Constraint] = (),
    sampler: str = "tpe",
    seed: int = 0,
    executor: Executor = local_executor,
    progress: Callable[[str], None] | None = None,
) -> SearchResult:
    """Search ``plan``'s cells for the front of ``objectives`` with ``trials`` completed trials.

    The study lives in ``out_dir/search.journal`` (Optuna's journal storage): the same command run again,
    after a kill too, continues it; a trial that was running when the process died is run again, and the
    store reuses its cell if it had finished."""
    optuna = _optuna()
    bad = [o for o in objectives if o not in OBJECTIVES]
    if bad or len(objectives) < 2 or "mpjpe_mm" not in objectives:
        raise GridError(
            f"--objectives: mpjpe_mm and one or more of {', '.join(k for k in OBJECTIVES if k != 'mpjpe_mm')}"
        )
    if "accuracy" not in plan.grid.measure or ("fps" in objectives and "speed" not in plan.grid.measure):
        raise GridError("a search needs the grid to measure accuracy (and speed for the fps objective)")
    if trials < 1:
        raise GridError(f"--trials must be >= 1, got {trials}")
    make_sampler(sampler, seed)  # an unknown sampler: one line before any cell is measured
    out = Path(out_dir)
    say = progress or (lambda _: None)
    flops = free_measures(plan, out, executor).set_index("cell_id")
    first_seed = [c for c in plan.cells if c.seed == plan.grid.seeds[0]]
    candidates = []
    for c in first_seed:
        free = {k: float(flops.at[c.id, k]) for k in ("gflops", "params", "gflops_per_frame", "gflops_paper")}
        if all(w.holds(free) for w in where):
            candidates.append(Candidate(c, free))
    space = SearchSpace(candidates)
    say(f"search: {len(candidates)} candidate cells ({len(first_seed) - len(candidates)} outside the constraints)")
    keys = {c.cell.baseline_key for c in candidates}
    bases = [c for c in first_seed if not c.model.pruned and c.baseline_key in keys]
    reference = reference_point(objectives, candidates, _baseline_mpjpe(plan, bases, out, executor, say))
    storage = journal(out)
    name = f"{plan.grid.name}-{sampler}-s{seed}-" + "-".join(objectives)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(sampler, seed, min(trials, len(candidates))),
        directions=[OBJECTIVES[o] for o in objectives],
        load_if_exists=True,
    )
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.enqueue_trial(t.params)  # died with the last process: asked again, its cell reused if stored
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    state = optuna.trial.TrialState

    budget, asks = min(trials, len(candidates)), 0
    while len(measured(study)) < budget:
        asks += 1
        if asks > 20 * budget + len(candidates):  # the sampler keeps proposing measured cells
            say(f"search: stopped after {asks - 1} proposals with {len(measured(study))} distinct cells measured")
            break
        trial = study.ask()
        cand = space.suggest(trial)
        repeat = cand.cell.id in measured(study)
        trial.set_user_attr("cell_id", cand.cell.id)
        trial.set_user_attr("label", cand.cell.model.label())
        values, why = _measure(plan, cand, out, executor, objectives)
        trial.set_user_attr("measured", True)
        if values is None:
            study.tell(trial, state=state.FAIL)
            say(f"[trial {trial.number}] {cand.cell.model.label()}: not a result ({why})")
            continue
        study.tell(trial, values)
        hv = summarise(study, objectives, reference, len(candidates)).hypervolume[-1]
        shown = ", ".join(f"{o} {v:.4g}" for o, v in zip(objectives, values, strict=True))
        again = " (measured before: reused)" if repeat else ""
        say(
            f"[trial {trial.number}, cell {len(measured(study))}/{budget}] {cand.cell.model.label()}: {shown}; "
            f"hypervolume {hv:.4g}{again}"
        )
    result = summarise(study, objectives, reference, len(candidates))
    control = _control(optuna, storage, name, sampler, objectives, reference, len(candidates))
    if len(result.trials):
        from bench.search.plots import search_figure

        result.figure = search_figure(
            result.trials,
            result.hypervolume,
            result.front,
            candidates,
            reference,
            out / "plots" / f"search_{sampler}_s{seed}.png",
            control,
        )
    import importlib.util

    if importlib.util.find_spec("optuna_dashboard") is not None:
        result.notes.append(f"open the study in optuna-dashboard: optuna-dashboard {out / STUDY_FILE}")
    return result


def _control(
    optuna: Any, storage: Any, name: str, sampler: str, objectives: Sequence[str], ref: dict[str, float], n: int
) -> list[float] | None:
    """The hypervolume curve of the random sampler's study with the same seed and objectives, if it ran here."""
    if sampler == "random":
        return None
    twin = name.replace(f"-{sampler}-", "-random-", 1)
    if twin not in {s.study_name for s in optuna.get_all_study_summaries(storage)}:
        return None
    return summarise(optuna.load_study(study_name=twin, storage=storage), objectives, ref, n).hypervolume


def _measure(
    plan: Plan, cand: Candidate, out: Path, executor: Executor, objectives: Sequence[str]
) -> tuple[list[float] | None, str]:
    """Run the candidate's cell and its baseline's row (the store reuses what it holds): (objective values, or
    None with why the MPJPE is not a result by the suite's one rule)."""
    from bench.report.frame import accuracy_notes

    cell = cand.cell
    base = [c for c in plan.cells if not c.model.pruned and c.baseline_key == cell.baseline_key and c is not cell]
    df = run_grid(_sub_plan(plan, [cell, *base[:1]]), out, executor, fsync=False)
    notes = accuracy_notes(df).set_axis(df["cell_id"])
    row = df.set_index("cell_id").loc[cell.id]
    why = str(row.get("error") or "") or str(notes.get(cell.id, ""))
    if why or not all(math.isfinite(float(row.get(o, math.nan))) for o in objectives):
        return None, why or "an objective was not measured"
    return [float(row[o]) for o in objectives], ""


def _baseline_mpjpe(
    plan: Plan, cells: Sequence[Any], out: Path, executor: Executor, say: Callable[[str], None]
) -> float:
    """The candidates' baselines first, before any trial (every fine-tuned trial needs its baseline trained
    anyway): the largest baseline MPJPE that is a result, which fixes the hypervolume's reference point."""
    from bench.report.frame import accuracy_notes

    base = list(cells)
    if not base:
        raise GridError("a search needs the grid's baselines (pruner none): they fix the reference point")
    df = run_grid(_sub_plan(plan, base), out, executor, fsync=False)
    ok = df[(accuracy_notes(df) == "") & df["mpjpe_mm"].notna()]
    if ok.empty:
        raise GridError("no baseline of the grid left the mean pose: its pruned cells have no MPJPE to search")
    say(f"search: {len(base)} baseline(s) measured first (MPJPE {', '.join(f'{v:.1f}' for v in ok['mpjpe_mm'])} mm)")
    return float(ok["mpjpe_mm"].max())


def reference_point(
    objectives: Sequence[str], candidates: Sequence[Candidate], baseline_mpjpe: float
) -> dict[str, float]:
    """The hypervolume's reference point, fixed before the first trial so curves compare across samplers and
    seeds: the fine-tuning target's MPJPE (:data:`bench.report.seeds.TARGETS`, 1.10 x the baseline's: the
    region a researcher keeps), 1.01 x the largest candidate's FLOPs / parameters, 0 frames/s."""
    from bench.report.seeds import TARGETS

    ref = {"mpjpe_mm": TARGETS["finetune"] * baseline_mpjpe, "fps": 0.0}
    for o in ("gflops", "params"):
        ref[o] = 1.01 * max(c.free[o] for c in candidates)
    return {o: ref[o] for o in objectives}


def summarise(study: Any, objectives: Sequence[str], reference: dict[str, float], candidates: int) -> SearchResult:
    """Completed trials in order, their front, and the hypervolume after each trial (at ``reference``)."""
    import optuna

    from bench.report.pareto import nondominated

    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    trials = pd.DataFrame(
        [
            {"trial": t.number, "cell_id": t.user_attrs.get("cell_id"), "label": t.user_attrs.get("label")}
            | dict(zip(objectives, t.values, strict=True))
            for t in done
        ],
        columns=["trial", "cell_id", "label", *objectives],
    )
    sign = np.array([1.0 if OBJECTIVES[o] == "minimize" else -1.0 for o in objectives])
    pts = trials[list(objectives)].to_numpy(float) * sign
    ref = np.array([reference[o] for o in objectives]) * sign
    hv = [hypervolume(pts[: i + 1], ref) for i in range(len(pts))]
    front = trials[nondominated(pts, [False] * len(objectives))] if len(pts) else trials
    return SearchResult(trials, front.drop_duplicates("cell_id"), hv, reference, candidates)
