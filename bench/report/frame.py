"""Shared views of result rows for tables, plots and the Pareto analysis (no I/O, no plotting).

Vocabulary (HoT paper): *n* is the number of tokens kept (per pruning stage), *k* the block index at
which pruning happens (``depths``), *T* the number of input frames. A *strategy* is a
``pruner+recoverer`` pair; the baseline is ``pruner == "none"``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

BASELINE = "none"
#: the speed protocol's numeric precision (fp32, bf16, fp16), recorded in every speed row (issue 13)
PRECISION = "precision"
# columns that name a configuration; everything else is a measurement (or bookkeeping). The precision is
# one: the same model timed in fp32 and bf16 is two deployed configurations, never averaged together
CONFIG_KEYS = ("backbone", "preset", "pruner", "recoverer", "label", "train_mode", "data", PRECISION)
MEASURES = (
    "params",
    "gflops",
    "gflops_paper",
    "gflops_per_frame",
    "latency_ms",
    "latency_iqr_ms",
    "fps",
    "latency_fps",
    "throughput_ms",
    "speedup",
    "throughput_speedup",
    "mpjpe_mm",
    "pmpjpe_mm",
    "mpjve_mm",
    "trivial_mpjpe_mm",
    "pck",
    "auc",
)


#: a row's MPJPE is a result only if it and its baseline's are at most this fraction of the trivial
#: (mean-pose) predictor's: above it the network has not left the mean pose (issue 9)
MEAN_POSE_LIMIT = 0.5
#: measures that a row at the mean pose does not present
ACCURACY_MEASURES = ("mpjpe_mm", "pmpjpe_mm", "mpjve_mm", "pck", "auc")


def accuracy_notes(df: pd.DataFrame, limit: float = MEAN_POSE_LIMIT) -> pd.Series:
    """Why each row's MPJPE is not a result (``""`` where it is), by the one rule every report applies.

    A row is not a result when its own MPJPE, or that of its baseline (the ``pruner == "none"`` row with
    the same ``baseline_key``), is above ``limit`` x its trivial mean-pose MPJPE (``trivial_mpjpe_mm``):
    such a network has not left the mean pose, so its number says nothing about pruning.
    """
    if "mpjpe_mm" not in df or "trivial_mpjpe_mm" not in df:
        return pd.Series("", index=df.index, dtype=object)
    own = pd.to_numeric(df["mpjpe_mm"], errors="coerce")
    trivial = pd.to_numeric(df["trivial_mpjpe_mm"], errors="coerce")
    base = pd.Series(np.nan, index=df.index)
    if "baseline_key" in df:
        key = df["baseline_key"].fillna("").astype(str)
        is_base = (df["pruner"] == BASELINE) & (key != "") & own.notna() & ~failed(df)
        by_key = own[is_base].groupby(key[is_base]).mean()
        base = key.map(by_key).where(df["pruner"] != BASELINE)
    texts = [
        mean_pose_note(o, t, limit) or mean_pose_note(b, t, limit, "baseline")
        for o, b, t in zip(own.to_numpy(float), base.to_numpy(float), trivial.to_numpy(float), strict=True)
    ]
    return pd.Series(texts, index=df.index, dtype=object)


def mean_pose_note(mpjpe: float, trivial: float, limit: float = MEAN_POSE_LIMIT, subject: str = "") -> str:
    """The rule for one figure: ``""`` when ``mpjpe`` (of ``subject``, e.g. "baseline") is a result, else why
    not (above ``limit`` x the trivial mean-pose MPJPE). No valid trivial figure or MPJPE: no verdict."""
    if not (np.isfinite(trivial) and trivial > 0 and np.isfinite(mpjpe) and mpjpe > limit * trivial):
        return ""
    who = f"{subject} " if subject else ""
    return f"{who}not off the mean pose: {mpjpe:.1f} mm vs trivial {trivial:.1f} mm (> {limit:g} x trivial)"


def with_accuracy_notes(df: pd.DataFrame, limit: float = MEAN_POSE_LIMIT) -> pd.DataFrame:
    """``df`` plus ``accuracy_note``; where a note is given, the accuracy measures are NaN (not results)."""
    out = df.copy()
    out["accuracy_note"] = accuracy_notes(df, limit)
    bad = out["accuracy_note"] != ""
    for col in ACCURACY_MEASURES:
        if col in out:
            out[col] = pd.to_numeric(out[col], errors="coerce").mask(bad)
    return out


def fps_protocol(df: pd.DataFrame) -> str:
    """How the rows' ``fps`` was timed, e.g. ``"batch 64, 1 thread, fp32"``: the throughput batch (the
    latency batch in folders written before throughput was timed apart), the threads and the precision.
    A part that varies across the rows is named as varying."""
    ok = ok_rows(df)
    if "fps" in ok:
        ok = ok[pd.to_numeric(ok["fps"], errors="coerce").notna()]
    parts = []
    batch_col = (
        "throughput_batch" if "throughput_batch" in ok and ok["throughput_batch"].notna().any() else "speed_batch"
    )
    for col, one, many in ((batch_col, "batch {:g}", "batch per row"), ("threads", "{:g} thread{}", "threads vary")):
        vals = pd.to_numeric(ok[col], errors="coerce").dropna().unique() if col in ok else []
        if len(vals) == 1:
            v = float(vals[0])
            parts.append(one.format(v, "" if v == 1 else "s") if "thread" in one else one.format(v))
        elif len(vals) > 1:
            parts.append(many)
    found = precisions(ok)
    if found:
        parts.append(found[0] if len(found) == 1 else "precision per marker")
    return ", ".join(parts)


def select_rows(
    df: pd.DataFrame, backbone: str | None = None, strategy: str | None = None, train_mode: str | None = None
) -> pd.DataFrame:
    """The rows of one backbone, one strategy (``pruner+recoverer``, its baselines kept) and one training
    mode; ``None`` keeps every value (the notebook's filter)."""
    keep = pd.Series(True, index=df.index)
    if backbone is not None:
        keep &= df["backbone"] == backbone
    if strategy is not None:
        keep &= (df["pruner"] + "+" + df["recoverer"] == strategy) | (df["pruner"] == "none")
    if train_mode is not None and "train_mode" in df:
        keep &= df["train_mode"] == train_mode
    return df[keep]


def has(df: pd.DataFrame, *cols: str) -> bool:
    """``df`` has every column in ``cols`` with at least one usable (non-error, finite) row."""
    return all(c in df.columns for c in cols) and not ok_rows(df).dropna(subset=list(cols)).empty


def failed(df: pd.DataFrame) -> pd.Series:
    """Rows whose cell recorded an error."""
    if "error" not in df:
        return pd.Series(False, index=df.index)
    return df["error"].fillna("").astype(str).str.len() > 0


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that did not record an error."""
    return df[~failed(df)]


def _text(v: Any) -> str:
    if isinstance(v, list | tuple):
        return ",".join(str(x) for x in v)
    if isinstance(v, str) and v.startswith("["):
        return ",".join(str(x) for x in json.loads(v))
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def schedule_key(text: str) -> tuple[float, ...]:
    """Numeric sort key of an ``n`` or ``k`` text such as ``"121,81,41"``."""
    return tuple(float(x) for x in text.split(",")) if text else ()


def with_views(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``strategy``, ``n`` and ``k`` (text; ``""`` for the baseline), ``group`` and ``frames``."""
    out = df.copy()
    out["strategy"] = out["pruner"].astype(str) + "+" + out["recoverer"].astype(str)
    out["n"] = out["tokens"].map(_text) if "tokens" in out else ""
    out["k"] = out["depths"].map(_text) if "depths" in out else ""
    out["group"] = out["backbone"].astype(str) + "/" + out["preset"].astype(str)
    out["frames"] = [_frames(b, p) for b, p in zip(out["backbone"], out["preset"])]
    return out


def _frames(backbone: str, preset: str) -> float:
    """Input frames T of a backbone preset (NaN for one no longer registered)."""
    from backbones import RegistryError, get_backbone_spec

    try:
        return float(get_backbone_spec(backbone).preset(preset).frames)
    except (RegistryError, KeyError, ValueError):
        return float("nan")


def aggregate_seeds(df: pd.DataFrame, measures: Sequence[str] = MEASURES) -> pd.DataFrame:
    """One row per configuration (every key but the seed): mean of each measure, ``<measure>_sd``, ``seeds``.

    Rows that recorded an error are left out. ``<measure>_sd`` is the sample standard deviation over
    seeds (NaN with one seed).
    """
    ok = with_views(ok_rows(df))
    noted = "accuracy_note" in ok
    keys = [c for c in CONFIG_KEYS if c in ok.columns] + ["strategy", "n", "k", "group", "frames"]
    keys = list(dict.fromkeys(keys))
    cols = [c for c in measures if c in ok.columns]
    if ok.empty:
        return pd.DataFrame(columns=[*keys, *cols, "seeds"])
    grouped = ok.groupby(keys, sort=False, dropna=False)
    mean = grouped[cols].mean()
    sd = grouped[cols].std(ddof=1).add_suffix("_sd")
    count = grouped.size().rename("seeds")
    firsts = grouped[[c for c in ("tokens", "depths") if c in ok.columns]].first()
    parts = [mean, sd, count, firsts]
    if noted:  # a configuration with one seed at the mean pose presents no accuracy mean at all
        parts.append(grouped["accuracy_note"].agg(lambda s: "; ".join(dict.fromkeys(x for x in s if x))))
    out = pd.concat(parts, axis=1).reset_index()
    if noted:
        bad = out["accuracy_note"] != ""
        for col in ACCURACY_MEASURES:
            for c in (col, f"{col}_sd"):
                if c in out:
                    out[c] = out[c].mask(bad)
    return out


def baseline_of(agg: pd.DataFrame) -> pd.DataFrame:
    """The baseline row of each ``group`` (backbone/preset), indexed by group."""
    base = agg[agg["pruner"] == BASELINE]
    return base.drop_duplicates("group").set_index("group")


def precisions(df: pd.DataFrame) -> list[str]:
    """The distinct speed precisions of ``df``'s usable rows, sorted (``[]`` without the column)."""
    if PRECISION not in df:
        return []
    return sorted(str(v) for v in ok_rows(df)[PRECISION].dropna().unique())


def varies_precision(df: pd.DataFrame) -> bool:
    """``df`` holds rows timed at more than one precision (then every view separates them)."""
    return len(precisions(df)) > 1


def baseline_keys(df: pd.DataFrame) -> list[str]:
    """The columns that pair a row with its baseline: ``group``, and ``precision`` where it varies."""
    return ["group", PRECISION] if varies_precision(df) else ["group"]


def baseline_values(agg: pd.DataFrame, column: str) -> pd.Series:
    """Each row's baseline value of ``column`` (same backbone/preset and, where it varies, the same
    precision); NaN where that baseline is missing. ``agg`` is :func:`aggregate_seeds`' frame."""
    keys = baseline_keys(agg)
    base = agg[agg["pruner"] == BASELINE].drop_duplicates(keys)
    if column not in agg or base.empty:
        return pd.Series(np.nan, index=agg.index)
    lookup = {tuple(k): v for k, v in zip(base[keys].astype(str).to_numpy(), base[column], strict=True)}
    values = [lookup.get(tuple(k), np.nan) for k in agg[keys].astype(str).to_numpy()]
    return pd.Series(values, index=agg.index, dtype=float)
