from __future__ import annotations

import pandas as pd

from bench.benchmarks.study import summarise, variants


def test_variants_follow_the_pipeline():
    v = variants("mixste", "tiny", 0.33, 1)
    assert v["baseline"].pruner == "none"
    assert v["hot"].effective_recoverer == "attention"
    assert v["training_free"].effective_recoverer == "interpolation"
    w = variants("mhformer", "tiny", 0.33, 1)
    assert w["hot"].effective_recoverer == "none" and w["training_free"].effective_recoverer == "none"


def test_summary_reports_mean_spread_and_verdicts():
    rows = []
    for seed, (base, hot) in enumerate([(70.0, 75.0), (72.0, 80.0)]):
        for variant, m in (("baseline", base), ("hot", hot)):
            rows.append(
                {
                    "backbone": "mixste",
                    "variant": variant,
                    "label": variant,
                    "seed": seed,
                    "mpjpe_mm": m,
                    "pmpjpe_mm": m / 2,
                    "trivial_mpjpe_mm": 160.0,
                    "steps": 100,
                    "seconds": 10.0,
                }
            )
    text = summarise(pd.DataFrame(rows))
    assert "71.0 ± 1.4" in text and "77.5 ± 3.5" in text
    assert "baseline 71.0 mm vs trivial/2 80.0 -> PASS" in text
    assert "HoT 77.5 mm, +9.2% vs baseline -> PASS" in text
