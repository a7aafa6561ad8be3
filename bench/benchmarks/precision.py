"""Reduced precision as deployed: bf16 (or fp16) autocast latency against fp32, and the output change (issue 13).

    python run_bench.py precision --preset paper --threads 1 --warmup 1 --iters 5 [--format json]

For every backbone the same model (same seeded weights) is timed in fp32 and under autocast
round-robin in one process (:func:`bench.measure.speed.time_round_robin` with one precision per
entry), so the ratio is meaningful on a loaded machine. ``ratio`` is the median of per-round
ratios low / fp32 (< 1: reduced precision is faster). ``rel_change`` is ||y_low - y_fp32|| /
||y_fp32|| on one random input, ``max_rel_change`` max |y_low - y_fp32| / max |y_fp32|. Whether
this CPU has native bf16 (AVX512-BF16, AMX) is printed: without it bf16 matmuls are emulated and
slower than fp32.

    python run_bench.py precision --results results/quick [--backbone mixste]

With ``--results`` the models are a grid's trained baselines (``results/quick/baselines/<key>/model.pt``
with ``baseline_desc.json``: model and data): each row adds the fp32 and reduced-precision MPJPE of the
checkpoint, evaluated on the grid's (synthetic) data as its baseline row was scored, and their change
in mm; the output change is then the trained model's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tabulate import tabulate

from bench.config import ConfigError, DataConfig, ModelConfig, SpeedConfig, TrainConfig, validate
from bench.grid.cell import EVAL_ONLY
from bench.report.frame import MEAN_POSE_LIMIT, mean_pose_note

if TYPE_CHECKING:
    from bench.measure.speed import SpeedResult


def output_change(
    cfg: ModelConfig, precision: str, batch: int = 1, device: str = "cpu", weights: str | Path | None = None
) -> tuple[float, float]:
    """(relative L2 change, relative max change) of ``cfg``'s output under ``precision`` vs fp32, on one
    seeded random input; the model's weights are seeded too, or loaded from the checkpoint ``weights``."""
    from bench.measure.flops.counters import input_shape
    from bench.measure.precision import autocast

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cfg.build(device).eval()
        x = torch.randn(input_shape(model, batch), device=device)
    if weights is not None:
        from bench.training.loop import load_weights

        model = load_weights(model, cfg, weights).to(device).eval()
    with torch.inference_mode():
        ref = model(x).float()
        with autocast(precision, device):
            low = model(x).float()
    diff = low - ref
    return float(diff.norm() / ref.norm()), float(diff.abs().max() / ref.abs().max())


def _low_precision(speed: SpeedConfig) -> SpeedConfig:
    """``speed`` when it names a reduced precision (fp32 is the reference every row is timed against)."""
    if speed.precision == "fp32":
        raise ConfigError("speed.precision: fp32 is the reference; give bf16 (CPU, CUDA) or fp16 (CUDA)")
    return speed


def precision_row(cfg: ModelConfig, speed: SpeedConfig, weights: str | Path | None = None) -> dict[str, Any]:
    """fp32 and ``speed.precision`` latency of ``cfg`` from the same rounds, their ratio, the output change."""
    from bench.measure.speed import paired_speedup, time_round_robin

    modes = list(speed.compile)  # eager first; with --compile each precision compiled too, in the same rounds
    timed = time_round_robin(
        [cfg] * 2 * len(modes),
        speed,
        precisions=["fp32", speed.precision] * len(modes),
        compiles=[m for m in modes for _ in range(2)],
    )
    ref, low = timed[:2]
    ratio = paired_speedup(low.latency_ms, ref.latency_ms)  # per-round low / fp32
    rel, rel_max = output_change(cfg, speed.precision, batch=speed.batch, device=speed.device, weights=weights)
    return {
        "backbone": cfg.backbone,
        "preset": cfg.preset,
        "precision": speed.precision,
        "fp32_ms": ref.latency_ms_median,
        "low_ms": low.latency_ms_median,
        "ratio": ratio["speedup"],
        "ratio_iqr": ratio["speedup_iqr"],
        "ratio_of_medians": low.latency_ms_median / ref.latency_ms_median,
        "rel_change": rel,
        "max_rel_change": rel_max,
        "gflops_per_call": ref.gflops_per_call,
        "threads": ref.threads,
        "batch": ref.batch,
        "warmup": speed.warmup,
        "iters": speed.iters,
        "device": ref.device,
        "device_name": ref.device_name,
        "env": ref.env,
        "native_bf16": ref.env.get("native_bf16"),
        "note": low.precision_note,  # bf16 emulated on this CPU: the ratio is the CPU's, not the model's
        "error": ref.error or low.error,
        **(_compiled(ref, low, *timed[2:]) if len(timed) > 2 else {}),
    }


