"""The precision benchmark: fp32 and bf16 of one model timed in the same rounds; fp16 on CPU refused."""

from __future__ import annotations

import math

import pytest

import bench.benchmarks.precision as precision
from bench.benchmarks.precision import format_rows, run_precision
from bench.config import ConfigError, SpeedConfig


def _finite_positive(*xs: float) -> bool:
    return all(math.isfinite(x) and x > 0 for x in xs)


@pytest.mark.slow
def test_precision_benchmark_rows() -> None:
    (row,) = run_precision(["mixste"], preset="tiny", speed=SpeedConfig(warmup=0, iters=2, threads=1, precision="bf16"))
    assert row["error"] is None and row["precision"] == "bf16" and row["threads"] == 1
    assert _finite_positive(row["fp32_ms"], row["low_ms"], row["ratio"], row["rel_change"])
    assert row["rel_change"] < 0.03 and row["max_rel_change"] < 0.05
    assert row["ratio_of_medians"] == pytest.approx(row["low_ms"] / row["fp32_ms"])
    assert "avx512_bf16" in row["env"]
    assert "protocol: median of per-round ratios over 2 interleaved rounds" in format_rows([row])


def test_fp16_on_the_cpu_is_refused_before_any_model_is_built() -> None:
    with pytest.raises(ConfigError, match="fp16 runs on CUDA only"):
        run_precision(["no-such-backbone"], preset="tiny", speed=SpeedConfig().replace(precision="fp16", iters=1))
    with pytest.raises(ConfigError, match="fp32 is the reference"):
        run_precision(["no-such-backbone"], preset="tiny", speed=SpeedConfig())


def test_one_way_to_run_it() -> None:
    """The benchmark is `run_bench.py precision`; the module has no command line of its own."""
    assert not hasattr(precision, "main")
    assert "run_bench.py precision" in (precision.__doc__ or "")
