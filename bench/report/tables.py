"""Paper-style tables from result rows: HoT's comparison layout and a tokens x depth ablation.

A :class:`Table` holds rounded numbers (what the CSV stores) and which cells are best; the markdown,
LaTeX (booktabs) and terminal renderings are drawn from those same numbers, so every rendering shows
the CSV's values. Where a configuration has several seeds, a value is the mean and ``<column> sd``
holds the sample standard deviation ("mean ± sd" in markdown and LaTeX).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench.report.frame import (
    BASELINE,
    PRECISION,
    aggregate_seeds,
    baseline_values,
    fps_protocol,
    has,
    schedule_key,
    varies_precision,
    with_accuracy_notes,
)

SIG = 4  # significant figures of every measured number
SUMMARY_COLUMNS = (
    "label",
    "params",
    "gflops",
    "gflops_paper",
    "latency_ms",
    "fps",
    "mpjpe_mm",
    "pmpjpe_mm",
    "trivial_mpjpe_mm",
    "error",
)
# HoT paper layout: measured column -> (header, better direction)
HOT_COLUMNS = {
    "params": ("Params (M)", "min"),
    "gflops": ("FLOPs (G)", "min"),
    "fps": ("FPS", "max"),
    "mpjpe_mm": ("MPJPE (mm)", "min"),
    "pmpjpe_mm": ("P-MPJPE (mm)", "min"),
    "pck": ("PCK (pooled)", "max"),  # MPI-INF-3DHP only: @150 mm on 14 joints, pooled over the valid frames
    "auc": ("AUC (pooled)", "max"),
}
CHANGE_COLUMNS = {"gflops": "ΔFLOPs (%)", "fps": "ΔFPS (%)", "mpjpe_mm": "ΔMPJPE (%)"}
METRIC_LABELS = {"mpjpe_mm": "MPJPE (mm)", "gflops": "FLOPs (G)", "fps": "FPS (frames/s)", "pmpjpe_mm": "P-MPJPE (mm)"}


@dataclass
class Table:
    """Rounded numbers plus presentation hints; render with :func:`render`."""

    frame: pd.DataFrame
    title: str = ""
    group: str | None = None  # column whose repeats are blanked and separated by a rule
    sd: dict[str, str] = field(default_factory=dict)  # value column -> its sd column
    best: set[tuple[int, str]] = field(default_factory=set)  # (row position, column) marked best
    fixed: dict[str, int] = field(default_factory=dict)  # column -> decimals (else significant figures)


def decimals(x: float, sig: int = SIG) -> int:
    """Decimals that show ``x`` to ``sig`` significant figures (never scientific notation)."""
    if not np.isfinite(x) or x == 0:
        return 0
    return max(0, sig - 1 - math.floor(math.log10(abs(x))))


def round_sig(x: float, sig: int = SIG) -> float:
    return round(float(x), decimals(x, sig)) if np.isfinite(x) else float("nan")


def _num(x: float, d: int | None = None) -> str:
    if not np.isfinite(x):
        return "–"
    return f"{x:.{decimals(x) if d is None else d}f}"


def _cell(t: Table, i: int, col: str, fmt: str) -> str:
    v = t.frame[col].iloc[i]
    if not isinstance(v, int | float | np.number):
        text = str(v)
        return _escape(text) if fmt == "latex" else text
    if pd.api.types.is_integer_dtype(t.frame[col]):
        return str(int(v))
    text = _num(float(v), t.fixed.get(col))
    sdcol = t.sd.get(col)
    if sdcol is not None and np.isfinite(t.frame[sdcol].iloc[i]) and np.isfinite(v):
        pm = " $\\pm$ " if fmt == "latex" else " ± "
        text += pm + _num(float(t.frame[sdcol].iloc[i]), decimals(float(v)))
    if (i, col) in t.best:
        text = {"md": f"**{text}**", "latex": f"\\textbf{{{text}}}", "text": f"{text}*"}.get(fmt, text)
    return text


def _escape(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("_", "\\_"), ("%", "\\%"), ("&", "\\&"), ("#", "\\#")):
        text = text.replace(a, b)
    return text.replace("Δ", "$\\Delta$").replace("±", "$\\pm$")


def render(t: Table, fmt: str) -> str:
    """``fmt``: ``md`` (GitHub markdown), ``latex`` (booktabs tabular), ``csv`` or ``text`` (terminal)."""
    if fmt == "csv":
        return t.frame.to_csv(index=False)
    shown = [c for c in t.frame.columns if c not in t.sd.values()]
    rows = []
    for i in range(len(t.frame)):
        row = [_cell(t, i, c, fmt) for c in shown]
        if t.group is not None and i > 0 and t.frame[t.group].iloc[i] == t.frame[t.group].iloc[i - 1]:
            row[shown.index(t.group)] = ""
        rows.append(row)
    if fmt == "latex":
        return _latex(t, shown, rows)
    tablefmt = "github" if fmt == "md" else "simple"
    align = ["left" if not pd.api.types.is_numeric_dtype(t.frame[c]) else "right" for c in shown]
    return tabulate(rows, headers=shown, tablefmt=tablefmt, colalign=align, disable_numparse=True)


def _latex(t: Table, shown: list[str], rows: list[list[str]]) -> str:
    spec = "".join("r" if pd.api.types.is_numeric_dtype(t.frame[c]) else "l" for c in shown)
    header = " & ".join(_escape(c) for c in shown) + " \\\\"
    lines = ["\\begin{tabular}{" + spec + "}", "\\toprule", header, "\\midrule"]
    for i, row in enumerate(rows):
        if t.group is not None and i > 0 and row[shown.index(t.group)]:
            lines.append("\\midrule")
        lines.append(" & ".join(row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines)


def hot_table(df: pd.DataFrame) -> Table:
    """HoT's comparison layout: Backbone, Method, Frames (T), n, k, Params, FLOPs, FPS, MPJPE, P-MPJPE,
    and the change against the same backbone's baseline in %; best per column within a backbone marked.

    A configuration at the mean pose, or fine-tuned / evaluated from a baseline at the mean pose
    (:func:`~bench.report.frame.accuracy_notes`), shows "–" for its accuracy and says why under "Note".
    Rows timed at several speed precisions get a "Precision" column, each block against the baseline at
    its own precision; at one precision the title names it.
    """
    raw = df
    df = with_accuracy_notes(df)
    agg = aggregate_seeds(df)
    agg = agg.assign(_pruned=agg["pruner"] != BASELINE, _n=agg["n"].map(schedule_key), _k=agg["k"].map(schedule_key))
    several = varies_precision(agg)
    order = ["group", PRECISION] if several else ["group"]
    agg = agg.sort_values([*order, "_pruned", "strategy", "_n", "_k"], kind="stable").reset_index(drop=True)
    seeds = bool((agg["seeds"] > 1).any()) if "seeds" in agg else False
    out = pd.DataFrame(
        {
            "Backbone": agg["group"],
            "Method": [b if p == BASELINE else s for b, p, s in zip(agg["backbone"], agg["pruner"], agg["strategy"])],
            "Frames": [str(int(f)) if np.isfinite(f) else "–" for f in agg["frames"]],
            "n": agg["n"].where(agg["_pruned"], "–"),
            "k": agg["k"].where(agg["_pruned"], "–"),
        }
    )
    if several:
        out.insert(3, "Precision", agg[PRECISION].fillna("–").astype(str))
    t = Table(out, title=_hot_title(raw), group="Backbone")
    for col, (header, better) in HOT_COLUMNS.items():
        if not has(raw, col):
            continue
        scale = 1e-6 if col == "params" else 1.0
        vals = (agg[col] * scale).map(round_sig)
        out[header] = vals
        if seeds and f"{col}_sd" in agg and (agg[f"{col}_sd"] > 0).any():
            sdv = agg[f"{col}_sd"] * scale
            out[f"{header} sd"] = [round(s, decimals(v)) if np.isfinite(s) else np.nan for s, v in zip(sdv, vals)]
            t.sd[header] = f"{header} sd"
        for _, idx in out.groupby("Backbone", sort=False).groups.items():
            g = vals.loc[idx].dropna()
            if len(g) > 1 and g.nunique() > 1:
                target = g.min() if better == "min" else g.max()
                t.best |= {(int(i), header) for i in g.index[g == target]}
    for col, header in CHANGE_COLUMNS.items():
        if col in agg and has(df, col):
            ref = baseline_values(agg, col)
            change = 100.0 * (agg[col] / ref - 1.0)
            pruned = agg["_pruned"]
            out[header] = [round(float(c), 1) if p and np.isfinite(c) else np.nan for c, p in zip(change, pruned)]
            t.fixed[header] = 1
    notes = agg["accuracy_note"] if "accuracy_note" in agg else pd.Series("", index=agg.index)
    if (notes != "").any():
        out["Note"] = ["MPJPE not a result: " + n if n else "" for n in notes]
    t.frame = out
    return t


def _hot_title(df: pd.DataFrame) -> str:
    """The comparison's title names how FPS was timed (throughput batch, threads, precision)."""
    how = fps_protocol(df) if has(df, "fps") else ""
    parts = [f"FPS: output frames/s at {how}"] if how else []
    if has(df, "pck"):  # name the 3DHP convention the accuracy columns use
        conv = sorted(set(df["aggregation"].dropna().astype(str))) if "aggregation" in df else []
        parts.append(f"3DHP: valid frames, sequences combined {'/'.join(conv) or 'pooled'}")
    return f"HoT-style comparison ({'; '.join(parts)})" if parts else "HoT-style comparison"