def _compiled(ref: SpeedResult, low: SpeedResult, c_ref: SpeedResult, c_low: SpeedResult) -> dict[str, Any]:
    """The compiled fp32 and compiled low-precision forms timed in the same rounds: latencies, their ratio,
    and compiled / eager at each precision (median per-round ratios; < 1: compiling is faster)."""
    from bench.measure.speed import paired_speedup

    def per_round(a: SpeedResult, b: SpeedResult) -> float:  # a / b
        return paired_speedup(a.latency_ms, b.latency_ms)["speedup"] if a.ok and b.ok else float("nan")

    return {
        "compile": f"none+{c_ref.compile}",
        "compiled_fp32_ms": c_ref.latency_ms_median,
        "compiled_low_ms": c_low.latency_ms_median,
        "compiled_ratio": per_round(c_low, c_ref),
        "compiled_over_eager_fp32": per_round(c_ref, ref),
        "compiled_over_eager_low": per_round(c_low, low),
        "compile_s": c_ref.compile_s + c_low.compile_s,
        "compile_error": c_ref.error or c_low.error or "",
    }


def run_precision(
    backbones: Sequence[str] | None = None, *, preset: str = "paper", speed: SpeedConfig
) -> list[dict[str, Any]]:
    """One row per backbone (seeded weights): fp32 and ``precision`` latency from the same rounds, ratio,
    output change.

    ``speed.precision`` is the reduced precision; fp32 is refused (one :class:`ConfigError` line)."""
    from backbones import list_backbones

    speed = _low_precision(speed)
    names = backbones if backbones is not None else list_backbones()
    return [precision_row(ModelConfig.create(name, preset), speed) for name in names]


#: the train options that say how a grid scored its rows (:data:`bench.grid.cell.EVAL_ONLY` but the precision)
EVAL_KEYS = tuple(k for k in EVAL_ONLY if k != "eval_precision")
DESC_FILE = "baseline_desc.json"  # written beside each shared baseline by bench.grid.baselines.BaselineCache


@dataclass(frozen=True)
class TrainedBaseline:
    """A grid's shared baseline: its checkpoint, model, the data it trained on and how the grid scored it."""

    key: str
    checkpoint: Path
    model: ModelConfig
    data: DataConfig
    scoring: dict[str, Any]


def trained_baselines(results: str | Path, backbones: Sequence[str] | None = None) -> list[TrainedBaseline]:
    """The baselines under ``results/baselines/<key>/`` (``model.pt`` with ``baseline_desc.json``), in key
    order, of ``backbones`` (default all); scored as the grid's ``grid.yaml`` says (its baseline row's
    ``test_flip``, ``eval_stride``, ``eval_batch``, ``eval_every``). None found is a one-line UserError."""
    from bench.errors import UserError
    from bench.training.loop import MODEL_FILE

    root = Path(results)
    if not (root / "baselines").is_dir():
        raise UserError(f"--results {root}: no baselines/ folder (a grid that fine-tunes from baselines writes one)")
    scoring = _grid_scoring(root)
    found = [_read_baseline(ckpt, scoring) for ckpt in sorted((root / "baselines").glob(f"*/{MODEL_FILE}"))]
    found = [b for b in found if backbones is None or b.model.backbone in backbones]
    if not found:
        which = f" of {', '.join(backbones)}" if backbones else ""
        raise UserError(f"--results {root}: no trained baseline{which} under baselines/*/{MODEL_FILE}")
    return found


