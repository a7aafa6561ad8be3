"""The speed runner: positive, finite, self-consistent figures; OOM halving; the speedup script."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from torch import Tensor, nn

from bench.benchmarks.speedup import configs_for, format_rows, run_speedup
from bench.cli import main
from bench.config import ModelConfig
from bench.measure import speed as S
from bench.measure.env import env_tag, environment

try:
    import strategies

    PRUNERS = set(strategies.list_pruners())
except Exception:
    PRUNERS = set()

TINY = ModelConfig.create("mixste", "tiny")  # T = 27


def _finite_positive(*xs: float) -> bool:
    return all(math.isfinite(x) and x > 0 for x in xs)


def test_measure_speed_tiny_mixste_consistent() -> None:
    before = torch.get_num_threads()
    r = S.measure_speed(TINY, batch=2, warmup=1, iters=6, threads=1)
    assert torch.get_num_threads() == before  # restored
    assert r.ok and r.error is None
    assert r.threads == 1 and r.env["threads"] == 1 and r.iters == 6 and r.warmup == 1
    assert len(r.latency_ms) == 6
    assert _finite_positive(r.latency_ms_median, r.latency_ms_min, r.fps, r.clips_per_s, r.achieved_gflops_per_s)
    assert r.latency_ms_q25 <= r.latency_ms_median <= r.latency_ms_q75
    assert r.latency_ms_iqr >= 0 and r.iqr_over_median == pytest.approx(r.latency_ms_iqr / r.latency_ms_median)
    assert r.batch == r.batch_requested == 2 and r.oom_retries == 0
    assert r.frames_per_call == 27 * 2  # seq2seq: T x batch output frames per call
    sec = r.latency_ms_median / 1e3
    assert r.fps == pytest.approx(27 * 2 / sec)
    assert r.clips_per_s == pytest.approx(2 / sec)
    assert r.ms_per_frame == pytest.approx(r.latency_ms_median / 54)
    assert r.achieved_gflops_per_s == pytest.approx(r.gflops_per_call / sec)
    assert r.gflops_per_call > r.gflops_paper_per_call > 0
    d = r.to_dict()
    assert "latency_ms" not in d and len(r.to_dict(samples=True)["latency_ms"]) == 6
    for key in ("latency_ms_median", "latency_ms_iqr", "fps", "achieved_gflops_per_s", "torch", "device", "env"):
        assert key in d
    assert d["env"]["torch"] == torch.__version__ and d["device"] == "cpu" and d["timer"] == "perf_counter"
    json.dumps(d)


def test_flip_doubles_the_work_per_call() -> None:
    plain = S.measure_speed(TINY, warmup=0, iters=2, threads=1)
    flip = S.measure_speed(TINY, warmup=0, iters=2, threads=1, flip=True)
    assert flip.flip and flip.gflops_per_call == pytest.approx(2 * plain.gflops_per_call)
    assert flip.frames_per_call == plain.frames_per_call == 27


def test_flip_input_swaps_sides_and_negates_x() -> None:
    x = torch.randn(1, 2, 17, 2)
    f = S.flip_input(x)
    assert torch.equal(f[:, :, 4, 0], -x[:, :, 1, 0]) and torch.equal(f[:, :, 1, 1], x[:, :, 4, 1])
    assert torch.equal(f[:, :, 0, 0], -x[:, :, 0, 0])
    assert torch.equal(S.flip_input(f), x)


@pytest.mark.skipif("cluster" not in PRUNERS, reason="strategies' cluster pruner not registered")
def test_seq2frame_fps_counts_one_frame_per_clip() -> None:
    cfg = ModelConfig.create("mixste", "tiny", pruner="cluster", recoverer="none", tokens=9, depths=3)
    r = S.measure_speed(cfg, batch=3, warmup=1, iters=3, threads=1)
    assert r.ok and r.frames_per_call == 3
    assert r.fps == pytest.approx(r.clips_per_s)


def _oom_above(limit: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every call with a batch above ``limit`` raise a CUDA-style OOM; returns the batches tried."""
    tried: list[int] = []
    real = S.make_step

    def make_step(model: nn.Module, x: Tensor, flip: bool):  # type: ignore[no-untyped-def]
        step = real(model, x, flip)
        tried.append(x.shape[0])

        def guarded() -> Tensor:
            if x.shape[0] > limit:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return step()

        return guarded

    monkeypatch.setattr(S, "make_step", make_step)
    return tried


