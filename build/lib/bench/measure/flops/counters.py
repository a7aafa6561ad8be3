"""The three real counters, each run on its own freshly built model, ``meta`` first, CPU as fallback.

* :func:`canonical_pass`: ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs) with the paper
  convention's Linear/Conv hooks and the per-block token recorder in the **same** forward pass.
  Runs under ``torch.inference_mode()``: under ``no_grad`` its ``ModuleTracker`` asserts on an
  expanded Parameter without ``grad_fn`` (HoT's TRA queries; dependencies.md §3.1 pitfall 3).
* :func:`run_fvcore`: ``FlopCountAnalysis`` (jit trace, MACs) with SDPA/cdist/baddbmm handles;
  its import-time DeprecationWarnings are silenced locally.
* :func:`run_ptflops`: ``get_model_complexity_info(backend='aten')`` (MACs). It swallows
  exceptions and returns ``(None, None)``, prints to stdout, and calls ``model.eval()``: the output
  is captured, a ``None`` becomes an ``error``, and the train/eval mode is restored.

Every result is per clip (raw / batch) and in GFLOPs (MAC counters x 2), with the ops the counter
saw but did not count, split into arithmetic (``uncounted_ops``) and zero-cost data movement /
selection (``zero_cost_ops``; see :mod:`bench.measure.flops.convention`).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import time
import traceback
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from bench.measure.flops.convention import COUNTER_NOTES, COUNTER_UNITS, FLOPS_PER_MAC, GIGA, op_name, split_uncounted
from bench.measure.flops.handles import fcm_custom_mapping, fvcore_handles, ptflops_hooks

if TYPE_CHECKING:
    from bench.config import ModelConfig

COUNTERS = ("fcm", "fvcore", "ptflops")


@dataclass
class CounterResult:
    """One counter's figure for one configuration (per clip; ``raw`` is per forward call)."""

    name: str
    unit: str  # the counter's native unit: "FLOPs" or "MACs"
    raw: int | None  # native total for one forward call at ``batch``
    gflops: float | None  # per clip, converted to GFLOPs (1 MAC = 2 FLOPs)
    uncounted_ops: dict[str, int] = field(default_factory=dict)  # arithmetic seen but not counted: op -> calls
    zero_cost_ops: dict[str, int] = field(default_factory=dict)  # data movement/selection (0 by convention)
    by_op: dict[str, float] = field(default_factory=dict)  # GFLOPs per clip by counted op
    seconds: float = 0.0
    device: str = "meta"
    note: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- building the model and its input ------------------------------------------------------------
def input_shape(model: nn.Module, batch: int) -> tuple[int, int, int, int]:
    """(B, T, J, C_in) of the 2D input clip a backbone takes."""
    frames = int(getattr(model, "frames"))  # noqa: B009
    joints = int(getattr(model, "num_joints", 17))
    channels = int(getattr(model, "in_channels", 2))
    return (batch, frames, joints, channels)


def build_probe(cfg: ModelConfig, device: str, batch: int) -> tuple[nn.Module, Tensor]:
    """A fresh eval-mode model and input on ``device`` (seeded; the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cfg.build(device).eval()
        shape = input_shape(model, batch)
        x = torch.empty(shape, device="meta") if device == "meta" else torch.randn(shape, device=device)
    return model, x


# ---- hooks: paper convention and per-block token counts ------------------------------------------
def _linear_macs(module: nn.Linear, out: Tensor) -> int:
    return out.numel() * module.in_features  # out (..., out_features): N·in·out


def _conv_macs(module: nn.modules.conv._ConvNd, out: Tensor) -> int:
    return out.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)


@contextlib.contextmanager
def paper_hooks(model: nn.Module) -> Iterator[dict[str, int]]:
    """Forward hooks on every ``nn.Linear`` / ``nn.Conv*``: yields {module name: MACs} (no bias)."""
    macs: dict[str, int] = defaultdict(int)
    handles = []

    def hook_for(name: str, fn: Callable[[Any, Tensor], int]) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, out: Any) -> None:
            macs[name] += fn(module, out)

        return hook

    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(hook_for(name, _linear_macs)))
        elif isinstance(module, nn.modules.conv._ConvNd):
            handles.append(module.register_forward_hook(hook_for(name, _conv_macs)))
    try:
        yield macs
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def record_tokens(model: nn.Module) -> Iterator[list[int]]:
    """Record the frame-token count F entering each ``model.block(i, tokens (B, F, N, C))`` call."""
    from backbones.base import PoseBackbone

    seen: list[int] = []
    if not isinstance(model, PoseBackbone):
        yield seen
        return
    original = model.block

    def block(i: int, tokens: Tensor) -> Tensor:
        seen.append(int(tokens.shape[1]))
        out: Tensor = original(i, tokens)
        return out

    setattr(model, "block", block)  # noqa: B010  (instance attribute shadows the method)
    try:
        yield seen
    finally:
        delattr(model, "block")


class _TrackingFlopCounter(FlopCounterMode):
    """FlopCounterMode that also records the ops it executed without a FLOP formula."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.uncounted: Counter[str] = Counter()

    def _count_flops(self, func_packet: Any, out: Any, args: Any, kwargs: Any) -> Any:
        if func_packet not in self.flop_registry:
            self.uncounted[op_name(func_packet)] += 1
        return super()._count_flops(func_packet, out, args, kwargs)


