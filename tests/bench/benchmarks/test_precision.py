"""The precision benchmark: fp32 and bf16 of one model timed in the same rounds; fp16 on CPU refused."""

from __future__ import annotations

import math

import pytest

from bench.benchmarks.precision import main, run_precision


def _finite_positive(*xs: float) -> bool:
    return all(math.isfinite(x) and x > 0 for x in xs)


@pytest.mark.slow
def test_precision_benchmark_rows(capsys: pytest.CaptureFixture[str]) -> None:
    (row,) = run_precision(["mixste"], preset="tiny", warmup=0, iters=2, threads=1)
    assert row["error"] is None and row["precision"] == "bf16" and row["threads"] == 1
    assert _finite_positive(row["fp32_ms"], row["low_ms"], row["ratio"], row["rel_change"])
    assert row["rel_change"] < 0.03 and row["max_rel_change"] < 0.05
    assert row["ratio_of_medians"] == pytest.approx(row["low_ms"] / row["fp32_ms"])
    assert "avx512_bf16" in row["env"]
    assert main(["--preset", "tiny", "--precision", "fp16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: speed.precision: fp16 runs on CUDA only")