def test_oom_halves_the_batch_and_records_it(monkeypatch: pytest.MonkeyPatch) -> None:
    tried = _oom_above(2, monkeypatch)
    r = S.measure_speed(TINY, batch=8, warmup=1, iters=3, threads=1)
    assert tried == [8, 4, 2]
    assert r.ok and r.batch_requested == 8 and r.batch == 2
    assert r.oom_retries == 2 and r.oom_batches == [8, 4]
    assert r.frames_per_call == 27 * 2


def test_oom_at_batch_one_is_a_row_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    _oom_above(0, monkeypatch)
    r = S.measure_speed(TINY, batch=2, warmup=1, iters=3, threads=1)
    assert not r.ok and r.error is not None and "out of memory" in r.error
    assert r.batch == 0 and r.oom_batches == [2, 1]
    assert math.isnan(r.latency_ms_median)


def test_non_oom_errors_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    def make_step(model: nn.Module, x: Tensor, flip: bool):  # type: ignore[no-untyped-def]
        def bad() -> Tensor:
            raise RuntimeError("shape mismatch")

        return bad

    monkeypatch.setattr(S, "make_step", make_step)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        S.measure_speed(TINY, warmup=0, iters=1)


def test_is_oom() -> None:
    assert S.is_oom(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert S.is_oom(MemoryError())
    assert not S.is_oom(RuntimeError("expected scalar type Float"))
    assert not S.is_oom(ValueError("out of memory"))


def test_summarise_known_samples() -> None:
    res = S.SpeedResult("x", "id", {}, "cpu", 1, 0, 5, False, 2, 2, frames_per_call=10, gflops_per_call=3.0)
    S.summarise(res, [5.0, 1.0, 4.0, 2.0, 3.0])
    assert res.latency_ms_median == 3.0 and res.latency_ms_min == 1.0
    assert (res.latency_ms_q25, res.latency_ms_q75, res.latency_ms_iqr) == (2.0, 4.0, 2.0)
    assert res.iqr_over_median == pytest.approx(2 / 3)
    assert res.fps == pytest.approx(10 / 0.003) and res.clips_per_s == pytest.approx(2 / 0.003)
    assert res.achieved_gflops_per_s == pytest.approx(1000.0)


def test_num_threads_context_restores() -> None:
    before = torch.get_num_threads()
    with S.num_threads(1) as t:
        assert t == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError), S.num_threads(0):
        pass


def test_compare_speed_interleaves_and_keeps_order() -> None:
    small = ModelConfig.create("mixste", "tiny", overrides={"depth": 2})
    res = S.compare_speed([TINY, small], warmup=1, iters=4, threads=1)
    assert [r.label for r in res] == [TINY.label(), small.label()]
    assert all(r.ok and len(r.latency_ms) == 4 for r in res)
    assert res[0].gflops_per_call > res[1].gflops_per_call
    assert res[0].env is res[1].env  # one environment snapshot for one interleaved run


def test_cuda_request_without_gpu_is_clear() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="cuda"):
        S.measure_speed(TINY, device="cuda", iters=1)


def test_environment_and_tag() -> None:
    env = environment("cpu")
    for key in ("device", "device_name", "torch", "threads", "cpu_model", "load_average", "python"):
        assert key in env
    assert re.fullmatch(r"cpu-pt[0-9.]+-t3", env_tag("cpu", threads=3))


@pytest.mark.skipif("cluster" not in PRUNERS, reason="strategies' cluster pruner not registered")
def test_speedup_rows_and_cli(capsys: pytest.CaptureFixture[str]) -> None:
    base, variants = configs_for("mixste", "tiny")
    assert base.preset == "tiny" and [c.tokens for _, c in variants] == [(9,), (9,)]
    assert all(c.depths[0] in range(1, 4) for _, c in variants)
    _, paper_vars = configs_for("mixste", "paper")
    assert [(c.tokens, c.depths) for _, c in paper_vars] == [((81,), (3,)), ((61,), (7,))]
    rows = run_speedup(["mixste"], preset="tiny", warmup=1, iters=2, threads=1)
    assert len(rows) == 2 and all(r["error"] is None for r in rows)
    for r in rows:
        assert _finite_positive(
            r["speedup_median"], r["speedup_paired"], r["flops_ratio_paper"], r["flops_ratio_all_matmul"]
        )
        assert r["flops_ratio_paper"] > 1 and r["flops_ratio_all_matmul"] > 1
        assert r["speedup_over_flops_paper"] == pytest.approx(r["speedup_median"] / r["flops_ratio_paper"])
    assert "speedup" in format_rows(rows)
    argv = ["speedup", "--preset", "tiny", "--backbone", "mixste", "--warmup", "0", "--iters", "1", "--format", "json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in out] == ["HoT(9,3)", "TPC(9,3)"]
    assert {(r["warmup"], r["iters"]) for r in out} == {(0, 1)}
