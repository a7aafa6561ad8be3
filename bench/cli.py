"""``run_bench.py`` / ``hourglass-bench``: a thin command line over ``bench``.

Every command that names a configuration takes the same axis flags: ``--backbone --preset
--pruner --recoverer --tokens --depths``. A user mistake (unknown name, impossible schedule,
malformed file) prints one ``error:`` line and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bench.config import ConfigError, M, ModelConfig, validate
from bench.errors import UserError, one_line

if TYPE_CHECKING:
    from bench.grid.executors import Executor
    from bench.grid.runner import Plan

EXIT_USAGE = 2
EXIT_BUG = 1
ROOT = Path(__file__).resolve().parent.parent
RESULTS_RUNS = ROOT / "results" / "runs"
RESULTS_CACHE = ROOT / "results" / "cache"
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"


class _Parser(argparse.ArgumentParser):
    """argparse with the error contract: a bad flag is one ``error:`` line, exit 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")


def config_from_flags(cls: type[M], values: Mapping[str, Any], flags: Mapping[str, str]) -> M:
    """``validate(cls, values)`` with the failing field named by its command-line flag."""
    try:
        return validate(cls, values)
    except ConfigError as e:
        key, sep, rest = str(e).partition(": ")
        raise ConfigError(f"{flags.get(key, key)}: {rest}" if sep else str(e)) from None


def parse_axis(text: str) -> list[int | float]:
    """``"81,41"`` -> [81, 41]; ``"0.33"`` -> [0.33] (a fraction of T). Same parser as the grid's."""
    from strategies import parse_axis as parse

    v = parse(text)
    return list(v) if isinstance(v, list) else [v]


def add_model_args(p: argparse.ArgumentParser, backbone_required: bool = True) -> None:
    """The configuration axes shared by every command."""
    g = p.add_argument_group("configuration")
    g.add_argument("--backbone", "-b", required=backbone_required, help="registered backbone (see `list backbones`)")
    g.add_argument("--preset", "-p", default=None, help="backbone preset: paper, small, tiny, ... (default paper)")
    g.add_argument("--pruner", default=None, help="token pruner (see `list pruners`); default none")
    g.add_argument("--recoverer", default=None, help="token recoverer; default attention (seq2seq) / none (seq2frame)")
    g.add_argument("--tokens", default=None, help="tokens kept per stage: 81 or 121,81,41 or fractions of T like 0.33")
    g.add_argument("--depths", default=None, help="pruning depth per stage (blocks before it run on all T): 3 or 2,4,6")


def model_config_from_args(a: argparse.Namespace) -> ModelConfig:
    """The :class:`ModelConfig` the axis flags name; contradictions are refused naming both flags."""
    tokens = parse_axis(a.tokens) if a.tokens else None
    depths = parse_axis(a.depths) if a.depths else None
    if depths is not None and any(not isinstance(d, int) for d in depths):
        raise UserError(f"--depths must be integers, got {a.depths}")
    pruned = a.pruner not in (None, "none")
    if (tokens or depths) and not pruned:
        why = "--pruner none prunes nothing" if a.pruner == "none" else "no --pruner was given"
        raise UserError(f"--tokens/--depths need a --pruner (e.g. --pruner cluster): {why}")
    if a.recoverer not in (None, "none") and not pruned:
        why = "--pruner none prunes nothing" if a.pruner == "none" else "no --pruner was given"
        raise UserError(f"--recoverer {a.recoverer} recovers pruned tokens and needs a --pruner: {why}")
    if pruned and (not tokens or not depths):
        raise UserError(f"--pruner {a.pruner} needs --tokens and --depths (e.g. --tokens 81 --depths 3)")
    return ModelConfig.create(
        backbone=a.backbone,
        preset=a.preset or "paper",
        pruner=a.pruner,
        recoverer=a.recoverer,
        tokens=tokens,
        depths=[int(d) for d in depths] if depths else None,
    )


SPEED_KEYS = ("batch", "throughput_batch", "warmup", "iters", "threads", "device", "precision", "compile")
SPEED_FLAGS = {k: f"--{k.replace('_', '-')}" for k in SPEED_KEYS}
PRECISION_HELP = "fp32 (default), bf16 (torch.autocast; CPU and CUDA) or fp16 (autocast; CUDA only)"


def add_speed_args(p: argparse.ArgumentParser, precision_default: str | None = None) -> None:
    """The one speed protocol's flags; unset ones take :class:`~bench.config.SpeedConfig`'s defaults
    (``precision_default`` replaces its precision, for a command that compares against fp32)."""
    from bench.config import SpeedConfig

    d = SpeedConfig()
    precision = precision_default or d.precision
    g = p.add_argument_group("speed protocol (defaults: bench.config.SpeedConfig)")
    g.add_argument("--batch", type=int, default=None, help=f"clips per forward for latency (default {d.batch})")
    g.add_argument(
        "--throughput-batch",
        type=int,
        default=None,
        help="clips per forward for throughput, timed in the same rounds (default: the preset's throughput_batch)",
    )
    g.add_argument("--warmup", type=int, default=None, help=f"untimed calls first (default {d.warmup})")
    g.add_argument("--iters", type=int, default=None, help=f"timed calls (default {d.iters})")
    g.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    g.add_argument("--device", default=None, help=f"cpu or cuda[:N] (default {d.device})")
    g.add_argument("--precision", default=precision_default, help=f"{PRECISION_HELP} (default {precision})")
    g.add_argument(
        "--compile",
        action="store_const",
        const="inductor",
        default=None,
        help="also time each model torch.compile'd (inductor) in the same rounds: speed.compile [none, inductor]",
    )


