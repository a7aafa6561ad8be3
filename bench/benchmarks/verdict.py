"""The default run's targets, checked on a results folder (issue 17): a benchmark, not a test.

    python run_bench.py verdict results/quick [--repeat results/quick-again]

Per backbone/preset of the folder:

- **baselines leave the mean pose**: every baseline's MPJPE <= 0.5 x the trivial (mean-pose) MPJPE;
- **every fine-tuned cell presents its MPJPE** (no accuracy note, no error); a training-free cell may
  instead say that it fell back to the mean pose, but only at the backbone's smallest token count;
- **HoT's point** (T/3 tokens, one stage at depth 1): fine-tuned <= 1.10 x its baseline, training-free
  <= 1.25 x;
- **throughput**: every pruned cell with 40 % or more fewer FLOPs than its baseline runs at least 1.2 x its
  baseline's throughput (the paired throughput speedup of the grid's speed groups);
- with ``--repeat``, a second run of the same grid: the cells' throughput speedups rank the same in both
  runs (Spearman rank correlation >= 0.9, over all pruned cells, and per backbone for information).

Each check is one row: met / not met / not measured, the figures behind it and the worst offender.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.report.frame import BASELINE, MEAN_POSE_LIMIT, accuracy_notes, failed
from bench.report.seeds import TARGETS

#: the targets (issue 17); the per-row accuracy limits are the seed table's (bench.report.seeds.TARGETS)
FINETUNE_LIMIT = TARGETS["finetune"]  # x its baseline, at HoT's point
TRAINING_FREE_LIMIT = TARGETS["none"]
FLOPS_CUT = 0.40  # cells with at least this fraction fewer FLOPs than the baseline ...
MIN_THROUGHPUT_SPEEDUP = 1.2  # ... run at least this much faster (throughput, paired)
MIN_SPEARMAN = 0.9


@dataclass
class Check:
    """One target: ``met`` is True / False, or None when the rows cannot tell (not measured)."""

    target: str
    met: bool | None
    detail: str


def _frames(row: pd.Series) -> int:
    from backbones import get_backbone_spec

    return get_backbone_spec(str(row["backbone"])).preset(str(row["preset"])).frames


def kept_tokens(row: pd.Series) -> list[int]:
    """The token counts a row's schedule keeps (fractions of T resolved as the schedule parser does); the
    row's ``tokens`` is a list, as :func:`bench.results.load` types it."""
    from strategies.schedule import resolve_tokens

    t = _frames(row)
    return [resolve_tokens(x, t) for x in row["tokens"]]


def at_hot_point(row: pd.Series) -> bool:
    """One pruning stage at depth 1 keeping round(T / 3) tokens: HoT's operating point."""
    return list(row["depths"]) == [1] and kept_tokens(row) == [round(_frames(row) / 3)]


def _fmt(ratio: float) -> str:
    return f"{ratio:.2f}" if np.isfinite(ratio) else "—"


def check(df: pd.DataFrame, repeat: pd.DataFrame | None = None) -> list[Check]:
    """The targets on ``df`` (one grid's merged rows; ``repeat``: the same grid run again)."""
    rows = df[~failed(df)].copy()
    if "mpjpe_mm" not in rows or rows["mpjpe_mm"].isna().all():
        return [Check("accuracy", None, "no MPJPE in these rows")]
    rows["note"] = accuracy_notes(rows)
    rows["group"] = rows["backbone"].astype(str) + "/" + rows["preset"].astype(str)
    mode = rows["train_mode"] if "train_mode" in rows else pd.Series("", index=rows.index)
    base = rows[rows["pruner"] == BASELINE]
    out: list[Check] = []

    ratio = base["mpjpe_mm"] / base["trivial_mpjpe_mm"]
    worst = ratio.idxmax() if len(ratio) else None
    out.append(
        Check(
            f"every baseline <= {MEAN_POSE_LIMIT:g} x trivial",
            bool((ratio <= MEAN_POSE_LIMIT).all()) if len(ratio) else None,
            "; ".join(
                f"{g} {m:.1f} mm / {t:.1f} = {r:.2f}"
                for g, m, t, r in zip(base["group"], base["mpjpe_mm"], base["trivial_mpjpe_mm"], ratio, strict=True)
            )
            + (f" (worst: {base.loc[worst, 'group']})" if worst is not None else ""),
        )
    )

    ft = rows[(rows["pruner"] != BASELINE) & (mode == "finetune")]
    missing = ft[(ft["note"] != "") | ft["mpjpe_mm"].isna()]
    out.append(
        Check(
            "every fine-tuned cell presents its MPJPE",
            bool(missing.empty) if len(ft) else None,
            f"{len(ft) - len(missing)} of {len(ft)} present"
            + (f"; not: {', '.join(missing['label'].astype(str))}" if len(missing) else ""),
        )
    )

    free = rows[(rows["pruner"] != BASELINE) & (mode == "none")]
    if len(free):
        smallest = {g: min(min(kept_tokens(r)) for _, r in grp.iterrows()) for g, grp in free.groupby("group")}
        noted = free[(free["note"] != "") | free["mpjpe_mm"].isna()]
        wrong = [r["label"] for _, r in noted.iterrows() if min(kept_tokens(r)) != smallest[r["group"]]]
        out.append(
            Check(
                "training-free cells present their MPJPE (mean pose allowed at the smallest token count only)",
                not wrong,
                f"{len(free) - len(noted)} of {len(free)} present, {len(noted)} at the mean pose"
                + (f"; above the smallest count: {', '.join(map(str, wrong))}" if wrong else ""),
            )
        )

    bmp = base.set_index("baseline_key")["mpjpe_mm"] if "baseline_key" in base else pd.Series(dtype=float)
    hot = rows[(rows["pruner"] != BASELINE) & rows.apply(at_hot_point, axis=1)].copy()
    hot["ratio"] = hot["mpjpe_mm"] / hot["baseline_key"].map(bmp)
    hot.loc[hot["note"] != "", "ratio"] = np.nan
    for m, limit, name in (("finetune", FINETUNE_LIMIT, "fine-tuned"), ("none", TRAINING_FREE_LIMIT, "training-free")):
        sel = hot[hot["train_mode"] == m]
        if sel.empty:
            continue
        bad = sel[~(sel["ratio"] <= limit)]
        shown = "; ".join(
            f"{lbl} {'—' if not np.isfinite(r) else f'{r:.2f}'}"
            for lbl, r in zip(sel["label"], sel["ratio"], strict=True)
        )
        out.append(
            Check(
                f"at HoT's point (T/3, depth 1) every {name} cell <= {limit:g} x its baseline",
                bool(bad.empty),
                f"{len(sel) - len(bad)} of {len(sel)} within; " + shown,
            )
        )
    out += _throughput(rows, repeat)
    return out


