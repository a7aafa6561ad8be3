"""Latency and throughput of one configuration under a stated protocol (issue 4, item 3).

Protocol (conventions.md §6, user-needs.md B): the model is built with real (random, seeded)
weights on ``device`` in eval mode; every call runs under ``torch.inference_mode()`` with
``torch.set_num_threads(threads)`` set for the measurement (recorded, then restored); ``warmup``
untimed calls, then ``iters`` timed calls, each timed alone (``time.perf_counter`` on CPU; CUDA
events with ``torch.cuda.synchronize`` on a GPU). Reported: median latency and its IQR, output
frames per second (VideoPose3D's batch in output frames: a seq2seq call scores T x batch frames, a
seq2frame/TPC call scores batch frames), clips per second, achieved GFLOP/s (canonical FLOPs per
call / median latency), and the environment. Test-time flip runs the model twice per call.
Out-of-memory halves the batch and retries; the retries are recorded, a failure at batch 1 is an
``error`` in the row, not a crash.

Timings on a shared machine are only comparable within one run: :func:`compare_speed` times
several configurations round-robin, interleaved, in one process.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from bench.measure.env import environment
from bench.measure.flops.counters import input_shape

if TYPE_CHECKING:
    from bench.config import ModelConfig

# Human3.6M left/right joints (shared/docs/papers.md §10.2), swapped by the test-time flip.
_LEFT = (4, 5, 6, 11, 12, 13)
_RIGHT = (1, 2, 3, 14, 15, 16)


@dataclass
class SpeedResult:
    """One configuration's timing under the protocol of :mod:`bench.measure.speed`."""

    label: str
    cell_id: str
    config: dict[str, Any]
    device: str
    threads: int
    warmup: int
    iters: int
    flip: bool
    batch_requested: int
    batch: int  # the batch actually timed (after any OOM halvings)
    oom_retries: int = 0
    oom_batches: list[int] = field(default_factory=list)  # batches that ran out of memory
    frames_per_call: int = 0  # output frames scored per call (T·batch or batch)
    latency_ms: list[float] = field(default_factory=list)
    latency_ms_median: float = float("nan")
    latency_ms_q25: float = float("nan")
    latency_ms_q75: float = float("nan")
    latency_ms_iqr: float = float("nan")
    latency_ms_min: float = float("nan")
    iqr_over_median: float = float("nan")
    fps: float = float("nan")  # output frames per second
    ms_per_frame: float = float("nan")
    clips_per_s: float = float("nan")
    gflops_per_call: float = float("nan")  # canonical (all-matmul) GFLOPs of one timed call
    gflops_paper_per_call: float = float("nan")
    achieved_gflops_per_s: float = float("nan")
    peak_memory_mb: float | None = None  # CUDA only
    timer: str = "perf_counter"
    torch: str = torch.__version__
    env: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.latency_ms_median == self.latency_ms_median

    def to_dict(self, samples: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not samples:
            d.pop("latency_ms")
        return d


# ---- helpers -------------------------------------------------------------------------------------
def is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory error on any device."""
    if isinstance(exc, MemoryError):
        return True
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[int]:
    """Set ``torch.set_num_threads`` for the block (None keeps the current value); restore after."""
    before = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def flip_input(x: Tensor) -> Tensor:
    """Horizontal flip of a 2D clip (B, T, J, C): negate x, swap left/right joints."""
    out = x.clone()
    out[..., 0] *= -1
    if x.shape[2] == 17:
        left, right = list(_LEFT), list(_RIGHT)
        out[:, :, left + right] = out[:, :, right + left]
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model: nn.Module, x: Tensor, flip: bool) -> Callable[[], Tensor]:
    """One timed call: a forward pass, or with ``flip`` two (original + flipped) and their mean."""
    if not flip:
        return lambda: model(x)
    xf = flip_input(x)

    def step() -> Tensor:
        a = model(x)
        b = model(xf)
        b = b.clone()
        b[..., 0] *= -1
        if b.shape[2] == 17:
            left, right = list(_LEFT), list(_RIGHT)
            b[:, :, left + right] = b[:, :, right + left]
        return (a + b) / 2

    return step


def time_call(step: Callable[[], Tensor], device: torch.device) -> float:
    """Milliseconds of one call: CUDA events + synchronize on a GPU, ``perf_counter`` elsewhere."""
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        _sync(device)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize(device)
        return float(start.elapsed_time(end))
    t0 = time.perf_counter()
    step()
    return (time.perf_counter() - t0) * 1e3


def summarise(res: SpeedResult, samples: Sequence[float]) -> SpeedResult:
    """Fill median, quartiles, IQR and the derived rates from latency samples (ms)."""
    if not samples:
        res.error = res.error or "no timed iterations"
        return res
    res.latency_ms = [float(s) for s in samples]
    med = statistics.median(samples)
    if len(samples) >= 2:
        q = statistics.quantiles(samples, n=4, method="inclusive")
        q25, q75 = q[0], q[2]
    else:
        q25 = q75 = med
    res.latency_ms_median = med
    res.latency_ms_q25, res.latency_ms_q75 = q25, q75
    res.latency_ms_iqr = q75 - q25
    res.latency_ms_min = min(samples)
    res.iqr_over_median = res.latency_ms_iqr / med if med > 0 else float("nan")
    sec = med / 1e3
    res.fps = res.frames_per_call / sec
    res.ms_per_frame = med / res.frames_per_call if res.frames_per_call else float("nan")
    res.clips_per_s = res.batch / sec
    res.achieved_gflops_per_s = res.gflops_per_call / sec
    return res


# ---- preparing one configuration -----------------------------------------------------------------
@dataclass
class _Prepared:
    cfg: ModelConfig
    res: SpeedResult
    device: torch.device
    step: Callable[[], Tensor] | None = None
    samples: list[float] = field(default_factory=list)


def _new_result(
    cfg: ModelConfig, device: torch.device, threads: int, warmup: int, iters: int, batch: int, flip: bool
) -> SpeedResult:
    return SpeedResult(
        label=cfg.label(),
        cell_id=cfg.cell_id(),
        config=cfg.to_dict(),
        device=str(device),
        threads=threads,
        warmup=warmup,
        iters=iters,
        flip=flip,
        batch_requested=batch,
        batch=batch,
        timer="cuda_events" if device.type == "cuda" else "perf_counter",
    )


def _flops_per_clip(cfg: ModelConfig) -> tuple[float, float]:
    try:
        from bench.measure.flops.core import count_canonical

        gflops, paper, _ = count_canonical(cfg)
    except Exception:  # timing does not depend on being able to count
        return float("nan"), float("nan")
    return gflops, paper


def _prepare(
    cfg: ModelConfig, device: torch.device, batch: int, flip: bool, res: SpeedResult, gflops: tuple[float, float]
) -> _Prepared:
    """Build the model, find a batch that fits (halving on OOM) and run one untimed call."""
    prep = _Prepared(cfg, res, device)
    b = batch
    while True:
        model = x = None
        try:
            cuda_ids = (
                [device.index if device.index is not None else torch.cuda.current_device()]
                if device.type == "cuda"
                else []
            )
            with torch.random.fork_rng(devices=cuda_ids):
                torch.manual_seed(0)
                model = cfg.build(device).eval()
                x = torch.randn(input_shape(model, b), device=device)
            step = make_step(model, x, flip)
            with torch.inference_mode():
                out = step()
            _sync(device)
        except Exception as exc:
            if not is_oom(exc):
                raise
            del model, x
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            res.oom_batches.append(b)
            res.oom_retries += 1
            if b == 1:
                res.error = f"out of memory at batch 1: {str(exc).splitlines()[0][:160]}"
                res.batch = 0
                return prep
            b = max(1, b // 2)
            continue
        res.batch = b
        res.frames_per_call = int(out.shape[1]) * b
        calls = 2 if flip else 1
        res.gflops_per_call = gflops[0] * b * calls
        res.gflops_paper_per_call = gflops[1] * b * calls
        prep.step = step
        return prep


def _run_timed(prep: _Prepared, n: int, timed: bool) -> None:
    """``n`` calls of a prepared configuration; an OOM mid-run becomes its error."""
    if prep.step is None:
        return
    try:
        with torch.inference_mode():
            for _ in range(n):
                ms = time_call(prep.step, prep.device)
                if timed:
                    prep.samples.append(ms)
    except Exception as exc:
        if not is_oom(exc):
            raise
        prep.res.error = f"out of memory while timing at batch {prep.res.batch}"
        prep.res.oom_batches.append(prep.res.batch)
        prep.step = None


def _finish(prep: _Prepared) -> SpeedResult:
    res = summarise(prep.res, prep.samples) if prep.res.error is None else prep.res
    if prep.device.type == "cuda":
        res.peak_memory_mb = torch.cuda.max_memory_allocated(prep.device) / 2**20
    return res


# ---- public API ----------------------------------------------------------------------------------
def protocol_defaults(warmup: int | None, iters: int | None) -> tuple[int, int]:
    """``warmup`` and ``iters``, ``None`` replaced by :class:`~bench.config.SpeedConfig`'s defaults."""
    from bench.config import SpeedConfig

    d = SpeedConfig()
    return (d.warmup if warmup is None else warmup), (d.iters if iters is None else iters)


def measure_speed(
    cfg: ModelConfig,
    *,
    batch: int = 1,
    warmup: int | None = None,
    iters: int | None = None,
    threads: int | None = None,
    device: str = "cpu",
    flip: bool = False,
) -> SpeedResult:
    """Time ``cfg`` alone: ``warmup`` untimed calls, then ``iters`` timed calls (see module docstring).

    ``None``: :class:`~bench.config.SpeedConfig`'s defaults (the suite's one speed protocol)."""
    return compare_speed([cfg], batch=batch, warmup=warmup, iters=iters, threads=threads, device=device, flip=flip)[0]


def compare_speed(
    cfgs: Sequence[ModelConfig],
    *,
    batch: int = 1,
    warmup: int | None = None,
    iters: int | None = None,
    threads: int | None = None,
    device: str = "cpu",
    flip: bool = False,
) -> list[SpeedResult]:
    """Time several configurations interleaved round-robin in one process (ratios are comparable).

    Every model is built and warmed up first; then ``iters`` rounds each time one call of every
    configuration, the order rotating from round to round so no model always follows the same one.
    """
    warmup, iters = protocol_defaults(warmup, iters)
    if batch < 1 or iters < 1 or warmup < 0:
        raise ValueError(f"need batch >= 1, iters >= 1, warmup >= 0 (got {batch}, {iters}, {warmup})")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False")
    flops = [_flops_per_clip(c) for c in cfgs]  # counted on meta before the clock starts
    with num_threads(threads) as used_threads:
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        preps = []
        for cfg, fl in zip(cfgs, flops):
            res = _new_result(cfg, dev, used_threads, warmup, iters, batch, flip)
            preps.append(_prepare(cfg, dev, batch, flip, res, fl))
        for _ in range(warmup):
            for p in preps:
                _run_timed(p, 1, timed=False)
        for r in range(iters):
            k = r % len(preps)
            for p in preps[k:] + preps[:k]:
                _run_timed(p, 1, timed=True)
        env = environment(dev)
        results = []
        for p in preps:
            p.res.env = env
            results.append(_finish(p))
    return results


__all__ = ["SpeedResult", "compare_speed", "flip_input", "is_oom", "measure_speed", "num_threads", "summarise"]