def speed_config_from_args(a: argparse.Namespace):  # -> SpeedConfig
    """The :class:`SpeedConfig` of the speed flags (only those given; the rest are its defaults)."""
    from bench.config import SpeedConfig

    values = {k: getattr(a, k) for k in SPEED_FLAGS if getattr(a, k, None) is not None}
    return config_from_flags(SpeedConfig, values, SPEED_FLAGS)


def to_json(obj: Any) -> str:
    """Strict JSON (RFC 8259 has no NaN or Infinity): a non-finite number is ``null``."""
    import math

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, Mapping):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj), indent=2, default=str, allow_nan=False)


def _print(obj: Any, fmt: str, text: Callable[[Any], str]) -> None:
    if fmt == "json":
        print(to_json(obj))
    else:
        print(text(obj))


# ---- list ------------------------------------------------------------------------------------
def _list_entries(kind: str) -> list[dict[str, Any]]:
    if kind == "backbones":
        from backbones import get_backbone_spec, list_backbones

        return [get_backbone_spec(n).to_dict() for n in list_backbones()]
    if kind in ("pruners", "recoverers"):
        import strategies

        if kind == "pruners":
            return [_strategy_info(n, strategies.get_pruner_class(n)) for n in strategies.list_pruners()]
        return [_strategy_info(n, strategies.get_recoverer_class(n)) for n in strategies.list_recoverers()]
    if kind == "configs":
        from bench.grid import packaged_grids

        return [{"name": n, "path": str(p)} for n, p in packaged_grids().items()]
    raise UserError(f"unknown list '{kind}' (known: backbones, pruners, recoverers, configs)")


def _strategy_info(name: str, cls: type) -> dict[str, Any]:
    doc = (cls.__doc__ or "").strip().splitlines()
    info: dict[str, Any] = {"name": name, "class": f"{cls.__module__}.{cls.__qualname__}"}
    info["summary"] = doc[0] if doc else ""
    for attr in ("stage", "needs_attention", "parameter_free"):
        if hasattr(cls, attr):
            info[attr] = getattr(cls, attr)
    return info


def _entries_text(kind: str, entries: list[dict[str, Any]]) -> str:
    lines = [f"{kind}:"]
    for e in entries:
        if kind == "backbones":
            presets = ", ".join(
                f"{k} (T={v['frames']}, dim={v['dim']}, depth={v['depth']})" for k, v in e["presets"].items()
            )
            lines.append(f"  {e['name']:<10} {e['pipeline']:<9} presets: {presets}")
        else:
            doc = e.get("summary") or e.get("path") or ""
            lines.append(f"  {e['name']:<14} {doc}")
    return "\n".join(lines)


def cmd_list(a: argparse.Namespace) -> int:
    kinds = [a.kind] if a.kind else ["backbones", "pruners", "recoverers", "configs"]
    result = {k: _list_entries(k) for k in kinds}
    if a.format == "json":
        print(json.dumps(result[a.kind] if a.kind else result, indent=2, default=str))
    else:
        print("\n".join(_entries_text(k, v) for k, v in result.items()))
    return 0


# ---- flops -----------------------------------------------------------------------------------
def cmd_flops(a: argparse.Namespace) -> int:
    from bench.config import SpeedConfig
    from bench.measure.flops import count_flops

    batch = config_from_flags(SpeedConfig, {"batch": a.batch}, {"batch": "--batch"}).batch
    cfg = model_config_from_args(a)
    report = count_flops(cfg, batch=batch, flip=a.flip, breakdown=a.breakdown)
    _print(report.to_dict(), a.format, lambda _: report.format_text())
    return 0


# ---- speed -----------------------------------------------------------------------------------
def cmd_speed(a: argparse.Namespace) -> int:
    from bench.measure.speed import check_device, measure_speed_group

    cfg = model_config_from_args(a)
    sc = speed_config_from_args(a)
    check_device(sc)
    r = measure_speed_group(cfg, [], sc, flip=a.flip)[cfg.model_id()]

    def text(d: dict[str, Any]) -> str:
        return (
            f"{cfg.label()}: latency {d['latency_ms_median']:.2f} ms median at batch {d['batch']} (IQR "
            f"{d['latency_ms_iqr']:.2f} ms, {100 * d['iqr_over_median']:.1f}%); throughput {d['throughput_fps']:.1f} "
            f"output frames/s at batch {d['throughput_batch']}; {d['precision']}, {d['threads']} thread(s) on "
            f"{d['device']} ({d['device_name']})" + (f"; {d['precision_note']}" if d.get("precision_note") else "")
        ) + (_compiled_text(d) if "compile" in d else "")

    _print(r, a.format, text)
    return 0


def _compiled_text(d: dict[str, Any]) -> str:
    if d["compile_error"]:
        return f"\ncompiled: {d['compile_error']}"
    return (
        f"\ncompiled ({d['compile'].split('+')[-1]}, same rounds): latency {d['compiled_latency_ms']:.2f} ms, "
        f"compiled/eager {d['compiled_over_eager']:.3f} (median per-round ratio), throughput "
        f"{d['compiled_fps']:.1f} output frames/s; compile {d['compile_s']:.1f} s, output vs eager "
        f"{d['compiled_rel_err']:.1e} (relative L2)"
    )


