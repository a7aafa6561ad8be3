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
# columns that name a configuration; everything else is a measurement (or bookkeeping)
CONFIG_KEYS = ("backbone", "preset", "pruner", "recoverer", "label", "mode", "data")
MEASURES = (
    "params",
    "gflops",
    "gflops_paper",
    "gflops_per_frame",
    "latency_ms",
    "latency_iqr_ms",
    "fps",
    "mpjpe_mm",
    "pmpjpe_mm",
    "mpjve_mm",
    "trivial_mpjpe_mm",
)


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
    out = pd.concat([mean, sd, count, firsts], axis=1).reset_index()
    return out


def baseline_of(agg: pd.DataFrame) -> pd.DataFrame:
    """The baseline row of each ``group`` (backbone/preset), indexed by group."""
    base = agg[agg["pruner"] == BASELINE]
    return base.drop_duplicates("group").set_index("group")
