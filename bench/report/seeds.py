"""Seed summaries and protocol verdicts of an accuracy grid's rows (mean ± sd over seeds): report code.

Rows of one configuration (label, training mode) differ only by seed; a fine-tuned or training-free
row is compared with the row that evaluates its own baseline (same ``baseline_key``).
"""

from __future__ import annotations

import pandas as pd

from bench.report.frame import MEAN_POSE_LIMIT, accuracy_notes, mean_pose_note

#: the protocol's targets (their one owner): baseline <= the mean-pose limit x trivial; fine-tuned <= 1.10 x its
#: baseline; training-free <= 1.25 x its baseline (bench.benchmarks.verdict checks a whole run against them)
TARGETS = {"baseline": MEAN_POSE_LIMIT, "finetune": 1.10, "none": 1.25}


def with_baseline(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with an MPJPE, plus ``baseline_mpjpe_mm`` (their baseline's row) and ``ratio`` / ``target``."""
    ok = df[df["mpjpe_mm"].notna()].copy()
    ok["baseline_key"] = ok["baseline_key"].fillna("").astype(str)
    base = ok[(ok["pruner"] == "none") & (ok["baseline_key"] != "")].set_index("baseline_key")["mpjpe_mm"]
    is_base = ok["pruner"] == "none"
    ok["baseline_mpjpe_mm"] = ok["baseline_key"].map(base)
    ok["ratio"] = (ok["mpjpe_mm"] / ok["baseline_mpjpe_mm"]).where(~is_base, ok["mpjpe_mm"] / ok["trivial_mpjpe_mm"])
    ok["target"] = ok["train_mode"].map(TARGETS).where(~is_base, TARGETS["baseline"])
    ok["accuracy_note"] = accuracy_notes(ok)
    bad = ok["accuracy_note"] != ""
    ok["ratio"] = ok["ratio"].mask(bad)  # a ratio to (or of) a network at the mean pose means nothing
    ok["meets"] = (ok["ratio"] <= ok["target"]) & ~bad
    return ok


def summarise_seeds(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (label, train_mode): seeds, MPJPE mean ± sd, baseline and trivial means, target met.

    Sorted per backbone/preset: the baseline row (``train_mode`` "baseline"), then the fine-tuned rows,
    then the training-free ones (``train_mode`` "none")."""
    ok = with_baseline(df)
    ok["train_mode"] = ok["train_mode"].where(ok["pruner"] != "none", "baseline")  # the row of the shared baseline
    g = ok.groupby(["label", "train_mode"], sort=False)
    out = g.agg(
        seeds=("seed", "nunique"),
        mpjpe_mean=("mpjpe_mm", "mean"),
        mpjpe_sd=("mpjpe_mm", "std"),
        baseline_mean=("baseline_mpjpe_mm", "mean"),
        trivial_mean=("trivial_mpjpe_mm", "mean"),
        ratio_mean=("ratio", "mean"),
        target=("target", "first"),
        meets_all=("meets", "all"),
        accuracy_note=("accuracy_note", lambda s: "; ".join(dict.fromkeys(x for x in s if x))),
    ).reset_index()
    out["mpjpe_sd"] = out["mpjpe_sd"].fillna(0.0)
    # per backbone/preset (the label's first word): its baseline, then fine-tuned, then training-free rows
    order = {"baseline": 0, "finetune": 1, "none": 2}
    out = (
        out.assign(_group=out["label"].str.split().str[0], _mode=out["train_mode"].map(order).fillna(3))
        .sort_values(["_group", "_mode", "label"], kind="stable")
        .drop(columns=["_group", "_mode"])
        .reset_index(drop=True)
    )
    bad = out["accuracy_note"] != ""
    out["ratio_mean"] = out["ratio_mean"].mask(bad)
    out["MPJPE mm"] = [
        "—" if b else f"{m:.1f} ± {s:.1f}" for m, s, b in zip(out["mpjpe_mean"], out["mpjpe_sd"], bad, strict=True)
    ]
    return out


def seed_table(df: pd.DataFrame) -> str:
    """The seed summary as a GitHub table (the ratio is to the baseline, or to trivial for a baseline).

    A configuration at the mean pose, or built on a baseline at the mean pose, shows "—" and its note."""
    from tabulate import tabulate

    s = summarise_seeds(df)
    cols = ["label", "train_mode", "seeds", "MPJPE mm", "baseline_mean", "trivial_mean", "ratio_mean", "target"]
    if (s["accuracy_note"] != "").any():
        cols.append("accuracy_note")
    off = [not mean_pose_note(b, t) for b, t in zip(s["baseline_mean"], s["trivial_mean"], strict=True)]
    s["baseline_mean"] = s["baseline_mean"].where(pd.Series(off, index=s.index) & s["baseline_mean"].notna())
    shown = s[[*cols, "meets_all"]].astype(object)
    shown = shown.where(shown.notna(), None)  # tabulate prints None (not NaN) as the missing value
    return tabulate(shown, headers="keys", tablefmt="github", showindex=False, floatfmt=".3g", missingval="—")


__all__ = ["TARGETS", "seed_table", "summarise_seeds", "with_baseline"]
