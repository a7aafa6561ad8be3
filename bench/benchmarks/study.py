"""Accuracy study (a benchmark, not a test): ``python -m bench.benchmarks.study``.

For each backbone and seed, on the embedded synthetic data (or real Human3.6M):

1. **baseline**: the backbone trained from scratch for the budget;
2. **HoT**: cluster pruning (DPC-kNN) keeping ``tokens`` (default T/3) after block ``depth``, with
   the default recovery (TRA for seq2seq, the centre frame for seq2frame), *fine-tuned* from the
   baseline for the same budget;
3. **training-free**: a parameter-free strategy (cluster + interpolation for seq2seq, TPC for
   seq2frame) inserted into the trained baseline, no optimisation.

Every finished run is a row in ``results/study/results.csv`` (resumable); the summary gives mean and
spread over seeds, the trivial predictor (mean training pose), and the targets of the data/training
issue (baseline <= 0.5 x trivial; HoT within 10% of the baseline).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from bench.config import DataConfig, ModelConfig, TrainConfig
from bench.grid import ResultStore
from bench.training.loop import load_data, train

ROOT = Path(__file__).resolve().parents[2]


def variants(backbone: str, preset: str, tokens: float, depth: int) -> dict[str, ModelConfig]:
    base = ModelConfig.create(backbone, preset)
    seq2seq = base.pipeline == "seq2seq"
    return {
        "baseline": base,
        "hot": ModelConfig.create(backbone, preset, "cluster", None, tokens, depth),
        "training_free": ModelConfig.create(
            backbone, preset, "cluster", "interpolation" if seq2seq else "none", tokens, depth
        ),
    }


def run_chain(job: dict[str, Any]) -> list[dict[str, Any]]:
    """baseline -> HoT fine-tune -> training-free, for one backbone and seed (one process)."""
    import torch

    torch.set_num_threads(job["threads"])
    data = load_data(DataConfig(**job["data"]))
    out = Path(job["out"]) / f"{job['backbone']}-{job['preset']}-s{job['seed']}"
    v = variants(job["backbone"], job["preset"], job["tokens"], job["depth"])
    common = TrainConfig(
        seed=job["seed"],
        eval_stride=job["eval_stride"],
        threads=job["threads"],
        lr=job["lr"],
        batch_size=job.get("batch_size", 16),
        loss=job.get("loss", "paper"),
    )
    budgeted = common.replace(steps=job.get("steps"), minutes=job.get("minutes"))
    rows = []
    plan = [
        ("baseline", budgeted.replace(mode="scratch"), None),
        ("hot", budgeted.replace(mode="finetune"), out / "baseline" / "model.pt"),
        ("training_free", common.replace(mode="none"), out / "baseline" / "model.pt"),
    ]
    for name, tc, init in plan:
        r = train(v[name], tc, data, out / name, init=init, progress=False, data_name=data.name).to_dict()
        rows.append(
            {
                "cell_id": f"{job['backbone']}-{job['preset']}-s{job['seed']}-{name}",
                "backbone": job["backbone"],
                "preset": job["preset"],
                "seed": job["seed"],
                "variant": name,
                "label": v[name].label(),
                "mpjpe_mm": r["mpjpe_mm"],
                "pmpjpe_mm": r["pmpjpe_mm"],
                "mpjve_mm": r["mpjve_mm"],
                "trivial_mpjpe_mm": r["trivial_mpjpe_mm"],
                "steps": r["steps"],
                "seconds": r["seconds"],
                "data": r["data"],
                "error": "",
            }
        )
    return rows


def summarise(df: pd.DataFrame) -> str:
    lines = []
    table = []
    for (backbone, variant), g in df.groupby(["backbone", "variant"], sort=False):
        m = g["mpjpe_mm"].tolist()
        sd = statistics.stdev(m) if len(m) > 1 else 0.0
        table.append(
            [
                backbone,
                variant,
                g["label"].iloc[0],
                len(m),
                f"{statistics.mean(m):.1f} ± {sd:.1f}",
                f"{g['pmpjpe_mm'].mean():.1f}",
                f"{g['trivial_mpjpe_mm'].mean():.1f}",
                f"{g['steps'].mean():.0f}",
                f"{g['seconds'].mean():.0f}",
            ]
        )
    headers = [
        "backbone",
        "variant",
        "configuration",
        "seeds",
        "MPJPE mm (mean ± sd)",
        "P-MPJPE",
        "trivial",
        "steps",
        "s",
    ]
    lines.append(tabulate(table, headers=headers, tablefmt="github"))
    for backbone, g in df.groupby("backbone", sort=False):
        by = g.groupby("variant")["mpjpe_mm"].mean()
        trivial = g["trivial_mpjpe_mm"].mean()
        if "baseline" in by:
            verdict = "PASS" if by["baseline"] <= 0.5 * trivial else "FAIL"
            lines.append(f"{backbone}: baseline {by['baseline']:.1f} mm vs trivial/2 {trivial / 2:.1f} -> {verdict}")
        if "baseline" in by and "hot" in by:
            rel = by["hot"] / by["baseline"] - 1
            verdict = "PASS" if rel <= 0.10 else "FAIL"
            lines.append(f"{backbone}: HoT {by['hot']:.1f} mm, {100 * rel:+.1f}% vs baseline -> {verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.benchmarks.study", description=__doc__.splitlines()[0])
    p.add_argument("--backbones", default=None, help="comma-separated (default: every registered backbone)")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--minutes", type=float, default=None, help="budget per training run")
    p.add_argument("--steps", type=int, default=None, help="budget per training run")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--tokens", type=float, default=0.33, help="kept tokens (fraction of T or a count)")
    p.add_argument("--depth", type=int, default=1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--loss", choices=["paper", "mpjpe"], default="paper")
    p.add_argument("--eval-stride", type=int, default=1)
    p.add_argument("--workers", type=int, default=1, help="parallel chains (each single-threaded)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", choices=["synthetic", "h36m"], default="synthetic")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default=str(ROOT / "results" / "study"))
    a = p.parse_args(argv)
    if not a.minutes and not a.steps:
        p.error("give --minutes or --steps")
    tokens: float = int(a.tokens) if a.tokens >= 1 else a.tokens
    store = ResultStore(Path(a.out)).open()  # one accuracy record per chain row, locked while it runs
    done = {str(r["cell_id"]) for r in (store.record("accuracy", k) for k in list(store._done["accuracy"])) if r}
    jobs = []
    from backbones import list_backbones

    for backbone in a.backbones.split(",") if a.backbones else list_backbones():
        for seed in (int(s) for s in a.seeds.split(",")):
            if f"{backbone}-{a.preset}-s{seed}-training_free" in done:
                continue
            jobs.append(
                {
                    "backbone": backbone,
                    "preset": a.preset,
                    "seed": seed,
                    "tokens": tokens,
                    "depth": a.depth,
                    "minutes": a.minutes,
                    "steps": a.steps,
                    "lr": a.lr,
                    "batch_size": a.batch_size,
                    "loss": a.loss,
                    "eval_stride": a.eval_stride,
                    "threads": a.threads,
                    "out": a.out,
                    "data": {
                        "source": a.data,
                        "data_root": a.data_root,
                        "keypoints": "cpn_ft_h36m_dbb" if a.data == "h36m" else "gt",
                        "cache_dir": str(ROOT / "results" / "cache"),
                    },
                }
            )
    with ProcessPoolExecutor(max(1, a.workers)) as pool:
        futures = {pool.submit(run_chain, j): j for j in jobs}
        for f in as_completed(futures):
            for row in f.result():
                store.append("accuracy", row)
                print(json.dumps({k: row[k] for k in ("label", "seed", "mpjpe_mm", "steps", "seconds")}), flush=True)
    store.close()
    df = store.read()
    if not df.empty:
        print(summarise(df))
    return 0


if __name__ == "__main__":
    sys.exit(main())