# ---- train / evaluate ------------------------------------------------------------------------
def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        choices=["synthetic", "h36m", "3dhp", "synthetic_3dhp"],
        default="synthetic",
        help="synthetic (default: embedded, Human3.6M-like), h36m, 3dhp (MPI-INF-3DHP), synthetic_3dhp",
    )
    g.add_argument(
        "--data-root", default=None, help="folder with the real files: Human3.6M (--data h36m) or 3DHP (--data 3dhp)"
    )
    g.add_argument("--keypoints", default=None, help="2D source: gt or cpn_ft_h36m_dbb (h36m; default cpn_ft_h36m_dbb)")
    g.add_argument("--data-seed", type=int, default=0, help="synthetic generator seed (default 0)")
    g.add_argument("--noise", choices=["none", "detector"], default="detector", help="synthetic 2D noise model")
    g.add_argument("--eval-stride", type=int, default=1, help="seq2frame test stride (1 = every frame, the protocol)")
    g.add_argument(
        "--aggregation",
        choices=["pooled", "sequence_mean", "readme_weights"],
        default="pooled",
        help="3DHP: how test sequences combine (default pooled over valid frames; see bench.measure.pck)",
    )
    g.add_argument("--no-flip-test", action="store_true", help="disable test-time flip augmentation")


DATA_FLAGS = {"source": "--data", "data_root": "--data-root", "keypoints": "--keypoints", "seed": "--data-seed"}
DATA_FLAGS |= {"noise": "--noise"}
TRAIN_FLAGS = {k: f"--{k.replace('_', '-')}" for k in ("mode", "steps", "minutes", "seed", "batch_size", "lr")}
TRAIN_FLAGS |= {k: f"--{k.replace('_', '-')}" for k in ("threads", "loss", "eval_stride")}
TRAIN_FLAGS |= {"test_flip": "--no-flip-test", "eval_precision": "--precision"}


def _data_config(a: argparse.Namespace):  # -> DataConfig
    """The :class:`DataConfig` of the data flags; a flag the source does not read is refused."""
    from bench.config import DataConfig
    from bench.data.sources import REAL

    if a.data not in REAL and a.data_root is not None:
        raise UserError(f"--data-root names real files and needs --data h36m or 3dhp (--data is {a.data})")
    if a.data != "h36m" and a.keypoints is not None:
        raise UserError(f"--keypoints names Human3.6M 2D files and needs --data h36m (--data is {a.data})")
    keypoints = a.keypoints or ("cpn_ft_h36m_dbb" if a.data == "h36m" else "gt")
    values = {"source": a.data, "data_root": a.data_root, "keypoints": keypoints, "seed": a.data_seed}
    values |= {"noise": a.noise, "cache_dir": str(RESULTS_CACHE)}
    return config_from_flags(DataConfig, values, DATA_FLAGS)


def _eval_options(a: argparse.Namespace):  # -> TrainConfig (its evaluation fields)
    from bench.config import TrainConfig

    values = {"mode": "none", "test_flip": not a.no_flip_test, "eval_stride": a.eval_stride}
    return config_from_flags(TrainConfig, values, TRAIN_FLAGS)


def _run_folder(a: argparse.Namespace, cfg: ModelConfig) -> Path:
    out = Path(a.out) if a.out else RESULTS_RUNS / f"{cfg.model_id()}-{a.mode}-s{a.seed}"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file; a run folder is needed")
    return out


def _train_text(d: dict[str, Any]) -> str:
    lines = [
        f"{d['config'].get('backbone')}/{d['config'].get('preset')} mode={d['mode']} steps={d['steps']} "
        f"({d['seconds']:.0f} s) data={d['data']} precision={d.get('eval_precision', 'fp32')}",
        f"  MPJPE {d['mpjpe_mm']:.2f} mm   P-MPJPE {d['pmpjpe_mm']:.2f} mm   MPJVE {d['mpjve_mm']:.2f} mm   "
        f"(action-wise; frame-wise MPJPE {d['mpjpe_frame_wise_mm']:.2f}; trivial {d['trivial_mpjpe_mm']:.2f} mm)",
        f"  checkpoint: {d['checkpoint']}",
    ]
    if d.get("pck") is not None:  # MPI-INF-3DHP: the official metrics, per test sequence and combined
        lines[1] = (
            f"  MPJPE {d['mpjpe_mm']:.2f} mm   PCK {d['pck']:.2f}   AUC {d['auc']:.2f}   (valid frames, sequences "
            f"combined: {d['aggregation']}; P-MPJPE {d['pmpjpe_mm']:.2f} mm; trivial {d['trivial_mpjpe_mm']:.2f} mm)"
        )
        lines.append(f"    {'sequence':<9} {'frames':>6} {'MPJPE':>8} {'PCK':>7} {'AUC':>7}")
        for name, m in d["per_sequence"].items():
            lines.append(f"    {name:<9} {m['frames']:>6} {m['mpjpe_mm']:8.2f} {m['pck']:7.2f} {m['auc']:7.2f}")
        return "\n".join(lines)
    for act, m in d["per_action"].items():
        lines.append(f"    {act:<14} {m['mpjpe']:7.2f} mm")
    return "\n".join(lines)