def sequence_table(df: pd.DataFrame) -> Table | None:
    """MPI-INF-3DHP per test sequence: each configuration's frames, MPJPE, PCK and AUC per sequence, then the
    three ways of combining them (:data:`bench.measure.pck.AGGREGATIONS`), each row naming its convention.
    None when no row carries per-sequence scores (Human3.6M)."""
    import json

    from bench.measure.pck import AGGREGATIONS, SequenceScore, aggregate

    if "per_sequence" not in df:
        return None
    df = with_accuracy_notes(df)
    rows = []
    for _, r in df[df["per_sequence"].notna() & (df["accuracy_note"] == "")].iterrows():
        per = r["per_sequence"] if isinstance(r["per_sequence"], dict) else json.loads(str(r["per_sequence"]))
        scores = [SequenceScore(name, int(v["frames"]), v["mpjpe_mm"], v["pck"], v["auc"]) for name, v in per.items()]
        who = {"Configuration": r["label"], "Seed": r.get("seed", 0)}
        for sc in scores:
            rows.append(
                {
                    **who,
                    "Sequence": sc.name,
                    "Frames": sc.frames,
                    "MPJPE (mm)": sc.mpjpe_mm,
                    "PCK": sc.pck,
                    "AUC": sc.auc,
                }
            )
        for conv in AGGREGATIONS:
            if conv == "readme_weights" and not all(sc.name.startswith("TS") for sc in scores):
                continue
            a = aggregate(scores, conv)  # type: ignore[arg-type]
            frames = sum(sc.frames for sc in scores)
            rows.append({**who, "Sequence": f"all ({conv})", "Frames": frames, "MPJPE (mm)": a["mpjpe_mm"]})
            rows[-1] |= {"PCK": a["pck"], "AUC": a["auc"]}
    if not rows:
        return None
    out = pd.DataFrame(rows)
    for col in ("MPJPE (mm)", "PCK", "AUC"):
        out[col] = out[col].map(round_sig)
    title = "MPI-INF-3DHP per test sequence (valid frames; PCK@150 mm and AUC on 14 joints, MPJPE on 17)"
    return Table(out, title=title, group="Configuration")