@dataclass
class CanonicalPass:
    """Everything the one canonical forward pass measured (per call, at ``batch``)."""

    result: CounterResult
    total_flops: int
    by_module: dict[str, int]  # FCM FLOPs by module name (root-relative, "" = whole model)
    paper_macs: int
    paper_by_module: dict[str, int]  # Linear/Conv MACs by module name, summed into ancestors
    tokens_per_block: list[int]
    frames: int  # T, input frames per clip
    output_frames: int  # rows of the forward output per sample (T, or 1 for seq2frame)
    params: int
    params_by_module: dict[str, int]


def _ancestors(name: str) -> list[str]:
    parts = name.split(".") if name else []
    return [""] + [".".join(parts[: i + 1]) for i in range(len(parts))]


def _module_params(model: nn.Module) -> dict[str, int]:
    return {name: sum(p.numel() for p in m.parameters()) for name, m in model.named_modules()}


def canonical_pass(model: nn.Module, x: Tensor, batch: int) -> CanonicalPass:
    """FlopCounterMode + paper hooks + token recorder over one forward of ``model(x)``."""
    t0 = time.perf_counter()
    counter = _TrackingFlopCounter(display=False, depth=None, custom_mapping=fcm_custom_mapping())
    with torch.inference_mode(), paper_hooks(model) as paper, record_tokens(model) as tokens, counter:
        out = model(x)
    seconds = time.perf_counter() - t0
    pose = out[0] if isinstance(out, tuple) else out
    counts = counter.get_flop_counts()
    total = counter.get_total_flops()
    by_op = {op_name(k): v / batch / GIGA for k, v in counts.get("Global", {}).items()}
    by_module: dict[str, int] = {}
    for name, ops in counts.items():
        if name == "Global":
            continue
        rel = name.split(".", 1)[1] if "." in name else ""
        by_module[rel] = sum(ops.values())
    paper_by_module: dict[str, int] = defaultdict(int)
    for name, macs in paper.items():
        for anc in _ancestors(name):
            paper_by_module[anc] += macs
    uncounted, zero = split_uncounted(dict(counter.uncounted))
    device = x.device.type
    result = CounterResult(
        name="fcm",
        unit=COUNTER_UNITS["fcm"],
        raw=int(total),
        gflops=total / batch / GIGA,
        uncounted_ops=uncounted,
        zero_cost_ops=zero,
        by_op=by_op,
        seconds=seconds,
        device=device,
        note=COUNTER_NOTES["fcm"],
    )
    params = _module_params(model)
    return CanonicalPass(
        result=result,
        total_flops=int(total),
        by_module=by_module,
        paper_macs=int(paper_by_module.get("", 0)),
        paper_by_module=dict(paper_by_module),
        tokens_per_block=list(tokens),
        frames=int(x.shape[1]),
        output_frames=int(pose.shape[1]),
        params=params.get("", 0),
        params_by_module=params,
    )