def cmd_train(a: argparse.Namespace) -> int:
    """Every option is checked (type, range, contradictions) before any data is loaded or file written."""
    from bench.config import TrainConfig
    from bench.training.loop import load_data, start_problem, train

    cfg = model_config_from_args(a)
    data_cfg = _data_config(a)
    values = {"mode": a.mode, "steps": a.steps, "minutes": a.minutes, "seed": a.seed, "batch_size": a.batch_size}
    values |= {"lr": a.lr, "threads": a.threads, "loss": a.loss, "test_flip": not a.no_flip_test}
    values |= {"eval_precision": a.precision}
    tc = config_from_flags(TrainConfig, values | {"eval_stride": a.eval_stride}, TRAIN_FLAGS)
    if tc.steps and tc.minutes:
        raise UserError("--steps and --minutes: give one budget (steps give the same weights on any machine)")
    if tc.mode == "none" and (tc.steps or tc.minutes):
        raise UserError("--mode none is training-free: drop --steps/--minutes, or train with --mode finetune")
    why = start_problem(tc, a.init is not None)
    if why is not None:
        raise UserError(why)
    if tc.mode == "scratch" and a.init is not None:
        raise UserError("--init loads a baseline for --mode finetune or none; --mode scratch starts from random")
    if a.init is not None and not Path(a.init).is_file():
        raise UserError(f"--init {a.init}: no such checkpoint file")
    out = _run_folder(a, cfg)
    cfg.build("meta")  # an impossible model is refused before data is loaded or a file written
    data = load_data(data_cfg)
    progress = a.format == "text"
    res = train(cfg, tc, data, out, init=a.init, progress=progress, data_name=data.name, aggregation=a.aggregation)
    _print(res.to_dict(), a.format, _train_text)
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from bench.measure.precision import check_precision
    from bench.training.evaluate import evaluate, trivial_mpjpe
    from bench.training.loop import load_data, load_weights, model_config_from_checkpoint, output_mode

    if not Path(a.checkpoint).is_file():
        raise UserError(f"--checkpoint {a.checkpoint}: no such file")
    stored = model_config_from_checkpoint(a.checkpoint)
    axes = [f for f, v in (("--pruner", a.pruner), ("--recoverer", a.recoverer), ("--tokens", a.tokens)) if v]
    axes += ["--depths"] if a.depths else []
    axes += ["--preset"] if a.preset else []
    if axes and not a.backbone:
        raise UserError(f"{'/'.join(axes)} without --backbone would be ignored: name the whole configuration")
    if a.backbone:
        cfg = model_config_from_args(a)
    elif stored is not None:
        cfg = stored
    else:
        raise UserError(f"no model.json beside {a.checkpoint}: name the configuration with --backbone ...")
    opts = _eval_options(a)
    check_precision(a.precision, "cpu")
    data_cfg = _data_config(a)
    model = load_weights(cfg.build(), cfg, a.checkpoint)
    data = load_data(data_cfg)
    res = evaluate(
        model,
        data,
        output_mode(model),
        flip=opts.test_flip,
        stride=opts.eval_stride,
        precision=a.precision,
        aggregation=a.aggregation,
    ).to_dict()
    d = {
        **res,
        "trivial_mpjpe_mm": trivial_mpjpe(data),
        "steps": 0,
        "seconds": 0.0,
        "checkpoint": str(a.checkpoint),
        "mode": "evaluate",
        "eval_precision": a.precision,
        "data": data.name,
        "config": cfg.to_dict(),
    }
    _print(d, a.format, _train_text)
    return 0


# ---- run (grid) -------------------------------------------------------------------------------
def _executor(a: argparse.Namespace) -> Executor:
    """The executor the run flags ask for: Ray (``--ray`` / ``--ray-address``), a process pool or this process."""
    from bench.grid import local_executor, process_executor

    if a.workers < 1:
        raise UserError(f"--workers must be >= 1, got {a.workers}")
    if a.ray or a.ray_address:
        if a.workers > 1:
            raise UserError("--workers and --ray: Ray places the cells on its cluster's CPUs; give one of them")
        from bench.grid import ray_executor

        return ray_executor(a.ray_address)
    return process_executor(a.workers) if a.workers > 1 else local_executor


def cmd_run(a: argparse.Namespace) -> int:
    from bench.grid import grid_source, load_grid, plan_grid, run_grid
    from bench.grid.spec import MEASURES

    only = None
    if a.only is not None:
        only = names_arg(a.only, "--only")
        bad = sorted(set(only) - set(MEASURES))
        if bad or not only:
            raise UserError(f"--only: unknown measure {', '.join(bad) or a.only!r} (known: {', '.join(MEASURES)})")
    if a.limit is not None and a.limit < 1:
        raise UserError(f"--limit must be at least 1, got {a.limit}")
    grid = load_grid(grid_source(a.grid), a.set or (), lambda line: print(line, flush=True))
    plan = plan_grid(grid)
    measures: list[str] = [m for m in grid.measure if only is None or m in only]
    if not measures:
        raise UserError(f"--only {a.only}: grid '{grid.name}' takes none of these (it takes {', '.join(grid.measure)})")
    out = Path(a.out or "results").absolute() / grid.name
    if a.dry_run:
        return _dry_run(plan, measures, out, a.limit)
    executor = _executor(a)

    def progress(row: dict[str, Any], i: int, n: int) -> None:
        status = row.get("error") or (f"{row.get('gflops', float('nan')):.3f} GFLOPs" if "gflops" in row else "ok")
        if row.get("mpjpe_mm") is not None and not row.get("error"):
            from bench.report.frame import mean_pose_note

            trivial = float(row.get("trivial_mpjpe_mm") or float("nan"))
            if mean_pose_note(float(row["mpjpe_mm"]), trivial):  # the accuracy rule's one owner
                status += f", MPJPE not presented (still at the mean pose: trivial {trivial:.1f} mm)"
            else:
                status += f", MPJPE {row['mpjpe_mm']:.1f} mm"
        if row.get("fps") is not None and not row.get("error"):
            status += f", {row['latency_ms']:.1f} ms at batch {row.get('speed_batch')}"
            if row.get("speedup") is not None:
                status += f" ({row['speedup']:.2f}x)"
            status += f", {row['fps']:.0f} frames/s at batch {row.get('throughput_batch')}"
            if row.get("throughput_speedup") is not None:
                status += f" ({row['throughput_speedup']:.2f}x)"
            if row.get("speedup") is not None:
                status += " its baseline, same rounds"
        secs = row.get("cell_seconds") or 0.0
        print(f"[{i}/{n}] {row['measure']:<8} {row['label']:<48} {status} ({secs:.1f} s)", flush=True)

    print(f"grid '{grid.name}': {len(plan.cells)} cells, {len(plan.skipped)} skipped; results in {out}", flush=True)
    df = run_grid(
        plan,
        out,
        executor,
        progress=progress,
        limit=a.limit,
        only=measures,
        retry_failed=a.retry_failed,
        note=lambda line: print(line, flush=True),
    )
    _print_skipped(plan.skipped)
    if df.empty:
        return 0
    return _report(out, ("hot", "ablation", "hypervolume"), ("md", "latex", "csv"), {c.id for c in plan.cells})


