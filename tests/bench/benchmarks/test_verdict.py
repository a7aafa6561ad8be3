"""The default run's targets read off a results frame (bench.benchmarks.verdict)."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.benchmarks.verdict import check, spearman

TRIVIAL = 160.0


def _row(label: str, pruner: str, mode: str, mpjpe: float, tokens: list[int], depths: list[int], **kw) -> dict:
    return {
        "backbone": "mixste",
        "preset": "tiny",
        "label": label,
        "pruner": pruner,
        "recoverer": "attention" if pruner != "none" else "none",
        "train_mode": mode,
        "baseline_key": "b0",
        "mpjpe_mm": mpjpe,
        "trivial_mpjpe_mm": TRIVIAL,
        "tokens": tokens,
        "depths": depths,
        "error": "",
        **kw,
    }


def _frame(hot_mpjpe: float, tput: float) -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row("base", "none", "scratch", 70.0, [], [], gflops=1.0, throughput_speedup=1.0),
            _row("c9", "cluster", "finetune", hot_mpjpe, [9], [1], gflops=0.5, throughput_speedup=tput),
            _row("c18", "cluster", "finetune", 72.0, [18], [2], gflops=0.9, throughput_speedup=1.05),
            _row("c3", "cluster", "finetune", 71.0, [3], [1], gflops=0.4, throughput_speedup=2.2),
        ]
    )


def _status(checks) -> dict[str, bool | None]:  # type: ignore[no-untyped-def]
    return {c.target: c.met for c in checks}


def test_targets_are_met_and_missed_by_the_numbers():
    good = _status(check(_frame(hot_mpjpe=76.0, tput=1.6)))  # 76 / 70 = 1.086 <= 1.10; FLOPs cut 50 % -> 1.6x
    assert all(v is True for v in good.values()), good
    bad = _status(check(_frame(hot_mpjpe=78.0, tput=1.1)))  # 1.114 x its baseline; 1.1x throughput
    assert bad["at HoT's point (T/3, depth 1) every fine-tuned cell <= 1.1 x its baseline"] is False
    assert bad["pruned cells with >= 40% fewer FLOPs run >= 1.2x (throughput)"] is False
    assert bad["every baseline <= 0.5 x trivial"] is True


def test_a_repeat_run_is_ranked_against_the_first():
    first = _frame(76.0, 1.6)
    same = _status(check(first, repeat=_frame(76.0, 1.7)))  # same order of speedups
    key = "two runs rank the throughput speedups the same (Spearman >= 0.9)"
    assert same[key] is True
    swapped = first.copy()
    swapped["throughput_speedup"] = [1.0, 2.3, 1.6, 1.05]  # reverses c9 / c3 and c18
    assert _status(check(first, repeat=swapped))[key] is False


def test_spearman_is_the_rank_correlation():
    a = pd.Series([1.0, 2.0, 3.0, 4.0])
    assert spearman(a, a**3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, pd.Series([1.0, 3.0, 2.0, 4.0])) == pytest.approx(0.8)