def _speedups(rows: pd.DataFrame) -> pd.DataFrame:
    """Pruned rows with their FLOPs ratio to the baseline and their paired throughput speedup."""
    if "throughput_speedup" not in rows or "gflops" not in rows:
        return rows.iloc[:0]
    base = rows[rows["pruner"] == BASELINE].drop_duplicates("group").set_index("group")["gflops"]
    pruned = rows[rows["pruner"] != BASELINE].copy()
    pruned["flops_ratio"] = pruned["group"].map(base) / pruned["gflops"]
    pruned["tput"] = pd.to_numeric(pruned["throughput_speedup"], errors="coerce")
    # one row per configuration (a training-free and a fine-tuned cell of one model share their timing)
    return pruned.dropna(subset=["tput"]).drop_duplicates("label")


def _throughput(rows: pd.DataFrame, repeat: pd.DataFrame | None) -> list[Check]:
    sp = _speedups(rows)
    if sp.empty:
        return [Check("throughput", None, "no paired throughput speedups in these rows")]
    cut = sp[sp["flops_ratio"] >= 1 / (1 - FLOPS_CUT)]
    bad = cut[cut["tput"] < MIN_THROUGHPUT_SPEEDUP]
    per = "; ".join(f"{g}: {len(c)} cells, min {c['tput'].min():.2f}x" for g, c in cut.groupby("group", sort=True))
    out = [
        Check(
            f"pruned cells with >= {FLOPS_CUT:.0%} fewer FLOPs run >= {MIN_THROUGHPUT_SPEEDUP:g}x (throughput)",
            bool(bad.empty) if len(cut) else None,
            per
            + ("; below: " + ", ".join(f"{x} {v:.2f}x" for x, v in zip(bad["label"], bad["tput"])) if len(bad) else ""),
        )
    ]
    if repeat is not None:
        other = repeat[~failed(repeat)].copy()
        other["group"] = other["backbone"].astype(str) + "/" + other["preset"].astype(str)
        both = sp.set_index("label")[["tput", "group"]].join(
            _speedups(other).set_index("label")[["tput"]].rename(columns={"tput": "tput_repeat"}), how="inner"
        )
        rho = spearman(both["tput"], both["tput_repeat"]) if len(both) > 2 else np.nan
        groups = "; ".join(
            f"{g} {spearman(b['tput'], b['tput_repeat']):.2f}"
            for g, b in both.groupby("group", sort=True)
            if len(b) > 2
        )
        out.append(
            Check(
                f"two runs rank the throughput speedups the same (Spearman >= {MIN_SPEARMAN:g})",
                bool(rho >= MIN_SPEARMAN) if np.isfinite(rho) else None,
                f"Spearman {rho:.3f} over {len(both)} cells; per backbone: {groups}",
            )
        )
    return out


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rank correlation: Pearson's on the (average) ranks; no SciPy needed."""
    return float(a.rank().corr(b.rank()))


def speedup_table(df: pd.DataFrame) -> pd.DataFrame:
    """Each pruned configuration's FLOPs ratio and throughput / latency speedups (sorted by FLOPs ratio)."""
    rows = df[~failed(df)].copy()
    rows["group"] = rows["backbone"].astype(str) + "/" + rows["preset"].astype(str)
    sp = _speedups(rows)
    if sp.empty:
        return pd.DataFrame(columns=["group", "label", "flops_ratio", "throughput_speedup", "latency_speedup"])
    latency = pd.to_numeric(sp["speedup"], errors="coerce") if "speedup" in sp else np.nan
    out = sp.assign(throughput_speedup=sp["tput"], latency_speedup=latency)
    cols = ["group", "label", "flops_ratio", "throughput_speedup", "latency_speedup"]
    return out[cols].sort_values(["group", "flops_ratio"]).reset_index(drop=True)


def format_checks(checks: list[Check]) -> str:
    from tabulate import tabulate

    status = {True: "met", False: "NOT met", None: "not measured"}
    return tabulate(
        [(c.target, status[c.met], c.detail) for c in checks],
        headers=["target", "status", "figures"],
        tablefmt="github",
        maxcolwidths=[48, 12, 110],
    )


def to_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]


__all__ = ["Check", "at_hot_point", "check", "format_checks", "kept_tokens", "spearman", "speedup_table", "to_json"]