def _report(results: Path, tables: Sequence[str], formats: Sequence[str], cells: set[str] | None = None) -> int:
    """Tables and plots of a results folder from its stored rows; the headline table and the paths printed.

    ``cells``: the cell ids of the grid that just ran; rows the folder holds for other cells (a grid changed
    between two runs into one folder) stay on disk but are left out of the report, and a line says so."""
    from bench.grid.store import in_use
    from bench.report.files import write_report
    from bench.results import export, load

    if results.is_dir() and in_use(results):
        print(f"a run is writing {results} now: these tables hold the rows it has finished so far", flush=True)
    df = load(results, lambda line: print(line, flush=True))
    if cells is not None and "cell_id" in df:
        stale = ~df["cell_id"].isin(cells)
        if stale.any():
            print(
                f"{int(stale.sum())} stored cell(s) are not in this grid (it changed since they ran): kept on "
                f"disk, left out of the report",
                flush=True,
            )
        df = df[~stale].reset_index(drop=True)
    folder = results.parent if results.is_file() else results
    files = write_report(df, folder, tables=tables, formats=formats)
    print(files.headline)
    if "mpjpe_mm" in df and "baseline_key" in df and df["mpjpe_mm"].notna().any():
        from bench.report.seeds import seed_table

        print(seed_table(df))
    if not results.is_file() and any(folder.glob("*.jsonl")):
        print(f"rows:  {export(folder, cells)} (one row per cell, every measure merged)")
    errors = int(df["error"].astype(str).str.len().gt(0).sum())
    if errors:
        print(f"{errors} cell(s) recorded an error (see the 'error' column; rerun them with --retry-failed)")
    for path in files.tables:
        print(f"table: {path}")
    for path in files.plots:
        if path.suffix == ".png":
            print(f"plot:  {path} (+ .pdf)")
    print(f"notebook: {notebook_line(folder)}")
    return 0


def notebook_line(folder: Path) -> str:
    """How to open this folder in the notebook: a command that works pasted into this shell (the venv's own
    ``jupyter``, ``--allow-root`` where root runs it), or the install line when JupyterLab is absent."""
    import importlib.util
    import shlex

    jupyter = Path(sys.executable).parent / "jupyter"
    if importlib.util.find_spec("jupyterlab") is None or not jupyter.is_file():
        return (
            f"{NOTEBOOK} (JupyterLab is not installed here: {shlex.quote(sys.executable)} -m pip install "
            f"-c constraints-cpu.txt -e '.[notebook]')"
        )
    root = " --allow-root" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    where = f"HOURGLASS_RESULTS={shlex.quote(str(folder))}"
    cmd = f"{where} {shlex.quote(str(jupyter))} lab{root} {shlex.quote(str(NOTEBOOK))}"
    return f"{NOTEBOOK} (open it in JupyterLab: {cmd})"


def _print_skipped(skipped: list[tuple[str, str]]) -> None:
    if skipped:
        print(f"skipped {len(skipped)} impossible cell(s):")
        for label, reason in skipped:
            print(f"  {label:<48} {reason}")


def _dry_run(plan: Plan, measures: list[str], out: Path, limit: int | None) -> int:
    import dataclasses

    from bench.grid.estimate import estimate, format_estimate

    cells = plan.cells[:limit] if limit is not None else plan.cells
    print(f"grid '{plan.grid.name}' (dry run: nothing runs): {len(cells)} cells, measures {', '.join(measures)}")
    print(f"results would go to {out}")
    for c in cells:
        print(f"  {c.id}  {c.model.label():<56} seed {c.seed}")
    _print_skipped(plan.skipped)
    sub = dataclasses.replace(plan, cells=cells)
    print(format_estimate(estimate(sub, measures)))
    g = plan.grid
    if g.data.source == "h36m" and "accuracy" in measures and not g.data.data_root:
        print("note: data.data_root is not set; a run that measures accuracy needs --set data.data_root=DIR")
    print(f"{len(cells)} cells, {len(plan.skipped)} skipped")
    return 0


