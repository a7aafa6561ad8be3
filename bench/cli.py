"""``run_bench.py`` / ``hourglass-bench``: a thin command line over ``bench``.

Every command that names a configuration takes the same axis flags: ``--backbone --preset
--pruner --recoverer --tokens --depths``. A user mistake (unknown name, impossible schedule,
malformed file) prints one ``error:`` line and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.config import ModelConfig

EXIT_USAGE = 2
ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "configs"
RESULTS_RUNS = ROOT / "results" / "runs"
RESULTS_CACHE = ROOT / "results" / "cache"


class UserError(Exception):
    """A mistake in the user's input: reported as one line, exit status 2."""


def parse_axis(text: str) -> list[int | float]:
    """``"81,41"`` -> [81, 41]; ``"0.33"`` -> [0.33] (a fraction of T). Same parser as the grid's."""
    from strategies import parse_axis as parse

    v = parse(text)
    return list(v) if isinstance(v, list) else [v]


def add_model_args(p: argparse.ArgumentParser, backbone_required: bool = True) -> None:
    """The configuration axes shared by every command."""
    g = p.add_argument_group("configuration")
    g.add_argument("--backbone", "-b", required=backbone_required, help="registered backbone (see `list backbones`)")
    g.add_argument("--preset", "-p", default="paper", help="backbone preset: paper, small, tiny, ... (default paper)")
    g.add_argument("--pruner", default=None, help="token pruner (see `list pruners`); default none")
    g.add_argument("--recoverer", default=None, help="token recoverer; default attention (seq2seq) / none (seq2frame)")
    g.add_argument("--tokens", default=None, help="tokens kept per stage: 81 or 121,81,41 or fractions of T like 0.33")
    g.add_argument("--depths", default=None, help="pruning depth per stage (blocks before it run on all T): 3 or 2,4,6")


def model_config_from_args(a: argparse.Namespace) -> ModelConfig:
    tokens = parse_axis(a.tokens) if a.tokens else None
    depths = parse_axis(a.depths) if a.depths else None
    if depths is not None and any(not isinstance(d, int) for d in depths):
        raise UserError(f"--depths must be integers, got {a.depths}")
    if (tokens or depths) and not a.pruner:
        raise UserError("--tokens/--depths need a --pruner (e.g. --pruner cluster)")
    if a.pruner and a.pruner != "none" and (not tokens or not depths):
        raise UserError(f"--pruner {a.pruner} needs --tokens and --depths (e.g. --tokens 81 --depths 3)")
    return ModelConfig.create(
        backbone=a.backbone,
        preset=a.preset,
        pruner=a.pruner,
        recoverer=a.recoverer,
        tokens=tokens,
        depths=[int(d) for d in depths] if depths else None,
    )


def _print(obj: Any, fmt: str, text: Callable[[Any], str]) -> None:
    if fmt == "json":
        print(json.dumps(obj, indent=2, default=str))
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
        return [{"name": p.stem, "path": str(p)} for p in sorted(CONFIG_DIR.glob("*.y*ml"))]
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
    from bench.measure.flops import count_flops

    cfg = model_config_from_args(a)
    report = count_flops(cfg, batch=a.batch, flip=a.flip, breakdown=a.breakdown)
    _print(report.to_dict(), a.format, lambda _: report.format_text())
    return 0


# ---- speed -----------------------------------------------------------------------------------
def cmd_speed(a: argparse.Namespace) -> int:
    from bench.measure.speed import measure_speed

    cfg = model_config_from_args(a)
    r = measure_speed(
        cfg, batch=a.batch, warmup=a.warmup, iters=a.iters, threads=a.threads, device=a.device, flip=a.flip
    ).to_dict()

    def text(d: dict[str, Any]) -> str:
        return (
            f"{cfg.label()}: {d['latency_ms_median']:.2f} ms median (IQR {d['latency_ms_iqr']:.2f} ms, "
            f"{100 * d['iqr_over_median']:.1f}%), {d['fps']:.1f} output frames/s, batch {d['batch']}, "
            f"{d['threads']} threads on {d['device']}"
        )

    _print(r, a.format, text)
    return 0


