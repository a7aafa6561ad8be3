"""Latency and throughput of one configuration under a stated protocol (issue 4, item 3).

Protocol (conventions.md §6, user-needs.md B): the model is built with real (random, seeded)
weights on ``device`` in eval mode; every call runs under ``torch.inference_mode()`` and the
deployed ``precision`` (fp32, or ``torch.autocast`` to bf16 / fp16: :mod:`bench.measure.precision`)
with ``torch.set_num_threads(threads)`` set for the measurement (recorded, then restored). One
untimed call at the timed shape (on CUDA with ``cudnn.benchmark`` on, so cuDNN autotunes there),
then ``warmup`` untimed calls, then ``iters`` timed calls, each timed alone (``time.perf_counter``
on CPU; on a GPU CUDA events recorded around the call after a ``torch.cuda.synchronize``, read
after another). Every row records device, device name, driver, CUDA version, precision and
threads. Reported: median latency and its IQR, output
frames per second (VideoPose3D's batch in output frames: a seq2seq call scores T x batch frames, a
seq2frame/TPC call scores batch frames), clips per second, achieved GFLOP/s (canonical FLOPs per
call / median latency), and the environment. Test-time flip runs the model twice per call.
Out-of-memory halves the batch and retries; the retries are recorded, a failure at batch 1 is an
``error`` in the row, not a crash.

Timings on a shared machine are only comparable within one run: :func:`compare_speed` times
several configurations round-robin, interleaved, in one process, and :func:`measure_speed_group`
adds each one's ``speedup`` against a baseline from the same rounds (median of per-round ratios).

Compiled models (``speed.compile = (none, inductor)``, issue 22): each configuration is also compiled
once per timed batch (``torch.compile``, inductor, ``fullgraph=True``: a graph break is a failure;
``dynamic=False``; ``freezing``), its first calls' wall time recorded as ``compile_s`` apart from the
latency, its output checked against eager within :data:`COMPILE_BOUND`, and timed as one more entry of
the same interleaved rounds, so compiled / eager and the speedup under compile are paired figures. A
failed compile is that entry's error (the row's ``compile_error``); the eager figures stand.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch
from torch import Tensor, nn

from bench.config import ConfigError, SpeedConfig, threads_problem
from bench.data.clips import flip_pose
from bench.data.skeleton import JOINTS_LEFT, JOINTS_RIGHT
from bench.errors import one_line
from bench.measure.env import environment, precision_note
from bench.measure.flops.counters import input_shape
from bench.measure.precision import DTYPES, autocast

if TYPE_CHECKING:
    from bench.config import ModelConfig

#: Times one call: ``clock(key, step, device) -> milliseconds``; ``key`` is the configuration's
#: ``model_id``. The default is :func:`default_clock`; a test injects its own to see the call order.
Clock = Callable[[str, Callable[[], Any], torch.device], float]


class Rounds(Protocol):
    """Where the finished rounds of one timing are kept, so that a killed timing resumes at its next round.

    ``header`` says what the rounds belong to (the configurations in order, their batches, the
    protocol and the host); :meth:`load` returns the rounds kept under that same header (none when
    the header differs, and then starts over under it). A round is ``{key: ms}`` for every key of
    ``header["batches"]`` (``model_id`` and ``model_id:throughput``)."""

    def load(self, header: dict[str, Any]) -> list[dict[str, float]]: ...

    def append(self, samples: dict[str, float]) -> None: ...


@dataclass
class SpeedResult:
    """One configuration's timing under the protocol of :mod:`bench.measure.speed`."""

    label: str
    model_id: str  # ModelConfig.model_id(): the configuration's hash
    config: dict[str, Any]
    device: str
    threads: int
    warmup: int
    iters: int
    flip: bool
    batch_requested: int
    batch: int  # the batch actually timed (after any OOM halvings)
    precision: str = "fp32"  # fp32, or the autocast type (bf16 / fp16)
    precision_note: str = ""  # bf16 on a CPU that emulates it (bench.measure.env.precision_note)
    compile: str = "none"  # "none" (eager) or the torch.compile backend ("inductor")
    compile_s: float = float("nan")  # compiled: wall time of the first call at each timed batch (compile + 1 run)
    compiled_rel_err: float = float("nan")  # compiled: ||y_compiled - y_eager|| / ||y_eager|| on the timed input
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
    # throughput: the same model timed at ``throughput_batch`` clips per call in the same rounds (issue 17)
    throughput_batch: int = 0  # the batch actually timed for throughput (0: not timed)
    throughput_ms: list[float] = field(default_factory=list)  # per-call samples at throughput_batch
    throughput_ms_median: float = float("nan")
    throughput_ms_iqr: float = float("nan")
    throughput_fps: float = float("nan")  # output frames per second at throughput_batch
    throughput_clips_per_s: float = float("nan")
    peak_memory_mb: float | None = None  # CUDA only
    timer: str = "perf_counter"
    device_name: str = ""  # GPU model on CUDA, CPU model otherwise
    driver: str | None = None  # NVIDIA driver (CUDA only)
    cuda: str | None = None  # CUDA runtime torch was built with
    torch: str = torch.__version__
    env: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.latency_ms_median == self.latency_ms_median

    def to_dict(self, samples: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if self.compile == "none":  # an eager row: the compiled columns are measure_speed_group's to add
            for k in ("compile", "compile_s", "compiled_rel_err"):
                d.pop(k)
        if not samples:
            d.pop("latency_ms")
            d.pop("throughput_ms")
        return d


# ---- helpers -------------------------------------------------------------------------------------
def is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory error on any device."""
    if isinstance(exc, MemoryError):
        return True
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[int]:
    """Set ``torch.set_num_threads`` for the block (None keeps the current value); restore after."""
    before = torch.get_num_threads()
    if threads is not None:
        why = "threads must be >= 1" if threads < 1 else threads_problem(threads)
        if why is not None:
            raise ConfigError(why)
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model: nn.Module, x: Tensor, flip: bool) -> Callable[[], Tensor]:
    """One timed call: a forward pass, or with ``flip`` two (original + flipped) and their mean, the
    test-time flip of :func:`bench.data.clips.flip_pose` (Human3.6M's left/right joints)."""
    if not flip:
        return lambda: model(x)
    xf = flip_pose(x, JOINTS_LEFT, JOINTS_RIGHT)

    def step() -> Tensor:
        return (model(x) + flip_pose(model(xf), JOINTS_LEFT, JOINTS_RIGHT)) / 2

    return step


def with_precision(step: Callable[[], Tensor], precision: str, device: torch.device) -> Callable[[], Tensor]:
    """``step`` run under the autocast of ``precision`` (fp32: ``step`` itself)."""
    if precision == "fp32":
        return step
    with autocast(precision, device):  # checks precision x device once, outside the timed calls
        pass
    dtype = DTYPES[precision]

    def cast_step() -> Tensor:
        with torch.autocast(device_type=device.type, dtype=dtype):
            return step()

    return cast_step


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


def default_clock(key: str, step: Callable[[], Any], device: torch.device) -> float:
    """The protocol's clock: :func:`time_call` (``key`` only matters to injected clocks)."""
    return time_call(step, device)


def check_device(speed: SpeedConfig) -> torch.device:
    """The torch device of ``speed``; a CUDA device this machine lacks is one :class:`ConfigError` line."""
    dev = torch.device(speed.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise ConfigError(
                f"speed.device: {speed.device!r} requested but CUDA is not available here "
                f"(torch {torch.__version__}, {build})"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"speed.device: {speed.device!r} but only {torch.cuda.device_count()} GPU(s) are visible")
    return dev


@contextlib.contextmanager
def cudnn_autotune(device: torch.device) -> Iterator[None]:
    """On CUDA, ``cudnn.benchmark`` on for the block (the untimed first call autotunes); restored after."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def paired_speedup(base_ms: Sequence[float], variant_ms: Sequence[float]) -> dict[str, float]:
    """Speedup from per-round pairs (base and variant timed in the same round, so load drift cancels).

    ``speedup`` is the median of the per-round ratios base / variant; ``speedup_q25`` /
    ``speedup_q75`` / ``speedup_iqr`` its spread; ``speedup_rounds`` the number of pairs.
    """
    pairs = [b / v for b, v in zip(base_ms, variant_ms) if v > 0 and b == b and v == v]
    if not pairs:
        nan = float("nan")
        return {"speedup": nan, "speedup_q25": nan, "speedup_q75": nan, "speedup_iqr": nan, "speedup_rounds": 0}
    q25, med, q75 = _quartiles(pairs)
    return {
        "speedup": med,
        "speedup_q25": q25,
        "speedup_q75": q75,
        "speedup_iqr": q75 - q25,
        "speedup_rounds": len(pairs),
    }


def summarise(res: SpeedResult, samples: Sequence[float]) -> SpeedResult:
    """Fill median, quartiles, IQR and the derived rates from latency samples (ms)."""
    if not samples:
        res.error = res.error or "no timed iterations"
        return res
    res.latency_ms = [float(s) for s in samples]
    q25, med, q75 = _quartiles(samples)
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
class _Timed:
    """One timed call of a prepared configuration (a batch) and its samples."""

    step: Callable[[], Tensor]
    batch: int
    frames: int  # output frames scored per call
    samples: list[float] = field(default_factory=list)


@dataclass
class _Prepared:
    cfg: ModelConfig
    res: SpeedResult
    device: torch.device
    latency: _Timed | None = None  # at ``speed.batch``
    throughput: _Timed | None = None  # at the throughput batch (None: not timed apart, or failed)

    @property
    def key(self) -> str:
        """The entry's name in the rounds and to the clock: the model id, ``+inductor`` when compiled."""
        return self.res.model_id + ("" if self.res.compile == "none" else f"+{self.res.compile}")


def _new_result(cfg: ModelConfig, device: torch.device, threads: int, speed: SpeedConfig, flip: bool) -> SpeedResult:
    return SpeedResult(
        label=cfg.label(),
        model_id=cfg.model_id(),
        config=cfg.to_dict(),
        device=str(device),
        threads=threads,
        precision=speed.precision,
        precision_note=precision_note(speed.precision, device),
        warmup=speed.warmup,
        iters=speed.iters,
        flip=flip,
        batch_requested=speed.batch,
        batch=speed.batch,
        timer="cuda_events" if device.type == "cuda" else "perf_counter",
    )


def _flops_per_clip(cfg: ModelConfig) -> tuple[float, float]:
    try:
        from bench.measure.flops.core import count_canonical

        gflops, paper, _ = count_canonical(cfg)
    except Exception:  # timing does not depend on being able to count
        return float("nan"), float("nan")
    return gflops, paper


def throughput_batch(cfg: ModelConfig, speed: SpeedConfig) -> int:
    """The batch ``cfg``'s throughput is timed at: ``speed.throughput_batch``, else its preset's
    ``PresetSpec.throughput_batch`` (a fixed default per preset, so a row never depends on machine load),
    and never below the latency batch."""
    if speed.throughput_batch is not None:
        return speed.throughput_batch
    from backbones import get_backbone_spec

    return max(speed.batch, get_backbone_spec(cfg.backbone).preset(cfg.preset).throughput_batch)


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _fit_batch(
    model: nn.Module, device: torch.device, batch: int, flip: bool, precision: str, oom: list[int]
) -> _Timed | None:
    """A timed call at ``batch``, halved on out-of-memory (each batch that ran out is appended to ``oom``);
    one untimed call at the timed shape is made here. None when even batch 1 runs out of memory."""
    b = batch
    while True:
        x = None
        try:
            with torch.random.fork_rng(devices=_cuda_ids(device)):
                torch.manual_seed(1)
                x = torch.randn(input_shape(model, b), device=device)
            step = with_precision(make_step(model, x, flip), precision, device)
            with torch.inference_mode():
                out = step()
            _sync(device)
        except Exception as exc:
            if not is_oom(exc):
                raise
            del x
            _release(device)
            oom.append(b)
            if b == 1:
                return None
            b = max(1, b // 2)
            continue
        return _Timed(step, b, int(out.shape[1]) * b)


def _cuda_ids(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


@dataclass(frozen=True)
class _Calls:
    """How an entry is called: its latency batch, test-time flip, precision, throughput batch, and the
    canonical (all-matmul, paper-convention) GFLOPs of one clip."""

    batch: int
    flip: bool
    precision: str
    tput_batch: int
    gflops: tuple[float, float]


def _prepare(cfg: ModelConfig, device: torch.device, res: SpeedResult, calls: _Calls) -> _Prepared:
    """Build the model (seeded weights), then fit the latency batch and the throughput batch (each
    halved on OOM) with one untimed call each. ``calls.tput_batch`` equal to the latency batch times nothing
    more: the latency samples are the throughput's. A compiled entry (``res.compile``) is compiled
    here, once per batch (static shapes); a failed compile or an output off eager's is its error."""
    prep = _Prepared(cfg, res, device)
    try:
        with torch.random.fork_rng(devices=_cuda_ids(device)):
            torch.manual_seed(0)
            model = cfg.build(device).eval()
    except Exception as exc:
        if not is_oom(exc):
            raise
        _release(device)
        res.error, res.batch = f"out of memory building the model: {str(exc).splitlines()[0][:160]}", 0
        return prep
    if res.compile != "none":
        return _prepare_compiled(prep, model, calls)
    return _fit_batches(prep, model, calls)


def _fit_batches(prep: _Prepared, model: nn.Module, calls: _Calls) -> _Prepared:
    """Fit ``model``'s latency batch, then its throughput batch (:func:`_fit_batch` each), into ``prep``."""
    res, device, flip, precision = prep.res, prep.device, calls.flip, calls.precision
    prep.latency = _fit_batch(model, device, calls.batch, flip, precision, res.oom_batches)
    res.oom_retries = len(res.oom_batches)
    if prep.latency is None:
        res.error = "out of memory at batch 1"
        res.batch = 0
        return prep
    res.batch = prep.latency.batch
    res.frames_per_call = prep.latency.frames
    passes = 2 if flip else 1
    res.gflops_per_call = calls.gflops[0] * res.batch * passes
    res.gflops_paper_per_call = calls.gflops[1] * res.batch * passes
    if calls.tput_batch > res.batch and not res.oom_batches:  # after an OOM at the latency batch, no larger fits
        prep.throughput = _fit_batch(model, device, calls.tput_batch, flip, precision, res.oom_batches)
    res.throughput_batch = prep.throughput.batch if prep.throughput is not None else res.batch
    return prep


#: how far a compiled model's output may be from the eager model's (relative L2, same input and precision)
COMPILE_BOUND = {"fp32": 1e-4, "bf16": 3e-2, "fp16": 1e-2}


def _prepare_compiled(prep: _Prepared, eager: nn.Module, calls: _Calls) -> _Prepared:
    """Compile ``eager`` (inductor, the whole graph or nothing: a graph break is a failure), fit its batches
    (each first call compiles: its wall time is ``compile_s``), and check its output against eager's."""
    res, device, precision = prep.res, prep.device, calls.precision
    t0 = time.perf_counter()
    try:
        # an OptimizedModule (an nn.Module) for a module argument; torch types it as a callable
        compiled = cast(nn.Module, torch.compile(eager, backend=res.compile, fullgraph=True, dynamic=False))
        with _compiling():
            _fit_batches(prep, compiled, calls)
            res.compile_s = time.perf_counter() - t0
            if prep.latency is not None:
                res.compiled_rel_err = _relative_error(eager, compiled, device, prep.latency.batch, precision)
    except Exception as exc:  # a graph break, a backend error: the entry's error, not the run's
        prep.latency = prep.throughput = None
        res.error = f"compile ({res.compile}) failed: {type(exc).__name__}: {one_line(exc)}"[:400]
        return prep
    bound = COMPILE_BOUND[precision]
    if res.error is None and not res.compiled_rel_err <= bound:  # NaN fails too
        prep.latency = prep.throughput = None
        res.error = f"compiled output differs from eager by {res.compiled_rel_err:.2e} (relative L2; bound {bound:g})"
    return prep


#: compiled graphs one code object (``PoseBackbone.forward``, shared by every backbone) may hold in a process:
#: dynamo's default (8) counts each configuration and each batch, so a speed group of a few configurations
#: at two batches, or a benchmark over the four backbones, would hit it at its ninth entry
RECOMPILE_LIMIT = 1024


@contextlib.contextmanager
def _compiling() -> Iterator[None]:
    """Where an entry is compiled: inductor with ``freezing`` (the weights are constants, as in a deployed
    model: folded and pre-packed for the CPU's GEMM kernels), no limit on the graphs of one code object (each
    configuration is its own, with its own guards), and inductor's deprecation notices hidden (not the user's
    to act on)."""
    import torch._dynamo
    import torch._inductor.config

    dynamo = torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT)
    with warnings.catch_warnings(), dynamo, torch._inductor.config.patch(freezing=True):
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\._inductor")
        yield


def _relative_error(eager: nn.Module, compiled: nn.Module, device: torch.device, batch: int, precision: str) -> float:
    with torch.random.fork_rng(devices=_cuda_ids(device)):
        torch.manual_seed(1)
        x = torch.randn(input_shape(eager, batch), device=device)
    with torch.inference_mode():
        y_eager = with_precision(lambda: eager(x), precision, device)().float()
        y_compiled = with_precision(lambda: compiled(x), precision, device)().float()
    return float((y_compiled - y_eager).norm() / y_eager.norm().clamp_min(1e-12))


def _run_timed(prep: _Prepared, which: str, n: int, timed: bool, clock: Clock = default_clock) -> None:
    """``n`` calls of a prepared configuration at its ``which`` ('latency' / 'throughput') batch; an OOM
    mid-run becomes its error (latency) or ends its throughput timing."""
    t: _Timed | None = getattr(prep, which)
    if t is None:
        return
    key = prep.key if which == "latency" else f"{prep.key}:throughput"
    try:
        with torch.inference_mode():
            for _ in range(n):
                ms = clock(key, t.step, prep.device)
                if timed:
                    t.samples.append(ms)
    except Exception as exc:
        if not is_oom(exc):
            raise
        prep.res.oom_batches.append(t.batch)
        setattr(prep, which, None)
        if which == "latency":
            prep.res.error = f"out of memory while timing at batch {t.batch}"
            prep.throughput = None


def _finish(prep: _Prepared, env: dict[str, Any]) -> SpeedResult:
    res = prep.res
    if res.error is None and prep.latency is not None:
        res = summarise(res, prep.latency.samples)
        tput = prep.throughput or prep.latency
        if tput.samples:
            res.throughput_batch = tput.batch
            res.throughput_ms = [float(s) for s in tput.samples]
            q25, med, q75 = _quartiles(tput.samples)
            res.throughput_ms_median = med
            res.throughput_ms_iqr = q75 - q25
            res.throughput_fps = tput.frames / (med / 1e3) if med > 0 else float("nan")
            res.throughput_clips_per_s = tput.batch / (med / 1e3) if med > 0 else float("nan")
    res.env = env
    res.device_name, res.driver, res.cuda = str(env.get("device_name", "")), env.get("driver"), env.get("cuda")
    if prep.device.type == "cuda":
        res.peak_memory_mb = torch.cuda.max_memory_allocated(prep.device) / 2**20
    return res


def _quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """(q25, median, q75) of the samples (inclusive method; one sample: all three equal)."""
    med = statistics.median(samples)
    if len(samples) < 2:
        return med, med, med
    q = statistics.quantiles(samples, n=4, method="inclusive")
    return q[0], med, q[2]


def _timed_keys(preps: Sequence[_Prepared]) -> dict[str, _Timed]:
    keys: dict[str, _Timed] = {}
    for p in preps:
        if p.latency is not None:
            keys[p.key] = p.latency
        if p.throughput is not None:
            keys[f"{p.key}:throughput"] = p.throughput
    return keys


def _resume(preps: Sequence[_Prepared], speed: SpeedConfig, flip: bool, rounds: Rounds | None) -> int:
    """Put the rounds ``rounds`` kept for this exact timing into the samples; the number of them."""
    if rounds is None:
        return 0
    keys = _timed_keys(preps)
    header = {
        "configurations": [p.key for p in preps],
        "precisions": [p.res.precision for p in preps],
        "batches": {k: t.batch for k, t in keys.items()},
        "speed": speed.model_dump(mode="json"),
        "flip": flip,
        "threads": preps[0].res.threads if preps else None,
        "host": {k: environment(preps[0].device if preps else "cpu").get(k) for k in _HOST_KEYS},
    }
    kept = list(itertools.takewhile(lambda r: set(r) == set(keys), rounds.load(header)[: speed.iters]))
    for r in kept:
        for k, t in keys.items():
            t.samples.append(float(r[k]))
    return len(kept)


_HOST_KEYS = ("device_name", "cpu_model", "cpu_count", "torch", "cuda", "driver", "cpu_capability")


def _last_round(preps: Sequence[_Prepared], n: int) -> dict[str, float]:
    """The samples of the round that just ended (keys still timed after it)."""
    return {k: t.samples[-1] for k, t in _timed_keys(preps).items() if len(t.samples) == n}


# ---- public API ----------------------------------------------------------------------------------
def measure_speed(
    cfg: ModelConfig, speed: SpeedConfig | None = None, *, flip: bool = False, clock: Clock | None = None
) -> SpeedResult:
    """Time ``cfg`` alone under ``speed`` (default: :class:`~bench.config.SpeedConfig`'s protocol)."""
    return compare_speed([cfg], speed, flip=flip, clock=clock)[0]


def compare_speed(
    cfgs: Sequence[ModelConfig], speed: SpeedConfig | None = None, *, flip: bool = False, clock: Clock | None = None
) -> list[SpeedResult]:
    """Time several configurations interleaved round-robin in one process (ratios are comparable).

    See :func:`time_round_robin` for the order of the calls."""
    return time_round_robin(cfgs, speed or SpeedConfig(), flip=flip, clock=clock)


def time_round_robin(
    cfgs: Sequence[ModelConfig],
    speed: SpeedConfig,
    *,
    flip: bool = False,
    clock: Clock | None = None,
    precisions: Sequence[str] | None = None,
    rounds: Rounds | None = None,
    compiles: Sequence[str] | None = None,
) -> list[SpeedResult]:
    """The one timing loop: build every model once, warm all up, then ``speed.iters`` rounds.

    Each warm-up round calls every configuration once in the given order; each timed round ``r``
    calls every configuration once, starting at the ``r % n``-th (cfg0, cfg1, cfg2 | cfg1, cfg2,
    cfg0 | ...), so no model always follows the same one and sample ``r`` of every configuration
    comes from the same round. ``clock`` times a call (default :func:`default_clock`).
    ``precisions`` (one per configuration) overrides ``speed.precision`` entry by entry, so the
    same model can be timed in fp32 and bf16 in the same rounds; ``compiles`` (one per configuration,
    default eager) likewise names the entries timed compiled (:func:`_prepare_compiled`). ``rounds`` keeps each finished
    round as it ends and hands back the ones a killed timing of the same header had finished: they
    count as this timing's first rounds (the warm-up is run again; round ``r`` keeps its rotation).
    """
    dev = check_device(speed)
    if precisions is None:
        precisions = [speed.precision] * len(cfgs)
    if len(precisions) != len(cfgs):
        raise ValueError(f"{len(precisions)} precisions for {len(cfgs)} configurations")
    compiles = list(compiles) if compiles is not None else ["none"] * len(cfgs)
    if len(compiles) != len(cfgs):
        raise ValueError(f"{len(compiles)} compile modes for {len(cfgs)} configurations")
    entry_speeds = [speed if p == speed.precision else speed.replace(precision=p) for p in precisions]
    clock = clock or default_clock
    counted: dict[str, tuple[float, float]] = {}
    for c in cfgs:  # counted on meta before the clock starts, once per configuration
        if c.model_id() not in counted:
            counted[c.model_id()] = _flops_per_clip(c)
    flops = [counted[c.model_id()] for c in cfgs]
    tput = [throughput_batch(c, speed) for c in cfgs]
    with num_threads(speed.threads) as used_threads, cudnn_autotune(dev):
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        preps = []
        for cfg, fl, sp, tb, mode in zip(cfgs, flops, entry_speeds, tput, compiles):
            res = _new_result(cfg, dev, used_threads, sp, flip)
            res.compile = mode
            preps.append(_prepare(cfg, dev, res, _Calls(sp.batch, flip, sp.precision, tb, fl)))
        done = _resume(preps, speed, flip, rounds)
        for _ in range(speed.warmup):
            for which in ("latency", "throughput"):
                for p in preps:
                    _run_timed(p, which, 1, timed=False, clock=clock)
        for r in range(done, speed.iters):
            k = r % len(preps)
            for which in ("latency", "throughput"):  # both batches in the same round
                for p in preps[k:] + preps[:k]:
                    _run_timed(p, which, 1, timed=True, clock=clock)
            if rounds is not None:
                rounds.append(_last_round(preps, r + 1))
        env = environment(dev)
        return [_finish(p, {**env, "precision": p.res.precision}) for p in preps]


def measure_speed_group(
    baseline: ModelConfig,
    variants: Sequence[ModelConfig],
    speed: SpeedConfig,
    *,
    flip: bool = False,
    clock: Clock | None = None,
    rounds: Rounds | None = None,
) -> dict[str, dict[str, Any]]:
    """Time ``baseline`` and ``variants`` round-robin in one process; one row per configuration.

    Every model is built once (a configuration listed twice, or a variant equal to the baseline,
    is timed once). Returns ``{cfg.model_id(): row}`` in the order baseline, variants. A row is
    :meth:`SpeedResult.to_dict` (latency median / IQR, FPS, device, device name, driver, CUDA,
    precision, threads, environment) plus ``speedup`` against the baseline from the same rounds
    (:func:`paired_speedup`: the median of per-round ratios, with ``speedup_q25`` /
    ``speedup_q75`` / ``speedup_iqr``) and ``speedup_of_medians`` (ratio of the medians). The
    baseline's own row has speedup 1 and ``is_baseline`` True. With ``speed.compile`` = (none, inductor)
    each configuration is also timed compiled, in the same rounds, and its row gains the compiled columns
    (:func:`_compiled_columns`).
    """
    unique: dict[str, ModelConfig] = {}
    for cfg in (baseline, *variants):
        unique.setdefault(cfg.model_id(), cfg)
    cfgs, modes = list(unique.values()), list(speed.compile)
    entries = [(cfg, mode) for mode in modes for cfg in cfgs]  # eager first, then each compiled form
    results = time_round_robin(
        [c for c, _ in entries], speed, flip=flip, clock=clock, rounds=rounds, compiles=[m for _, m in entries]
    )
    eager, compiled = results[: len(cfgs)], results[len(cfgs) :]
    base = eager[0]
    rows: dict[str, dict[str, Any]] = {}
    for i, res in enumerate(eager):
        row = res.to_dict()
        row["is_baseline"] = res is base
        row["baseline_model_id"] = base.model_id
        row.update(_paired_columns(base, res))
        if compiled:
            row.update(_compiled_columns(res, compiled[i], compiled[0]))
        rows[res.model_id] = row
    return rows


def _paired_columns(base: SpeedResult, res: SpeedResult) -> dict[str, float]:
    """``res`` against ``base`` from the same rounds: ``speedup`` (and its spread), ``speedup_of_medians``,
    and ``throughput_speedup`` (and its spread) when both were timed at the same throughput batch."""
    ok = res.ok and base.ok
    cols: dict[str, float] = paired_speedup(base.latency_ms, res.latency_ms) if ok else paired_speedup([], [])
    cols["speedup_of_medians"] = base.latency_ms_median / res.latency_ms_median if ok else float("nan")
    same_batch = ok and res.throughput_batch == base.throughput_batch
    tput = paired_speedup(base.throughput_ms, res.throughput_ms) if same_batch else paired_speedup([], [])
    cols.update({f"throughput_{k}": v for k, v in tput.items()})
    return cols


def _compiled_columns(eager: SpeedResult, compiled: SpeedResult, compiled_base: SpeedResult) -> dict[str, Any]:
    """The compiled form of an eager row, timed in the same rounds: its latency and FPS, its speedup over
    the compiled baseline, ``compiled_over_eager`` (median per-round compiled / eager latency: below 1 is
    faster), the compile time and the output check. A failed compile is ``compile_error``; the eager
    figures stand."""
    paired = _paired_columns(compiled_base, compiled)
    nan = float("nan")
    ok = compiled.ok and eager.ok
    return {
        "compile": f"none+{compiled.compile}",
        "compile_error": compiled.error or "",
        "compile_s": compiled.compile_s,
        "compiled_rel_err": compiled.compiled_rel_err,
        "compiled_latency_ms": compiled.latency_ms_median,
        "compiled_latency_iqr_ms": compiled.latency_ms_iqr,
        "compiled_fps": compiled.throughput_fps,
        "compiled_speedup": paired["speedup"],
        "compiled_speedup_iqr": paired["speedup_iqr"],
        "compiled_throughput_speedup": paired["throughput_speedup"],
        "compiled_over_eager": paired_speedup(compiled.latency_ms, eager.latency_ms)["speedup"] if ok else nan,
    }


__all__ = [
    "Clock",
    "Rounds",
    "SpeedResult",
    "check_device",
    "compare_speed",
    "default_clock",
    "is_oom",
    "measure_speed",
    "measure_speed_group",
    "num_threads",
    "paired_speedup",
    "summarise",
    "time_call",
    "time_round_robin",
    "with_precision",
]
