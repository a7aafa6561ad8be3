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
from bench.config import ConfigError, ModelConfig, SpeedConfig
from bench.measure import speed as S
from bench.measure.env import env_tag, environment
from bench.measure.flops.counters import input_shape
from bench.measure.precision import autocast

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
    r = S.measure_speed(TINY, SpeedConfig(batch=2, warmup=1, iters=6, threads=1))
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
    plain = S.measure_speed(TINY, SpeedConfig(warmup=0, iters=2, threads=1))
    flip = S.measure_speed(TINY, SpeedConfig(warmup=0, iters=2, threads=1), flip=True)
    assert flip.flip and flip.gflops_per_call == pytest.approx(2 * plain.gflops_per_call)
    assert flip.frames_per_call == plain.frames_per_call == 27


def test_a_flipped_step_averages_the_test_time_flip() -> None:
    from bench.data import JOINTS_LEFT, JOINTS_RIGHT, flip_pose

    model = TINY.build().eval()
    x = torch.randn(1, 27, 17, 2)
    with torch.inference_mode():
        got = S.make_step(model, x, flip=True)()
        want = (model(x) + flip_pose(model(flip_pose(x, JOINTS_LEFT, JOINTS_RIGHT)), JOINTS_LEFT, JOINTS_RIGHT)) / 2
        assert torch.allclose(got, want) and not torch.allclose(got, model(x))


@pytest.mark.skipif("cluster" not in PRUNERS, reason="strategies' cluster pruner not registered")
def test_seq2frame_fps_counts_one_frame_per_clip() -> None:
    cfg = ModelConfig.create("mixste", "tiny", pruner="cluster", recoverer="none", tokens=9, depths=3)
    r = S.measure_speed(cfg, SpeedConfig(batch=3, warmup=1, iters=3, threads=1))
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
    r = S.measure_speed(TINY, SpeedConfig(batch=8, warmup=1, iters=3, threads=1))
    assert tried == [8, 4, 2]
    assert r.ok and r.batch_requested == 8 and r.batch == 2
    assert r.oom_retries == 2 and r.oom_batches == [8, 4]
    assert r.frames_per_call == 27 * 2


def test_oom_at_batch_one_is_a_row_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    _oom_above(0, monkeypatch)
    r = S.measure_speed(TINY, SpeedConfig(batch=2, warmup=1, iters=3, threads=1))
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
        S.measure_speed(TINY, SpeedConfig(warmup=0, iters=1))


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
    res = S.compare_speed([TINY, small], SpeedConfig(warmup=1, iters=4, threads=1))
    assert [r.label for r in res] == [TINY.label(), small.label()]
    assert all(r.ok and len(r.latency_ms) == 4 for r in res)
    assert res[0].gflops_per_call > res[1].gflops_per_call
    assert res[0].env == res[1].env  # one environment snapshot for one interleaved run