# ---- benchmarks: speedup, precision, study, paper targets -----------------------------------------
def names_arg(text: str, flag: str) -> list[str]:
    """A comma-separated option's items; an empty list or an empty item is a one-line error."""
    items = [x.strip() for x in text.split(",")]
    if not text.strip() or any(not x for x in items):
        raise UserError(f"{flag} {text!r}: give comma-separated names, none of them empty")
    return items


def _backbones_arg(a: argparse.Namespace) -> list[str] | None:
    if a.backbone is None:
        return None
    from backbones import list_backbones

    names = names_arg(a.backbone, "--backbone")
    for n in names:
        if not list_backbones([n]):
            raise UserError(f"--backbone: unknown backbone '{n}' (known: {', '.join(list_backbones())})")
    return names


def _check_preset(names: list[str] | None, preset: str) -> None:
    """Every named backbone (every registered one for None) has ``preset``: else one line, before any timing."""
    from backbones import get_backbone_spec, list_backbones

    for n in list_backbones(names) if names else list_backbones():
        get_backbone_spec(n).preset(preset)  # RegistryError names the presets it has


def cmd_speedup(a: argparse.Namespace) -> int:
    """Each backbone's published hourglass configurations timed against its baseline in one process."""
    from bench.benchmarks.speedup import format_rows, run_speedup
    from bench.measure.speed import check_device

    sc = speed_config_from_args(a)
    names = _backbones_arg(a)
    check_device(sc)
    _check_preset(names, a.preset)
    rows = run_speedup(names, preset=a.preset, speed=sc)
    _print(rows, a.format, format_rows)
    return 1 if any(r.get("error") for r in rows) else 0


def cmd_precision(a: argparse.Namespace) -> int:
    """Each backbone in fp32 and under ``--precision``'s autocast, timed in the same rounds; with
    ``--results``, each trained baseline of that grid folder, with its MPJPE change too."""
    from bench.benchmarks.precision import format_rows, run_precision, run_trained_precision
    from bench.measure.speed import check_device

    sc = speed_config_from_args(a)
    if sc.precision == "fp32":
        raise UserError("--precision fp32 is the reference every row is timed against; give bf16 (CPU, CUDA) or fp16")
    names = _backbones_arg(a)
    check_device(sc)
    if a.results is not None:
        if a.preset is not None:
            raise UserError("--preset names untrained models; with --results each baseline keeps its own preset")
        if not Path(a.results).is_dir():
            raise UserError(f"--results {a.results}: no such folder (a grid's results folder, e.g. results/quick)")
        rows = run_trained_precision(a.results, names, speed=sc)
    else:
        _check_preset(names, a.preset or "paper")
        rows = run_precision(names, preset=a.preset or "paper", speed=sc)
    _print(rows, a.format, format_rows)
    return 1 if any(r.get("error") for r in rows) else 0


def cmd_targets(a: argparse.Namespace) -> int:
    """The published FLOPs of every HoT/TPC configuration against ours."""
    from bench.measure.flops.targets import format_targets, paper_targets, reproduce_targets

    names = _backbones_arg(a)
    targets = tuple(t for t in paper_targets() if names is None or t.backbone in names)
    rows = reproduce_targets(targets)
    _print(rows, a.format, format_targets)
    return 1 if any(r.get("error") for r in rows) else 0


def cmd_verdict(a: argparse.Namespace) -> int:
    """The default run's targets on a results folder (bench.benchmarks.verdict), with its speedup table."""
    from tabulate import tabulate

    from bench.benchmarks.verdict import check, format_checks, speedup_table
    from bench.benchmarks.verdict import to_json as checks_json
    from bench.results import load

    df = load(Path(a.results))
    repeat = load(Path(a.repeat)) if a.repeat else None
    checks = check(df, repeat)
    if a.format == "json":
        print(to_json({"checks": checks_json(checks), "speedups": speedup_table(df).to_dict("records")}))
        return 0
    print(format_checks(checks))
    table = speedup_table(df)
    if len(table):
        print()
        print(tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".2f"))
    return 0


def cmd_study(a: argparse.Namespace) -> int:
    """The accuracy study: ``run study`` (configs/study.yaml: baseline, fine-tuned pruners and training-free
    MPJPE per backbone over seeds 0, 1, 2); the run ends with the mean ± sd table over seeds."""
    a.grid = "study"
    return cmd_run(a)


def cmd_search(a: argparse.Namespace) -> int:
    """A budgeted Pareto search over a grid's cells (issue 20): free measures first, then one cell per trial."""
    from bench.grid import grid_source, load_grid, plan_grid
    from bench.search import parse_where, run_search
    from bench.search.run import SAMPLERS

    if a.sampler not in SAMPLERS:
        raise UserError(f"--sampler {a.sampler!r}: one of {', '.join(SAMPLERS)}")
    objectives = names_arg(a.objectives, "--objectives")
    where = parse_where(a.where or [])
    grid = load_grid(grid_source(a.grid), a.set or (), lambda line: print(line, flush=True))
    plan = plan_grid(grid)
    out = Path(a.out or "results").absolute() / f"{grid.name}-search"
    executor = _executor(a)
    print(f"search '{grid.name}': {a.trials} trials, sampler {a.sampler}, seed {a.seed}; results in {out}", flush=True)
    res = run_search(
        plan,
        out,
        a.trials,
        objectives,
        where,
        a.sampler,
        a.seed,
        executor,
        lambda s: print(s, flush=True),
    )
    from tabulate import tabulate

    print(f"front found ({len(res.front)} of {len(res.trials)} completed trials; {res.candidates} candidates):")
    print(tabulate(res.front, headers="keys", tablefmt="github", showindex=False, floatfmt=".4g"))
    ref = ", ".join(f"{k} {v:.4g}" for k, v in res.reference.items())
    print(f"hypervolume {res.hypervolume[-1] if res.hypervolume else 0.0:.4g} (reference point: {ref})")
    res.trials.assign(hypervolume=res.hypervolume).to_csv(out / "search_trials.csv", index=False)
    if res.figure is not None:
        print(f"plot:  {res.figure} (+ .pdf): hypervolume against trials, the front over every candidate")
    for line in res.notes:
        print(line)
    print(f"trials: {out / 'search_trials.csv'}; rows: the folder's results.csv (`run_bench.py report {out}`)")
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    tables = ("hot", "ablation", "hypervolume") if a.table == "all" else (a.table,)
    formats = ("md", "latex", "csv") if a.format == "all" else (a.format,)
    return _report(Path(a.results), tables, formats)