# ---- fvcore --------------------------------------------------------------------------------------
def run_fvcore(model: nn.Module, x: Tensor, batch: int) -> CounterResult:
    """fvcore ``FlopCountAnalysis`` (MACs, includes LayerNorm/BatchNorm, no bias)."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's import-time torch.jit.script deprecations; tracer warnings
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, (x,))
        for op, handle in fvcore_handles().items():
            analysis.set_op_handle(op, handle)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        with torch.inference_mode():
            total = int(analysis.total())
            by_operator = dict(analysis.by_operator())
            unsupported = {op_name(k): int(v) for k, v in analysis.unsupported_ops().items()}
    uncounted, zero = split_uncounted(unsupported)
    return CounterResult(
        name="fvcore",
        unit=COUNTER_UNITS["fvcore"],
        raw=total,
        gflops=FLOPS_PER_MAC * total / batch / GIGA,
        uncounted_ops=uncounted,
        zero_cost_ops=zero,
        by_op={k: FLOPS_PER_MAC * v / batch / GIGA for k, v in by_operator.items()},
        seconds=time.perf_counter() - t0,
        device=x.device.type,
        note=COUNTER_NOTES["fvcore"],
    )


# ---- ptflops (aten backend) ----------------------------------------------------------------------
_PTFLOPS_ZERO_OP = re.compile(r"aten\.(\w+) operation is treated as a zero-op")


def run_ptflops(model: nn.Module, x: Tensor, batch: int) -> CounterResult:
    """ptflops ``get_model_complexity_info(backend='aten')`` (MACs incl. addmm bias, no norms)."""
    import ptflops

    t0 = time.perf_counter()
    was_training = model.training
    buf = io.StringIO()
    try:
        # no_grad, not inference_mode: under inference mode composite ops (linear, SDPA) reach the
        # dispatch mode undecomposed and ptflops, which has no decomposition step, counts 0.
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), torch.no_grad():
            macs, _params = ptflops.get_model_complexity_info(
                model,
                tuple(x.shape[1:]),
                input_constructor=lambda _res: x,
                backend="aten",
                as_strings=False,
                print_per_layer_stat=False,
                verbose=True,
                ost=buf,
                custom_modules_hooks=ptflops_hooks(),
            )
    finally:
        model.train(was_training)  # ptflops calls model.eval()
    text = buf.getvalue()
    ops = dict(Counter(_PTFLOPS_ZERO_OP.findall(text)))
    uncounted, zero = split_uncounted(ops)
    error = None
    if macs is None:  # ptflops swallowed an exception; its message is in the captured output
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("Warning: aten.")]
        error = "ptflops returned None: " + (" | ".join(lines[-3:]) if lines else "no message")
    return CounterResult(
        name="ptflops",
        unit=COUNTER_UNITS["ptflops"],
        raw=None if macs is None else int(macs),
        gflops=None if macs is None else FLOPS_PER_MAC * int(macs) / batch / GIGA,
        uncounted_ops=uncounted,
        zero_cost_ops=zero,
        seconds=time.perf_counter() - t0,
        device=x.device.type,
        note=COUNTER_NOTES["ptflops"],
        error=error,
    )


RUNNERS: dict[str, Callable[[nn.Module, Tensor, int], CounterResult]] = {
    "fvcore": run_fvcore,
    "ptflops": run_ptflops,
}


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0] if msg else ''}"[:300]


def run_counter(name: str, cfg: ModelConfig, batch: int, devices: tuple[str, ...] = ("meta", "cpu")) -> CounterResult:
    """Run counter ``name`` on a fresh model, trying each device in turn; failures become data."""
    runner = RUNNERS[name]
    notes: list[str] = []
    for device in devices:
        try:
            model, x = build_probe(cfg, device, batch)
            res = runner(model, x, batch)
        except Exception as exc:  # a counter that cannot run is reported, not raised
            notes.append(f"{device} failed: {_short(exc)}")
            continue
        if res.error is not None and device != devices[-1]:
            notes.append(f"{device} failed: {res.error}")
            continue
        if notes:
            res.note = f"{res.note}; fell back to {device} ({'; '.join(notes)})"
        return res
    return CounterResult(
        name=name,
        unit=COUNTER_UNITS[name],
        raw=None,
        gflops=None,
        device="none",
        note=COUNTER_NOTES[name],
        error="; ".join(notes) or traceback.format_exc(limit=1),
    )


def run_canonical(cfg: ModelConfig, batch: int, devices: tuple[str, ...] = ("meta", "cpu")) -> CanonicalPass:
    """The canonical pass on ``meta``, or on CPU (real arithmetic, SDPA handle) if meta fails."""
    notes: list[str] = []
    for device in devices:
        try:
            model, x = build_probe(cfg, device, batch)
            cp = canonical_pass(model, x, batch)
        except Exception as exc:
            if device == devices[-1]:
                raise
            notes.append(f"{device} failed: {_short(exc)}")
            continue
        if notes:
            cp.result.note = f"{cp.result.note}; fell back to {device} ({'; '.join(notes)})"
        return cp
    raise RuntimeError("no device to count on")  # pragma: no cover


__all__ = [
    "COUNTERS",
    "CanonicalPass",
    "CounterResult",
    "build_probe",
    "canonical_pass",
    "input_shape",
    "paper_hooks",
    "record_tokens",
    "run_canonical",
    "run_counter",
    "run_fvcore",
    "run_ptflops",
]