def ablation_tables(df: pd.DataFrame, metrics: Sequence[str] = ("mpjpe_mm", "gflops")) -> list[Table]:
    """Tokens n (rows) x pruning depth k (columns) of each measured metric, one table per strategy and backbone.

    Only strategies measured at more than one (n, k) get a table. Lowest value (best) marked.
    """
    agg = aggregate_seeds(df)
    tables = []
    for (group, strategy), g in agg[agg["pruner"] != BASELINE].groupby(["group", "strategy"], sort=True):
        if len(g[["n", "k"]].drop_duplicates()) < 2:
            continue
        for metric in metrics:
            if metric not in g or g[metric].isna().all():
                continue
            pivot = g.pivot_table(index="n", columns="k", values=metric, aggfunc="mean")
            pivot = pivot.loc[sorted(pivot.index, key=schedule_key), sorted(pivot.columns, key=schedule_key)]
            frame = pivot.map(round_sig).reset_index()
            frame.columns = ["n \\ k", *[f"k={k}" for k in pivot.columns]]
            t = Table(frame, title=f"{group} {strategy}: {METRIC_LABELS.get(metric, metric)}")
            values = frame.iloc[:, 1:]
            target = np.nanmin(values.to_numpy(dtype=float))
            t.best = {(int(i), str(c)) for c in values.columns for i in values.index[values[c] == target]}
            tables.append(t)
    return tables


