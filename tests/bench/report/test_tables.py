"""Paper-style tables: LaTeX structure, markdown equals CSV, best marks, mean ± sd."""

from __future__ import annotations

import io
import re

import pandas as pd

from bench.report import ablation_tables, hot_table, render, summary_table
from bench.report.tables import decimals, round_sig

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def test_round_sig_never_scientific():
    assert round_sig(0.071234) == 0.07123 and round_sig(299.767) == 299.8 and round_sig(12345.6) == 12346
    assert decimals(0.0712) == 5 and decimals(12345.0) == 0


def test_latex_is_a_balanced_booktabs_tabular(synthetic):
    tex = render(hot_table(synthetic), "latex")
    lines = tex.splitlines()
    assert lines[0].startswith("\\begin{tabular}{") and lines[-1] == "\\end{tabular}"
    assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 1
    assert lines[1] == "\\toprule" and lines[-2] == "\\bottomrule" and lines[3] == "\\midrule"
    ncols = len(re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1))
    body = [ln for ln in lines if ln.endswith("\\\\")]
    assert len(body) == 1 + 2 * 13  # header + 13 configurations per backbone
    assert all(ln.count(" & ") == ncols - 1 for ln in body)
    assert tex.count("\\midrule") == 2  # below the header, between the two backbones
    assert "$\\pm$" in tex and "\\textbf{" in tex and "$\\Delta$MPJPE (\\%)" in tex
    assert tex.count("{") == tex.count("}")


def test_markdown_numbers_equal_the_csv(synthetic):
    t = hot_table(synthetic)
    csv = pd.read_csv(io.StringIO(render(t, "csv")))
    md = [ln for ln in render(t, "md").splitlines() if ln.startswith("|")][2:]
    assert len(md) == len(csv) == 26
    value_cols = [c for c in csv.columns if c not in ("Backbone", "Method", "n", "k") and not c.endswith(" sd")]
    header = [h.strip() for h in render(t, "md").splitlines()[0].strip("|").split("|")]
    for line, (_, row) in zip(md, csv.iterrows()):
        cells = dict(zip(header, (c.strip() for c in line.strip().strip("|").split("|"))))
        for col in value_cols:
            shown = [float(x) for x in NUMBER.findall(cells[col].replace("**", ""))]
            expected = [] if pd.isna(row[col]) else [float(row[col])]
            sd = f"{col} sd"
            if sd in csv and not pd.isna(row[sd]) and expected:
                expected.append(float(row[sd]))
            assert shown == expected, (col, cells[col], expected)


def test_hot_table_layout_change_and_best(synthetic):
    t = hot_table(synthetic)
    f = t.frame
    assert list(f.columns[:5]) == ["Backbone", "Method", "Frames", "n", "k"]
    for col in ("Params (M)", "FLOPs (G)", "FPS", "MPJPE (mm)", "P-MPJPE (mm)", "ΔFLOPs (%)", "ΔMPJPE (%)"):
        assert col in f
    assert "MPJPE (mm) sd" in f and "FLOPs (G) sd" not in f  # FLOPs do not vary with the seed
    base = f[(f["Backbone"] == "mixste/tiny") & (f["Method"] == "mixste")].iloc[0]
    assert base["Frames"] == "27" and base["n"] == "–" and pd.isna(base["ΔFLOPs (%)"])
    row = f[(f["Method"] == "cluster+attention") & (f["n"] == "3") & (f["k"] == "1")].iloc[0]
    # FLOPs fraction of (3 tokens at k=1 of 4 blocks): 1/4 + 3/4 * 3/27 = 1/3 -> -66.7 %
    assert row["ΔFLOPs (%)"] == -66.7 and row["FLOPs (G)"] == 0.1
    best = {(f["Method"].iloc[i], c) for i, c in t.best if f["Backbone"].iloc[i] == "mixste/tiny"}
    assert ("mixste", "MPJPE (mm)") in best and ("cluster+attention", "FLOPs (G)") in best
    assert ("mixste", "FLOPs (G)") not in best


def test_ablation_is_tokens_by_depth_and_flops_only_grids_work(synthetic):
    tables = ablation_tables(synthetic)
    assert len(tables) == 2 * 2 * 2  # backbones x strategies x (MPJPE, FLOPs)
    t = tables[0]
    assert list(t.frame.columns) == ["n \\ k", "k=1", "k=2"] and t.frame["n \\ k"].tolist() == ["3", "9", "13"]
    flops_only = synthetic.drop(columns=["mpjpe_mm", "pmpjpe_mm", "fps", "trivial_mpjpe_mm"])
    assert [t.title.split(": ")[1] for t in ablation_tables(flops_only)] == ["FLOPs (G)"] * 4
    assert "MPJPE (mm)" not in hot_table(flops_only).frame


def _df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "backbone": ["a", "a", "a", "b"],
            "preset": ["tiny"] * 4,
            "pruner": ["none", "cluster", "uniform", "none"],
            "label": ["a", "a c", "a u", "b"],
            "params": [1e6, 1e6, 1e6, 2e6],
            "gflops": [0.0712, 0.037, 0.037, 0.5],
            "mpjpe_mm": [50.0, 55.0, 60.0, 40.0],
            "error": ["", "", "", ""],
        }
    )


def test_summary_table_keeps_small_flops_visible_and_drops_empty_errors():
    text = summary_table(_df())
    assert "0.0712" in text and "0.037" in text
    assert "error" not in text and "params (M)" in text