def cmd_default(a: argparse.Namespace) -> int:
    """No command: the default quick grid."""
    a.grid, a.out, a.workers, a.ray, a.ray_address, a.limit = "quick", None, 1, False, None, None
    a.set, a.dry_run, a.only, a.retry_failed = [], False, None, False
    return cmd_run(a)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """The flags of ``run`` (and of ``study``, its alias for one grid)."""
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a grid key by its dotted path (repeatable)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the cells, skipped cells and estimated cost; run nothing"
    )
    p.add_argument(
        "--only", default=None, metavar="MEASURES", help="comma-separated measures to take (flops,speed,accuracy)"
    )
    p.add_argument("--out", default=None, help="results root (default ./results); rows go to OUT/<grid name>/")
    p.add_argument("--retry-failed", action="store_true", help="run the stored error rows again")
    p.add_argument("--workers", type=int, default=1, help="worker processes; a crashing cell becomes an error row")
    p.add_argument("--ray", action="store_true", help="run cells as Ray tasks (needs the [ray] extra)")
    p.add_argument("--ray-address", default=None, help="join an existing Ray cluster (e.g. auto)")
    p.add_argument("--limit", type=int, default=None, help="run at most N pending cells")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="run_bench.py",
        description="HourglassBench: token pruning and recovery in video pose transformers. "
        "With no command, runs the default quick job.",
    )
    p.add_argument("--debug", action="store_true", help="show the traceback of a user error too")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    pl = sub.add_parser("list", help="list registered backbones, pruners, recoverers or grid configs")
    pl.add_argument("kind", nargs="?", choices=["backbones", "pruners", "recoverers", "configs"])
    pl.add_argument("--format", choices=["text", "json"], default="text")
    pl.set_defaults(func=cmd_list)

    pf = sub.add_parser("flops", help="parameters and FLOPs of one configuration, from every counter")
    add_model_args(pf)
    pf.add_argument("--batch", type=int, default=1, help="clips per forward (default 1)")
    pf.add_argument("--flip", action="store_true", help="count test-time flip augmentation (two passes)")
    pf.add_argument("--breakdown", action="store_true", help="add a per-module table")
    pf.add_argument("--format", choices=["text", "json"], default="text")
    pf.set_defaults(func=cmd_flops)

    ps = sub.add_parser("speed", help="latency and throughput of one configuration (stated protocol)")
    add_model_args(ps)
    add_speed_args(ps)
    ps.add_argument("--flip", action="store_true", help="time test-time flip augmentation (two passes)")
    ps.add_argument("--format", choices=["text", "json"], default="text")
    ps.set_defaults(func=cmd_speed)

    pt = sub.add_parser("train", help="train (scratch / finetune / training-free) and evaluate one configuration")
    add_model_args(pt)
    _add_data_args(pt)
    pt.add_argument("--mode", choices=["scratch", "finetune", "none"], default="scratch")
    pt.add_argument("--init", default=None, help="trained baseline checkpoint (finetune / none)")
    pt.add_argument("--steps", type=int, default=None, help="training budget in steps")
    pt.add_argument("--minutes", type=float, default=None, help="training budget in minutes")
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--batch-size", type=int, default=None, help="clips per step (default: the preset recipe, else 16)")
    pt.add_argument("--lr", type=float, default=None, help="default: the preset's recipe, else 3e-3")
    pt.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    pt.add_argument(
        "--loss", choices=["paper", "mpjpe"], default="paper", help="the backbone paper's objective or plain MPJPE"
    )
    pt.add_argument("--precision", default="fp32", help="evaluation precision: " + PRECISION_HELP)
    pt.add_argument("--out", default=None, help="run folder (default results/runs/<cell>-<mode>-s<seed>)")
    pt.add_argument("--format", choices=["text", "json"], default="text")
    pt.set_defaults(func=cmd_train)

    pe = sub.add_parser("evaluate", help="evaluate a checkpoint (MPJPE, P-MPJPE, MPJVE, action-wise)")
    add_model_args(pe, backbone_required=False)
    _add_data_args(pe)
    pe.add_argument("--checkpoint", required=True, help="weights file (model.json beside it names the model)")
    pe.add_argument("--precision", default="fp32", help=PRECISION_HELP)
    pe.add_argument("--format", choices=["text", "json"], default="text")
    pe.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("run", help="run a YAML grid (resumable; one results row per cell)")
    pr.add_argument("grid", nargs="?", default="quick", help="packaged grid name (see `list configs`) or a grid file")
    _add_run_args(pr)
    pr.set_defaults(func=cmd_run)

    pu = sub.add_parser("study", help="the accuracy study over seeds: `run study` plus its seed summary")
    _add_run_args(pu)
    pu.set_defaults(func=cmd_study)

    ps = sub.add_parser("search", help="budgeted Pareto search over a grid's cells (Optuna; the [search] extra)")
    ps.add_argument("grid", help="packaged grid name or a grid file; its axes are the search space")
    ps.add_argument("--trials", type=int, required=True, help="completed trials to reach (resumes a stored study)")
    ps.add_argument("--objectives", default="mpjpe_mm,gflops", help="mpjpe_mm plus gflops, fps or params")
    ps.add_argument("--where", action="append", metavar="COND", help="constraint on a free measure, e.g. gflops<=150")
    ps.add_argument("--sampler", default="tpe", help="tpe (multi-objective, default), nsga2, gp or random")
    ps.add_argument("--seed", type=int, default=0, help="sampler seed")
    ps.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a grid key (repeatable)")
    ps.add_argument(
        "--out", default=None, help="results root (default ./results); the search goes to OUT/<grid>-search/"
    )
    ps.add_argument("--workers", type=int, default=1, help="worker processes for the shared baselines and cells")
    ps.add_argument("--ray", action="store_true", help="run the cells as Ray tasks (needs the [ray] extra)")
    ps.add_argument("--ray-address", default=None, help="join an existing Ray cluster (e.g. auto)")
    ps.set_defaults(func=cmd_search)

    pv = sub.add_parser("speedup", help="each backbone's published HoT/TPC forms timed against its baseline")
    pv.add_argument("--backbone", "-b", default=None, help="comma-separated backbones (default: all with a variant)")
    pv.add_argument("--preset", "-p", default="paper", help="backbone preset (default paper)")
    add_speed_args(pv)
    pv.add_argument("--format", choices=["text", "json"], default="text")
    pv.set_defaults(func=cmd_speedup)

    pq = sub.add_parser(
        "precision", help="each backbone in fp32 and under bf16/fp16 autocast, timed in the same rounds"
    )
    pq.add_argument("--backbone", "-b", default=None, help="comma-separated backbones (default: all)")
    pq.add_argument("--preset", "-p", default=None, help="backbone preset (default paper; not with --results)")
    pq.add_argument(
        "--results",
        default=None,
        metavar="DIR",
        help="a grid's results folder (e.g. results/quick): its trained baselines, with fp32 and low MPJPE",
    )
    add_speed_args(pq, precision_default="bf16")
    pq.add_argument("--format", choices=["text", "json"], default="text")
    pq.set_defaults(func=cmd_precision)

    pg = sub.add_parser("targets", help="the published FLOPs of every HoT/TPC configuration against ours")
    pg.add_argument("--backbone", "-b", default=None, help="comma-separated backbones (default: all)")
    pg.add_argument("--format", choices=["text", "json"], default="text")
    pg.set_defaults(func=cmd_targets)

    pw = sub.add_parser("verdict", help="benchmark: the default run's targets checked on a results folder")
    pw.add_argument("results", help="results folder of a grid run (e.g. results/quick)")
    pw.add_argument("--repeat", default=None, metavar="DIR", help="a second run of the same grid (rank stability)")
    pw.add_argument("--format", choices=["text", "json"], default="text")
    pw.set_defaults(func=cmd_verdict)

    pp = sub.add_parser("report", help="tables and plots of a results folder, from its stored rows alone")
    pp.add_argument("results", help="results folder (holding results.csv) or the CSV itself")
    pp.add_argument("--table", choices=["hot", "ablation", "hypervolume", "all"], default="all")
    pp.add_argument("--format", choices=["md", "latex", "csv", "all"], default="all")
    pp.set_defaults(func=cmd_report)
    return p


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the user asked for something impossible' (exit 2, one line): every
    ``bench`` error (:class:`~bench.errors.UserError`), the registry, checkpoint, schedule and hourglass
    errors of ``backbones`` and ``strategies``, and ``OSError`` (a path that cannot be read or written)."""
    from backbones import CheckpointError, RegistryError
    from strategies import HourglassError, ScheduleError

    return (UserError, RegistryError, CheckpointError, ScheduleError, HourglassError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A user mistake: one ``error:`` line, exit 2 (``--debug``: with its traceback).
    A bug: its traceback, exit 1."""
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args  # accepted anywhere on the line, not only before the command
    a = parser.parse_args([x for x in args if x != "--debug"])
    func = getattr(a, "func", cmd_default)
    old_term = _sigterm_interrupts()
    try:
        return int(func(a))
    except BrokenPipeError:  # `... | head -1`: the reader left; nothing more to say
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter's own flush at exit)
        return 0
    except user_errors() as e:
        if debug:
            traceback.print_exc()
        print(f"error: {one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        print(f"interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130
    finally:
        _restore_sigterm(old_term)


def _sigterm_interrupts() -> Any:
    """SIGTERM is an interrupt like Ctrl-C (a training loop saves its state and a grid stops cleanly); the
    previous handler is returned (None off the main thread, where no handler can be set)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("terminated (SIGTERM)")

    return signal.signal(signal.SIGTERM, interrupt)


def _restore_sigterm(old: Any) -> None:
    import signal

    if old is not None:
        signal.signal(signal.SIGTERM, old)