def _read_baseline(ckpt: Path, scoring: dict[str, dict[str, Any]]) -> TrainedBaseline:
    """One baseline checkpoint and the description beside it; a missing or malformed one is a UserError."""
    from bench.errors import UserError

    desc_path = ckpt.with_name(DESC_FILE)
    try:
        desc = json.loads(desc_path.read_text())
        model = ModelConfig.from_dict(desc["model"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{desc_path}: not a baseline description ({type(e).__name__}: {e})") from None
    data = validate(DataConfig, desc.get("data") or {}, f"{desc_path}: data")
    key = str(desc.get("key") or ckpt.parent.name)
    return TrainedBaseline(key, ckpt, model, data, scoring.get(key, {}))


def _grid_scoring(root: Path) -> dict[str, dict[str, Any]]:
    """Baseline key -> the evaluation options of the grid cell that scored it (``{}`` without grid.yaml)."""
    from bench.grid import expand, load_grid

    if not (root / "grid.yaml").is_file():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for cell in expand(load_grid(root / "grid.yaml")):
        key = cell.baseline_key
        if key and (key not in out or not cell.model.pruned):
            out[key] = {k: getattr(cell.train, k) for k in EVAL_KEYS}
    return out


def accuracy_change(baseline: TrainedBaseline, precision: str) -> dict[str, Any]:
    """fp32 and ``precision`` MPJPE (mm) of a trained baseline on the data and test split the grid used."""
    from bench.training.evaluate import evaluate, trivial_mpjpe
    from bench.training.loop import cached_data, load_weights, output_mode

    opts = validate(TrainConfig, {"mode": "none", **baseline.scoring}, "train")
    cfg = baseline.model
    model = load_weights(cfg.build(), cfg, baseline.checkpoint)
    data = cached_data(baseline.data)
    seqs = data.test[:: opts.eval_every]

    def score(p: str) -> float:
        mode, flip, stride = output_mode(model), opts.test_flip, opts.eval_stride
        return evaluate(
            model, data, mode, flip=flip, batch_size=opts.eval_batch, stride=stride, sequences=seqs, precision=p
        ).mpjpe_mm

    ref, low = score("fp32"), score(precision)
    trivial = trivial_mpjpe(data, sequences=seqs)
    note = mean_pose_note(ref, trivial, MEAN_POSE_LIMIT)  # the suite's one accuracy rule
    return {
        "baseline_key": baseline.key,
        "checkpoint": str(baseline.checkpoint),
        "mpjpe_fp32_mm": None if note else ref,
        "mpjpe_low_mm": None if note else low,
        "mpjpe_change_mm": None if note else low - ref,
        "trivial_mpjpe_mm": trivial,
        "accuracy_note": note,
        "eval": {k: getattr(opts, k) for k in EVAL_KEYS},
    }


def run_trained_precision(
    results: str | Path, backbones: Sequence[str] | None = None, *, speed: SpeedConfig
) -> list[dict[str, Any]]:
    """One row per trained baseline of a grid's results folder: the latency ratio (as :func:`run_precision`)
    and its fp32 and ``precision`` MPJPE and their change in mm, evaluated on the CPU on the grid's data."""
    from bench.measure.precision import check_precision

    speed = _low_precision(speed)
    precision = speed.precision
    check_precision(precision, "cpu", "precision (evaluation runs on the CPU)")
    rows = []
    for b in trained_baselines(results, backbones):
        rows.append({**precision_row(b.model, speed, weights=b.checkpoint), **accuracy_change(b, precision)})
    return rows


def _accuracy_cells(r: dict[str, Any]) -> list[str]:
    """A trained baseline's MPJPE columns: fp32, reduced precision, change (mm), the trivial figure."""

    def mm(v: float | None, fmt: str) -> str:
        return "–" if v is None else format(v, fmt)

    return [
        r["baseline_key"],
        mm(r["mpjpe_fp32_mm"], ".2f"),
        mm(r["mpjpe_low_mm"], ".2f"),
        mm(r["mpjpe_change_mm"], "+.3f"),
        f"{r['trivial_mpjpe_mm']:.1f}",
        r.get("accuracy_note") or "",
    ]


def _compiled_cells(r: dict[str, Any]) -> list[str]:
    if r.get("compile_error"):
        return ["-", "-", "-"]
    return [
        f"{r['compiled_fp32_ms']:.1f} / {r['compiled_low_ms']:.1f}",
        f"{r['compiled_ratio']:.3f}",
        f"{r['compiled_over_eager_fp32']:.3f} / {r['compiled_over_eager_low']:.3f}",
    ]


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The precision table as text (with each trained baseline's MPJPE change where the rows carry it),
    the protocol and the CPU's bf16 support underneath."""
    trained = bool(rows) and all("mpjpe_fp32_mm" in r for r in rows)
    compiled = any("compiled_ratio" in r for r in rows)
    table = [
        [
            f"{r['backbone']}/{r['preset']}",
            r["precision"],
            f"{r['fp32_ms']:.1f}",
            f"{r['low_ms']:.1f}",
            f"{r['ratio']:.3f} (IQR {r['ratio_iqr']:.3f})",
            f"{100 * r['rel_change']:.2f}% / {100 * r['max_rel_change']:.2f}%",
            *(_accuracy_cells(r) if trained else []),
            *(_compiled_cells(r) if compiled else []),
            "; ".join(x for x in (r.get("note") or "", r["error"] or "", r.get("compile_error") or "") if x),
        ]
        for r in rows
    ]
    headers = ["model", "precision", "fp32 ms", "low ms", "low / fp32 (paired)", "output change L2 / max"]
    if trained:
        headers += ["baseline", "MPJPE fp32 (mm)", "MPJPE low (mm)", "ΔMPJPE (mm)", "trivial (mm)", "accuracy note"]
    if compiled:
        headers += ["compiled fp32 / low ms", "compiled low / fp32", "compiled/eager fp32 / low"]
    text = tabulate(table, headers=[*headers, "note / error"], disable_numparse=True)
    if rows:
        r0, e = rows[0], rows[0]["env"]
        text += (
            f"\nprotocol: median of per-round ratios over {r0['iters']} interleaved rounds after {r0['warmup']} "
            f"warm-ups, batch {r0['batch']}, {r0['threads']} thread(s), {r0['device']} ({r0['device_name']}); "
            f"CPU kernels {e.get('cpu_capability')}, avx512_bf16={e.get('avx512_bf16')}, "
            f"amx_tile={e.get('amx_tile')} (native bf16: {'yes' if e.get('native_bf16') else 'no'}); "
            f"torch {e.get('torch')}, load average {e.get('load_average')}."
        )
    if trained:
        ev = rows[0]["eval"]
        text += (
            f"\nMPJPE: each trained baseline's checkpoint on its grid's data and test split (eval_stride "
            f"{ev['eval_stride']}, every {ev['eval_every']}. sequence, flip test {ev['test_flip']}), on the CPU, "
            "fp32 and under autocast; the output change is the trained model's."
        )
    return text