def ablation_long(df: pd.DataFrame, metrics: Sequence[str] = ("mpjpe_mm", "gflops")) -> pd.DataFrame:
    """The ablation's numbers in long form (one row per strategy, n, k): what ``ablation.csv`` stores."""
    agg = aggregate_seeds(df)
    agg = agg[agg["pruner"] != BASELINE]
    cols = ["group", "strategy", "n", "k", "seeds"]
    keep = [m for m in metrics if m in agg and agg[m].notna().any()]
    out = agg[cols + keep + [f"{m}_sd" for m in keep if f"{m}_sd" in agg]].copy()
    for m in keep:
        if f"{m}_sd" in out:
            sd = out[f"{m}_sd"]
            out[f"{m}_sd"] = [round(s, decimals(v)) if np.isfinite(s) else np.nan for s, v in zip(sd, out[m])]
        out[m] = out[m].map(round_sig)
    return out.reset_index(drop=True)


def render_many(tables: Sequence[Table], fmt: str) -> str:
    """Several tables in one document, each under its title."""
    if fmt == "md":
        return "\n\n".join(f"### {t.title}\n\n{render(t, 'md')}" for t in tables) + "\n"
    if fmt == "latex":
        return "\n\n".join(f"% {t.title}\n{render(t, 'latex')}" for t in tables) + "\n"
    return "\n\n".join(f"{t.title}\n{render(t, fmt)}" for t in tables) + "\n"


def summary_table(df: pd.DataFrame, columns: Sequence[str] = SUMMARY_COLUMNS, fmt: str = "github") -> str:
    """A compact table of the columns present, one row per cell, grouped by backbone."""
    cols = [c for c in columns if c in df.columns]
    if varies_precision(df) and PRECISION not in cols:
        cols.insert(1, PRECISION)
    if "error" in cols and not df["error"].fillna("").astype(str).str.len().any():
        cols.remove("error")
    view = df.sort_values([c for c in ("backbone", "preset", PRECISION, "gflops") if c in df.columns])[cols].copy()
    if "params" in view:
        view["params"] = (view["params"] / 1e6).round(3)
        view = view.rename(columns={"params": "params (M)"})
    headers = [str(c) for c in view.columns]
    return tabulate(view.values.tolist(), headers=headers, tablefmt=fmt, floatfmt=".4g", missingval="-")