# ---- train / evaluate ------------------------------------------------------------------------
def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=["synthetic", "h36m"], default="synthetic", help="default: embedded synthetic")
    g.add_argument("--data-root", default=None, help="folder with the VideoPose3D Human3.6M npz files (--data h36m)")
    g.add_argument("--keypoints", default=None, help="2D source: gt or cpn_ft_h36m_dbb (h36m; default cpn_ft_h36m_dbb)")
    g.add_argument("--data-seed", type=int, default=0, help="synthetic generator seed (default 0)")
    g.add_argument("--noise", choices=["none", "detector"], default="detector", help="synthetic 2D noise model")
    g.add_argument("--eval-stride", type=int, default=1, help="seq2frame test stride (1 = every frame, the protocol)")
    g.add_argument("--no-flip-test", action="store_true", help="disable test-time flip augmentation")


def _data_config(a: argparse.Namespace):  # -> DataConfig
    from bench.config import DataConfig

    keypoints = a.keypoints or ("cpn_ft_h36m_dbb" if a.data == "h36m" else "gt")
    return DataConfig(
        source=a.data,
        data_root=a.data_root,
        keypoints=keypoints,
        seed=a.data_seed,
        noise=a.noise,
        cache_dir=str(RESULTS_CACHE),
    )


def _train_text(d: dict[str, Any]) -> str:
    lines = [
        f"{d['config'].get('backbone')}/{d['config'].get('preset')} mode={d['mode']} steps={d['steps']} "
        f"({d['seconds']:.0f} s) data={d['data']}",
        f"  MPJPE {d['mpjpe_mm']:.2f} mm   P-MPJPE {d['pmpjpe_mm']:.2f} mm   MPJVE {d['mpjve_mm']:.2f} mm   "
        f"(action-wise; frame-wise MPJPE {d['mpjpe_frame_wise_mm']:.2f}; trivial {d['trivial_mpjpe_mm']:.2f} mm)",
        f"  checkpoint: {d['checkpoint']}",
    ]
    for act, m in d["per_action"].items():
        lines.append(f"    {act:<14} {m['mpjpe']:7.2f} mm")
    return "\n".join(lines)


def cmd_train(a: argparse.Namespace) -> int:
    from bench.config import TrainConfig
    from bench.training.loop import load_data, train

    cfg = model_config_from_args(a)
    data_cfg = _data_config(a)
    data = load_data(data_cfg)
    tc = TrainConfig(
        mode=a.mode,
        steps=a.steps,
        minutes=a.minutes,
        seed=a.seed,
        batch_size=a.batch_size,
        lr=a.lr,
        threads=a.threads,
        loss=a.loss,
        test_flip=not a.no_flip_test,
        eval_stride=a.eval_stride,
    )
    out = Path(a.out) if a.out else RESULTS_RUNS / f"{cfg.cell_id()}-{a.mode}-s{a.seed}"
    res = train(cfg, tc, data, out, init=a.init, progress=a.format == "text", data_name=data.name)
    _print(res.to_dict(), a.format, _train_text)
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from bench.training.evaluate import evaluate, trivial_mpjpe
    from bench.training.loop import load_data, load_weights, model_config_from_checkpoint, output_mode

    stored = model_config_from_checkpoint(a.checkpoint)
    if a.backbone:
        cfg = model_config_from_args(a)
    elif stored is not None:
        cfg = stored
    else:
        raise UserError(f"no model.json beside {a.checkpoint}: name the configuration with --backbone ...")
    data = load_data(_data_config(a))
    model = load_weights(cfg.build(), cfg, a.checkpoint)
    res = evaluate(model, data, output_mode(cfg), flip=not a.no_flip_test, stride=a.eval_stride).to_dict()
    d = {
        **res,
        "trivial_mpjpe_mm": trivial_mpjpe(data),
        "steps": 0,
        "seconds": 0.0,
        "checkpoint": str(a.checkpoint),
        "mode": "evaluate",
        "data": data.name,
        "config": cfg.to_dict(),
    }
    _print(d, a.format, _train_text)
    return 0


# ---- run (grid) -------------------------------------------------------------------------------
def _grid_path(name: str) -> Path:
    p = Path(name)
    if p.is_file():
        return p
    for cand in (CONFIG_DIR / name, CONFIG_DIR / f"{name}.yaml"):
        if cand.is_file():
            return cand
    known = ", ".join(q.stem for q in sorted(CONFIG_DIR.glob("*.yaml")))
    raise UserError(f"no grid file '{name}' (known in configs/: {known})")