def test_cuda_request_without_gpu_is_clear() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match=r"^speed\.device: 'cuda' requested but CUDA is not available"):
        S.measure_speed(TINY, SpeedConfig(device="cuda", iters=1))


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
    rows = run_speedup(["mixste"], preset="tiny", speed=SpeedConfig(warmup=1, iters=2, threads=1))
    assert len(rows) == 2 and all(r["error"] is None for r in rows)
    for r in rows:
        assert _finite_positive(
            r["speedup"], r["speedup_of_medians"], r["flops_ratio_paper"], r["flops_ratio_all_matmul"]
        )
        assert r["flops_ratio_paper"] > 1 and r["flops_ratio_all_matmul"] > 1
        assert r["speedup_over_flops_paper"] == pytest.approx(r["speedup"] / r["flops_ratio_paper"])
    assert "speedup" in format_rows(rows)
    argv = ["speedup", "--preset", "tiny", "--backbone", "mixste", "--warmup", "0", "--iters", "1", "--format", "json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in out] == ["HoT(9,3)", "TPC(9,3)"]
    assert {(r["warmup"], r["iters"]) for r in out} == {(0, 1)}


# ---- the group API: a baseline and its variants timed round-robin with paired speedups -----------
def _group_cfgs() -> tuple[ModelConfig, ModelConfig, ModelConfig]:
    v1 = ModelConfig.create("mixste", "tiny", overrides={"depth": 2})
    v2 = ModelConfig.create("mixste", "tiny", overrides={"depth": 1})
    return TINY, v1, v2


def test_group_times_baseline_and_variants_interleaved_with_an_injected_clock() -> None:
    base, v1, v2 = _group_cfgs()
    ms = {base.model_id(): 10.0, v1.model_id(): 5.0, v2.model_id(): 20.0}
    calls: list[str] = []
    rounds = {"n": 0}

    def clock(key: str, step, device: torch.device) -> float:  # type: ignore[no-untyped-def]
        calls.append(key)
        drift = 1.0 + rounds["n"] // 3  # the machine gets slower round after round
        rounds["n"] += 1
        return ms[key] * drift

    speed = SpeedConfig(warmup=2, iters=4, threads=1, throughput_batch=1)  # one batch: latency calls only
    rows = S.measure_speed_group(base, [v1, v2, base], speed, clock=clock)  # the baseline twice: timed once
    b, x, y = base.model_id(), v1.model_id(), v2.model_id()
    assert list(rows) == [b, x, y]
    # 2 warm-up rounds in order, then 4 timed rounds whose start rotates: no model always follows another
    assert calls == [b, x, y] * 2 + [b, x, y, x, y, b, y, b, x, b, x, y]
    assert [rows[k]["label"] for k in (b, x, y)] == [base.label(), v1.label(), v2.label()]
    assert rows[b]["is_baseline"] and not rows[x]["is_baseline"] and rows[x]["baseline_model_id"] == b
    # per-round ratios cancel the drift exactly: base/v1 = 2, base/v2 = 0.5 in every round
    assert rows[b]["speedup"] == 1.0 and rows[b]["speedup_iqr"] == 0.0
    assert rows[x]["speedup"] == pytest.approx(2.0) and rows[x]["speedup_iqr"] == pytest.approx(0.0)
    assert rows[y]["speedup"] == pytest.approx(0.5) and rows[y]["speedup_rounds"] == 4
    for k in (b, x, y):
        r = rows[k]
        assert r["latency_ms_median"] > 0 and r["fps"] == pytest.approx(27 / (r["latency_ms_median"] / 1e3))
        assert r["latency_ms_iqr"] >= 0 and r["warmup"] == 2 and r["iters"] == 4


def test_paired_speedup_median_and_spread() -> None:
    p = S.paired_speedup([10.0, 20.0, 30.0, 40.0, 50.0], [10.0, 10.0, 10.0, 10.0, 10.0])
    assert p["speedup"] == 3.0 and (p["speedup_q25"], p["speedup_q75"], p["speedup_iqr"]) == (2.0, 4.0, 2.0)
    assert p["speedup_rounds"] == 5
    assert math.isnan(S.paired_speedup([], [])["speedup"])
    assert S.paired_speedup([4.0, 9.0], [2.0])["speedup_rounds"] == 1  # a variant that stopped early


def test_group_rows_record_precision_device_and_environment() -> None:
    base, v1, _ = _group_cfgs()
    rows = S.measure_speed_group(base, [v1], SpeedConfig(warmup=0, iters=2, threads=1, precision="bf16"))
    assert len(rows) == 2
    for r in rows.values():
        assert r["precision"] == "bf16" and r["device"] == "cpu" and r["threads"] == 1
        assert r["device_name"] == r["env"]["device_name"] != ""
        assert r["cuda"] == torch.version.cuda and "driver" in r and r["timer"] == "perf_counter"
        assert r["env"]["precision"] == "bf16" and r["env"]["threads"] == 1
        assert "cpu_capability" in r["env"] and "avx512_bf16" in r["env"]
        assert _finite_positive(r["latency_ms_median"], r["fps"], r["speedup"])
        json.dumps(r)


def test_group_oom_variant_has_no_speedup() -> None:
    base = ModelConfig.create("mixste", "tiny")
    big = ModelConfig.create("mixste", "tiny", overrides={"depth": 2})

    def clock(key: str, step, device: torch.device) -> float:  # type: ignore[no-untyped-def]
        if key == big.model_id():
            raise RuntimeError("CUDA out of memory. Tried to allocate 1 GiB")
        return 1.0

    rows = S.measure_speed_group(base, [big], SpeedConfig(warmup=0, iters=3, threads=1), clock=clock)
    assert rows[base.model_id()]["speedup"] == 1.0
    bad = rows[big.model_id()]
    assert bad["error"] and "out of memory" in bad["error"] and math.isnan(bad["speedup"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_protocol_events_precision_and_environment() -> None:
    dev = torch.device("cuda")
    # events + synchronize measure GPU time, not launch time: a ~50 ms spin kernel reads as >= 10 ms
    ms = S.time_call(lambda: torch.cuda._sleep(100_000_000), dev)  # type: ignore[attr-defined]
    assert ms > 10.0
    base, v1, _ = _group_cfgs()
    for precision in ("fp32", "bf16", "fp16"):
        before = torch.backends.cudnn.benchmark
        rows = S.measure_speed_group(base, [v1], SpeedConfig(device="cuda", warmup=2, iters=3, precision=precision))
        assert torch.backends.cudnn.benchmark == before  # restored after the autotuned measurement
        for r in rows.values():
            assert r["error"] is None and r["timer"] == "cuda_events" and r["precision"] == precision
            assert r["device"].startswith("cuda") and r["device_name"] == torch.cuda.get_device_name(dev)
            assert r["cuda"] == torch.version.cuda and r["env"]["cudnn_benchmark"] is True
            assert r["peak_memory_mb"] > 0 and _finite_positive(r["latency_ms_median"], r["speedup"])
    torch.manual_seed(0)
    model = base.build(dev).eval()
    x = torch.randn(input_shape(model, 2), device=dev)
    with torch.inference_mode():
        ref = model(x)
        for precision in ("bf16", "fp16"):
            with autocast(precision, dev):
                low = model(x)
            assert float((low.float() - ref).norm() / ref.norm()) < 0.03


def test_round_robin_times_one_model_in_two_precisions() -> None:
    a, b = S.time_round_robin([TINY, TINY], SpeedConfig(warmup=0, iters=2, threads=1), precisions=["fp32", "bf16"])
    assert (a.precision, b.precision) == ("fp32", "bf16") and a.model_id == b.model_id
    assert a.env["precision"] == "fp32" and b.env["precision"] == "bf16"
    with pytest.raises(ConfigError, match=r"^speed\.precision: fp16"):
        S.time_round_robin([TINY], SpeedConfig(iters=1), precisions=["fp16"])
    with pytest.raises(ValueError, match="2 precisions for 1"):
        S.time_round_robin([TINY], SpeedConfig(iters=1), precisions=["fp32", "bf16"])


def test_group_times_latency_and_throughput_in_the_same_rounds() -> None:
    """Each round times every configuration at batch 1 and at the throughput batch; each figure has its own
    paired speedup, and a row names the batch its throughput was timed at."""
    base, v1, _ = _group_cfgs()
    ms = {base.model_id(): 10.0, v1.model_id(): 5.0}
    ms |= {f"{base.model_id()}:throughput": 100.0, f"{v1.model_id()}:throughput": 25.0}  # v1: 2x at 1, 4x at 4
    calls: list[str] = []

    def clock(key: str, step, device: torch.device) -> float:  # type: ignore[no-untyped-def]
        calls.append(key)
        return ms[key]

    rows = S.measure_speed_group(base, [v1], SpeedConfig(warmup=1, iters=2, threads=1, throughput_batch=4), clock=clock)
    b, x = base.model_id(), v1.model_id()
    bt, xt = f"{b}:throughput", f"{x}:throughput"
    # warm-up round, then two timed rounds (the second starts at v1), latency calls before throughput calls
    assert calls == [b, x, bt, xt, b, x, bt, xt, x, b, xt, bt]
    for key, lat, tput in ((b, 10.0, 100.0), (x, 5.0, 25.0)):
        r = rows[key]
        assert r["batch"] == 1 and r["throughput_batch"] == 4
        assert r["latency_ms_median"] == lat and r["throughput_ms_median"] == tput
        assert r["fps"] == pytest.approx(27 / (lat / 1e3))  # the latency batch's rate
        assert r["throughput_fps"] == pytest.approx(4 * 27 / (tput / 1e3))  # output frames/s at batch 4
    assert rows[x]["speedup"] == pytest.approx(2.0) and rows[x]["throughput_speedup"] == pytest.approx(4.0)
    assert rows[x]["throughput_speedup_rounds"] == 2 and rows[b]["throughput_speedup"] == 1.0


def test_throughput_batch_defaults_to_the_presets_and_equal_batches_time_once(monkeypatch) -> None:
    from backbones import get_backbone_spec

    tiny = get_backbone_spec("mixste").preset("tiny").throughput_batch
    assert tiny > 1 and S.throughput_batch(TINY, SpeedConfig()) == tiny
    assert S.throughput_batch(TINY, SpeedConfig(throughput_batch=3)) == 3
    calls: list[str] = []

    def clock(key: str, step, device: torch.device) -> float:  # type: ignore[no-untyped-def]
        calls.append(key)
        return 1.0

    r = S.time_round_robin([TINY], SpeedConfig(warmup=0, iters=3, threads=1, batch=2, throughput_batch=2), clock=clock)[
        0
    ]
    assert calls == [TINY.model_id()] * 3  # the throughput batch is the latency batch: timed once
    assert r.throughput_batch == 2 and r.throughput_fps == pytest.approx(r.fps)


@pytest.mark.parametrize(
    "features, precision, note",
    [
        ({"avx512_bf16": False, "amx_tile": False}, "bf16", True),  # emulated: the row says so
        ({"avx512_bf16": True, "amx_tile": False}, "bf16", False),
        ({"avx512_bf16": False, "amx_tile": True}, "bf16", False),
        ({"avx512_bf16": False, "amx_tile": False}, "fp32", False),
    ],
)
def test_a_bf16_row_on_a_cpu_without_native_bf16_carries_the_note(monkeypatch, features, precision, note):
    from bench.config import ModelConfig, SpeedConfig
    from bench.measure import env
    from bench.measure.speed import measure_speed
    from bench.rows import SPEED_FIELDS

    monkeypatch.setattr(env, "cpu_features", lambda: {"cpu_capability": "AVX2", **features})  # the probe
    r = measure_speed(ModelConfig.create("strided", "tiny"), SpeedConfig(precision=precision, warmup=0, iters=1))
    assert (r.precision_note == env.EMULATED_BF16) is note and (r.precision_note == "") is not note
    assert r.env["native_bf16"] is (features["avx512_bf16"] or features["amx_tile"])
    assert SPEED_FIELDS["precision_note"] == "precision_note"  # grid rows carry it


class _MemoryRounds:
    """A :class:`bench.measure.speed.Rounds` in memory: the header it was loaded under and the rounds."""

    def __init__(self, header: dict | None = None, rounds: list[dict[str, float]] | None = None) -> None:
        self.header, self.rounds = header, list(rounds or [])

    def load(self, header: dict) -> list[dict[str, float]]:
        if header != self.header:
            self.header, self.rounds = header, []
        return list(self.rounds)

    def append(self, samples: dict[str, float]) -> None:
        self.rounds.append(samples)


def test_round_robin_keeps_each_finished_round_and_resumes_from_kept_ones() -> None:
    speed = SpeedConfig(warmup=0, iters=3, threads=1, throughput_batch=2)
    key = TINY.model_id()
    store = _MemoryRounds()
    first = S.time_round_robin([TINY], speed, clock=lambda k, s, d: 7.0 if k == key else 9.0, rounds=store)[0]
    assert store.rounds == [{key: 7.0, f"{key}:throughput": 9.0}] * 3
    assert store.header is not None and store.header["batches"] == {key: 1, f"{key}:throughput": 2}
    assert first.latency_ms == [7.0] * 3
    # two rounds kept by a killed timing of the same header: only the third is timed
    resumed = _MemoryRounds(store.header, store.rounds[:2])
    calls: list[str] = []
    res = S.time_round_robin([TINY], speed, clock=lambda k, s, d: calls.append(k) or 1.0, rounds=resumed)[0]
    assert calls == [key, f"{key}:throughput"] and res.latency_ms == [7.0, 7.0, 1.0]
    # another protocol (here one more round) is another header: nothing is reused
    again = _MemoryRounds(store.header, store.rounds)
    calls.clear()
    S.time_round_robin([TINY], speed.replace(iters=4), clock=lambda k, s, d: calls.append(k) or 1.0, rounds=again)
    assert len(calls) == 8 and again.header["speed"]["iters"] == 4


# ---- the compiled-model axis (issue 22): speed.compile [none, inductor] -------------------------------
def _fake_compile(make: type[nn.Module] | None = None):  # type: ignore[no-untyped-def]
    """A stand-in for ``torch.compile``: the model itself (``make`` None) or ``make(model)``."""

    def compile_(model: nn.Module, **kw: object) -> nn.Module:
        assert kw == {"backend": "inductor", "fullgraph": True, "dynamic": False}
        return model if make is None else make(model)

    return compile_


class _Off(nn.Module):
    """A 'compiled' model whose output is 1 % off the eager one."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.frames = inner.frames

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x) * 1.01


def test_compile_is_none_then_inductor_and_the_eager_model_is_always_timed() -> None:
    from bench.config import validate

    assert SpeedConfig().compile == ("none",)
    assert SpeedConfig(compile="inductor").compile == ("none", "inductor")
    assert validate(SpeedConfig, {"compile": ["none", "inductor"]}).compile == ("none", "inductor")
    for bad in (["inductor"], ["none", "none"], [], ["none", "tvm"], "tvm"):
        with pytest.raises(ConfigError, match=r"^compile: "):
            validate(SpeedConfig, {"compile": bad})


def test_a_compiled_entry_is_timed_in_the_same_rounds_under_its_own_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", _fake_compile())  # the eager model itself: output identical
    base, v1, _ = _group_cfgs()
    calls: list[str] = []
    ms = {base.model_id(): 10.0, v1.model_id(): 5.0, f"{base.model_id()}+inductor": 8.0}
    ms[f"{v1.model_id()}+inductor"] = 2.0

    def clock(key: str, step, device: torch.device) -> float:  # type: ignore[no-untyped-def]
        calls.append(key)
        return ms[key]

    speed = SpeedConfig(warmup=0, iters=4, threads=1, throughput_batch=1, compile="inductor")
    rows = S.measure_speed_group(base, [v1], speed, clock=clock)
    b, x = base.model_id(), v1.model_id()
    assert calls[:4] == [b, x, f"{b}+inductor", f"{x}+inductor"] and len(calls) == 16
    assert list(rows) == [b, x]  # one row per configuration: its compiled form is columns of it
    r, rb = rows[x], rows[b]
    assert r["compile"] == "none+inductor" and r["compile_error"] == ""
    assert r["latency_ms_median"] == 5.0 and r["compiled_latency_ms"] == 2.0
    assert r["speedup"] == pytest.approx(2.0)  # eager: 10 / 5
    assert r["compiled_speedup"] == pytest.approx(4.0)  # compiled: 8 / 2, against the compiled baseline
    assert r["compiled_over_eager"] == pytest.approx(0.4) and rb["compiled_over_eager"] == pytest.approx(0.8)
    assert r["compiled_rel_err"] == 0.0 and r["compile_s"] > 0
    assert math.isfinite(r["compiled_fps"]) and r["compiled_fps"] == pytest.approx(27 / 2e-3)


def test_a_failed_compile_is_its_rows_reason_and_the_eager_figures_stand(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(model: nn.Module, **kw: object) -> nn.Module:
        raise RuntimeError("Unsupported: data-dependent branching\n  (a long second line)")

    monkeypatch.setattr(torch, "compile", broken)
    speed = SpeedConfig(warmup=0, iters=2, threads=1, throughput_batch=1, compile="inductor")
    row = S.measure_speed_group(TINY, [], speed)[TINY.model_id()]
    assert row["error"] is None and _finite_positive(row["latency_ms_median"], row["fps"])
    assert row["compile_error"].startswith("compile (inductor) failed: RuntimeError: Unsupported: data-dependent")
    assert "\n" not in row["compile_error"]
    assert math.isnan(row["compiled_latency_ms"]) and math.isnan(row["compiled_over_eager"])


def test_a_compiled_output_off_eager_by_more_than_the_bound_is_not_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", _fake_compile(_Off))
    speed = SpeedConfig(warmup=0, iters=2, threads=1, throughput_batch=1, compile="inductor")
    row = S.measure_speed_group(TINY, [], speed)[TINY.model_id()]
    want = r"compiled output differs from eager by 1\.00e-02 \(relative L2; bound 0\.0001\)"
    assert re.fullmatch(want, row["compile_error"])
    assert row["compiled_rel_err"] == pytest.approx(0.01, rel=1e-3) and math.isnan(row["compiled_latency_ms"])
    assert row["error"] is None and row["latency_ms_median"] > 0


def test_speedup_and_precision_tables_carry_the_compiled_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.benchmarks import precision as P

    monkeypatch.setattr(torch, "compile", _fake_compile())
    speed = SpeedConfig(warmup=0, iters=2, threads=1, throughput_batch=1, compile="inductor")
    rows = run_speedup(["mixste"], preset="tiny", speed=speed)
    assert len(rows) == 2 and all(r["error"] is None and r["compile_error"] == "" for r in rows)
    for r in rows:
        assert _finite_positive(r["compiled_speedup"], r["base_compiled_over_eager"], r["variant_compiled_over_eager"])
        assert r["compiled_speedup_over_flops_all_matmul"] == pytest.approx(
            r["compiled_speedup"] / r["flops_ratio_all_matmul"]
        )
    text = format_rows(rows)
    assert "speedup compiled" in text and "compiled/eager" in text
    prow = P.precision_row(TINY, speed.replace(precision="bf16"))
    assert prow["compile"] == "none+inductor" and prow["compile_error"] == ""
    assert _finite_positive(prow["compiled_ratio"], prow["compiled_over_eager_fp32"], prow["compiled_over_eager_low"])
    assert "compiled low / fp32" in P.format_rows([prow])


@pytest.mark.slow
def test_inductor_compiles_a_pruned_seq2frame_model_whole_and_it_equals_eager() -> None:
    """The real inductor on StridedTransformer and its TPC form (top-k and gather on the token tensor)."""
    base, variants = configs_for("strided", "tiny")
    tpc = variants[0][1]
    assert tpc.pruner is not None
    speed = SpeedConfig(warmup=1, iters=3, threads=1, throughput_batch=1, compile="inductor")
    rows = S.measure_speed_group(base, [tpc], speed)
    for cfg in (base, tpc):
        r = rows[cfg.model_id()]
        assert r["error"] is None and r["compile_error"] == "", r["compile_error"]
        assert 0 <= r["compiled_rel_err"] <= S.COMPILE_BOUND["fp32"]
        assert r["compile_s"] > 0 and _finite_positive(r["compiled_latency_ms"], r["compiled_over_eager"])
    assert _finite_positive(rows[tpc.model_id()]["compiled_speedup"])


@pytest.mark.slow
def test_more_graphs_than_dynamos_default_limit_compile_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every backbone shares ``PoseBackbone.forward``: a ninth compiled configuration (dynamo's default limit is
    8 graphs per code object) still compiles. Dynamo's real tracing, with its eager backend for speed."""
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda m, **kw: real(m, **{**kw, "backend": "eager"}))
    cfgs = [ModelConfig.create("strided", "tiny", overrides={"layers": d}) for d in (1, 2, 3)]
    pruners = ("cluster", "uniform", "motion")
    cfgs += [ModelConfig.create("strided", "tiny", p, None, n, 1) for p in pruners for n in (5, 9)]
    assert len({c.model_id() for c in cfgs}) == 9
    speed = SpeedConfig(warmup=0, iters=1, threads=1, throughput_batch=1, compile="inductor")
    rows = S.measure_speed_group(cfgs[0], cfgs[1:], speed)
    assert [rows[c.model_id()]["compile_error"] for c in cfgs] == [""] * 9


def test_speedup_rows_split_throughput_and_marginal_speedup() -> None:
    """With a throughput batch above the latency batch, a speedup row has the throughput speedup of the same
    rounds and the marginal speedup: (ms at B - ms at 1) / (B - 1), base over variant; the table shows both."""
    base, variants = configs_for("mixste", "tiny")
    ms = {base.model_id(): 10.0, f"{base.model_id()}:throughput": 66.0}  # base: 8 ms per added clip
    for _, v in variants:
        ms |= {v.model_id(): 6.0, f"{v.model_id()}:throughput": 34.0}  # variant: 4 ms per added clip

    def clock(key: str, step, device: torch.device) -> float:  # type: ignore[no-untyped-def]
        return ms[key]

    speed = SpeedConfig(warmup=0, iters=2, threads=1, throughput_batch=8)
    rows = run_speedup(["mixste"], preset="tiny", speed=speed, clock=clock)
    assert [r["variant"] for r in rows] == [n for n, _ in variants]
    for r in rows:
        assert r["speedup"] == pytest.approx(10 / 6) and r["throughput_batch"] == 8
        assert r["throughput_speedup"] == pytest.approx(66 / 34)
        assert r["marginal_speedup"] == pytest.approx(2.0)
        assert r["marginal_speedup_over_flops_all_matmul"] == pytest.approx(2.0 / r["flops_ratio_all_matmul"])
    text = format_rows(rows)
    assert "2.00x (" in text and "@ 8" in text and "marginal" in text
    # without a throughput batch above the latency batch there is nothing to split: no columns
    one = run_speedup(["mixste"], preset="tiny", speed=speed.replace(throughput_batch=1), clock=clock)
    assert all("marginal_speedup" not in r for r in one) and "marginal" not in format_rows(one)


def test_marginal_ms_is_the_slope_between_the_two_batches() -> None:
    from bench.benchmarks.speedup import marginal_ms

    assert marginal_ms(1, 10.0, 4, 34.0) == pytest.approx(8.0)
    assert marginal_ms(2, 10.0, 6, 30.0) == pytest.approx(5.0)
    assert math.isnan(marginal_ms(4, 10.0, 4, 34.0)) and math.isnan(marginal_ms(4, 10.0, 2, 34.0))