def cmd_run(a: argparse.Namespace) -> int:
    from bench.grid import Executor, load_grid, local_executor, process_executor, ray_executor, run_grid
    from bench.report import plot_pareto, summary_table

    grid = load_grid(_grid_path(a.grid))
    out = Path(a.out) if a.out else ROOT / "results" / grid.name / "results.csv"
    executor: Executor = local_executor
    if a.ray or a.ray_address:
        executor = ray_executor(a.ray_address)
    elif a.workers > 1:
        executor = process_executor(a.workers)

    def progress(row: dict[str, Any], i: int, n: int) -> None:
        status = row["error"] or (f"{row.get('gflops', float('nan')):.3f} GFLOPs" if "gflops" in row else "ok")
        if row.get("mpjpe_mm") is not None and not row["error"]:
            status += f", MPJPE {row['mpjpe_mm']:.1f} mm"
        print(f"[{i}/{n}] {row['label']:<48} {status} ({row['cell_seconds']:.1f} s)", flush=True)

    print(f"grid '{grid.name}': results in {out}", flush=True)
    df = run_grid(grid, out, executor, progress=progress, limit=a.limit)
    if df.empty:
        return 0
    print(summary_table(df))
    if "mpjpe_mm" in df and "baseline_key" in df and df["mpjpe_mm"].notna().any():
        from bench.grid.summary import seed_table

        print(seed_table(df))
    png = plot_pareto(df, out.with_name("pareto_gflops_mpjpe.png"))
    if png is not None:
        print(f"Pareto plot: {png}")
    errors = int(df["error"].fillna("").astype(str).str.len().gt(0).sum()) if "error" in df else 0
    if errors:
        print(f"{errors} cell(s) recorded an error (see the 'error' column)")
    return 0


def cmd_default(a: argparse.Namespace) -> int:
    """No command: the default quick grid (configs/quick.yaml)."""
    a.grid, a.out, a.workers, a.ray, a.ray_address, a.limit = "quick", None, 1, False, None, None
    return cmd_run(a)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_bench.py",
        description="HourglassBench: token pruning and recovery in video pose transformers. "
        "With no command, runs the default quick job.",
    )
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
    ps.add_argument("--batch", type=int, default=1, help="clips per forward (default 1)")
    ps.add_argument("--warmup", type=int, default=10)
    ps.add_argument("--iters", type=int, default=40)
    ps.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ps.add_argument("--device", default="cpu", help="cpu or cuda")
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
    pt.add_argument("--batch-size", type=int, default=16, help="clips per step")
    pt.add_argument("--lr", type=float, default=None, help="default: the preset's recipe, else 3e-3")
    pt.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    pt.add_argument(
        "--loss", choices=["paper", "mpjpe"], default="paper", help="the backbone paper's objective or plain MPJPE"
    )
    pt.add_argument("--out", default=None, help="run folder (default results/runs/<cell>-<mode>-s<seed>)")
    pt.add_argument("--format", choices=["text", "json"], default="text")
    pt.set_defaults(func=cmd_train)

    pe = sub.add_parser("evaluate", help="evaluate a checkpoint (MPJPE, P-MPJPE, MPJVE, action-wise)")
    add_model_args(pe, backbone_required=False)
    _add_data_args(pe)
    pe.add_argument("--checkpoint", required=True, help="weights file (model.json beside it names the model)")
    pe.add_argument("--format", choices=["text", "json"], default="text")
    pe.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("run", help="run a YAML grid (resumable; one results row per cell)")
    pr.add_argument("grid", nargs="?", default="quick", help="grid file or name in configs/ (default quick)")
    pr.add_argument("--out", default=None, help="results CSV (default results/<grid>/results.csv)")
    pr.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    pr.add_argument("--ray", action="store_true", help="run cells as Ray tasks (needs the [ray] extra)")
    pr.add_argument("--ray-address", default=None, help="join an existing Ray cluster (e.g. auto)")
    pr.add_argument("--limit", type=int, default=None, help="run at most N pending cells")
    pr.set_defaults(func=cmd_run)
    return p


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the user asked for something impossible'."""
    from backbones import CheckpointError, RegistryError

    errs: list[type[BaseException]] = [UserError, RegistryError, CheckpointError]
    from bench.config import ConfigError
    from bench.grid import GridError
    from bench.training.loop import TrainError

    errs += [ConfigError, GridError, TrainError]
    from strategies import HourglassError, ScheduleError

    errs += [ScheduleError, HourglassError]
    try:
        from bench.data.h36m import DataError

        errs.append(DataError)
    except ImportError:
        pass
    return tuple(errs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    func = getattr(a, "func", cmd_default)
    try:
        return int(func(a))
    except user_errors() as e:
        msg = " ".join(str(e).split())
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
