"""Backbone registry: decorator registration, wildcard listing and a factory (timm style).

A backbone entry is a builder function ``fn(preset: str, **overrides) -> PoseBackbone`` plus a
typed :class:`BackboneSpec` that describes the published configuration. Registration is explicit:
``backbones/__init__.py`` imports every model module once, so the registry is complete as soon as
``import backbones`` returns.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from torch import nn

Pipeline = Literal["seq2seq", "seq2frame"]
#: (PoseOutput, targets (B, T, J, 3)) -> scalar loss; see backbones.objectives
Objective = Callable[..., Any]
#: Presets every backbone must declare: the published configuration and the CPU-scale one that the
#: default grid, the tests and the toy-scale recipes use.
REQUIRED_PRESETS = ("paper", "tiny")


class RegistryError(ValueError):
    """A user asked for a name, preset or option the registry does not know (one-line message)."""


@dataclass(frozen=True)
class PaperResult:
    """A published figure, with the convention it was reported in.

    ``gflops_paper`` is HoT's convention: 2 x MACs of Linear/Conv layers only, per clip, batch 1.
    """

    mpjpe_mm: float | None = None
    pmpjpe_mm: float | None = None
    gflops_paper: float | None = None
    gflops_all_matmul: float | None = None
    flops_official: int | None = None  # FlopCounterMode on the official class, exact (backbones.md §5.1)
    params: int | None = None
    source: str = ""
    keypoints_2d: str = "cpn_ft_h36m_dbb"


@dataclass(frozen=True)
class TrainRecipe:
    """How a preset trains when it departs from the paper's recipe (the ``tiny`` CPU-scale presets).

    ``notes`` says what changes and why; the fields are read by ``bench.training`` as defaults that a
    user's explicit options override.
    """

    lr: float | None = None
    finetune_lr: float | None = None  # LR when a strategy is fine-tuned into a trained baseline (None: ``lr``)
    warmup_steps: int = 0  # linear learning-rate warm-up from 0
    finetune_warmup_steps: int | None = (
        None  # warm-up when fine-tuning into a trained baseline (None: ``warmup_steps``)
    )
    batch_size: int | None = None  # clips per step (None: the suite's default, 16)
    loss_weights: Mapping[str, float] = field(default_factory=dict)  # objective term -> weight override
    notes: str = ""


#: the tiny recipe of the seq2frame nets whose one token per frame holds every joint (MHFormer, StridedTransformer)
FRAME_TOKEN_RECIPE = TrainRecipe(
    lr=3e-3,
    finetune_lr=1e-3,
    batch_size=16,
    notes=(
        "the suite's CPU recipe: AdamW lr 3e-3, batch 16, no warm-up, the paper objective unchanged (one token "
        "per frame holds every joint: no per-joint plateau). Batch 4 is faster per step but slower per second "
        "to leave the mean pose (measured, issue 9). Measured on the quick grid's data (every 5th test take, "
        "stride 9, no flip; trivial 157.4 mm; Intel Xeon, 1 thread, seed 0), MPJPE after 300 / 450 / 600 / 900 "
        "steps: MHFormer-tiny 92.1 / 72.4 / 78.3 / 68.7, StridedTransformer-tiny (300 / 450 / 600 / 1000) 99.4 "
        "/ 75.6 / 73.3 / 69.8. Fine-tuning a pruner (cluster at T/3, depth 1) into those baselines for 30 "
        "steps: MHFormer 89.0 mm at LR 3e-3, 54.9 at 1e-3 (60 steps: 55.7); Strided 78.0 at 3e-3 (60 steps: "
        "70.6), 64.5 at 1e-3, hence finetune_lr 1e-3."
    ),
)


@dataclass(frozen=True)
class HourglassVariant:
    """A published hourglass configuration of a backbone (HoT / TPC), with its published figures."""

    name: str  # e.g. "HoT-MixSTE(81,3)"
    preset: str
    pruner: str
    recoverer: str
    tokens: int | tuple[int, ...]
    depths: int | tuple[int, ...]
    paper: PaperResult | None = None
    official_layout: str | None = None  # TSV name in shared/docs/official_state_dicts


@dataclass(frozen=True)
class PresetSpec:
    """One named configuration of a backbone: the constructor keyword arguments and its shape facts."""

    kwargs: Mapping[str, Any]
    frames: int
    depth: int
    dim: int
    heads: int
    in_channels: int = 2
    official_layout: str | None = None  # TSV name in shared/docs/official_state_dicts
    paper: PaperResult | None = None
    recipe: TrainRecipe | None = None  # departures from the paper's training recipe at this preset
    # Clips per call at which throughput is timed: a fixed default, never chosen at run time (a search would
    # depend on machine load). The rule: the smallest batch b whose output frames/s is within 10 % of the rate
    # at 4 b, for the plain backbone and its most pruned form (cluster, T/9 after block 1), whichever is larger
    # (`python -m bench.benchmarks.throughput_batch`). Tiny presets, Intel Xeon, 1 thread, fp32: MixSTE 8,
    # MotionBERT 8 (per-joint tokens: 459 per clip), MHFormer 32, StridedTransformer 256 (27 frame tokens of
    # width 32: per-call dispatch dominates up to a few hundred clips). 1 where a clip is already
    # compute-bound (the paper presets: T = 81-351 frames).
    throughput_batch: int = 1


@dataclass(frozen=True)
class BackboneSpec:
    """Typed metadata of a registered backbone (the pose analogue of timm's ``PretrainedCfg``)."""

    name: str
    pipeline: Pipeline
    paper_title: str
    official_code: str
    presets: Mapping[str, PresetSpec]
    joints: int = 17
    checkpoint_key: str | None = None  # dict key holding weights in the official files
    notes: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    objective: Objective | None = None  # the paper's training objective (PoseOutput, targets) -> loss
    objective_text: str = ""  # the objective in words, e.g. "MPJPE + 0.5 N-MPJPE + 20 velocity"
    variants: tuple[HourglassVariant, ...] = ()  # published HoT / TPC configurations
    hot_preset: str = "paper"  # the preset HoT's comparisons use (MotionBERT: 'lite')

    def preset(self, name: str) -> PresetSpec:
        if name not in self.presets:
            known = ", ".join(self.presets)
            raise RegistryError(f"backbone '{self.name}' has no preset '{name}' (known: {known})")
        return self.presets[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (used by ``run_bench.py list --format json``)."""
        d = asdict(replace(self, objective=None))
        d["objective"] = self.objective_text or (self.objective.__name__ if self.objective else None)
        d["presets"] = {k: asdict(v) for k, v in self.presets.items()}
        for p in d["presets"].values():
            p["kwargs"] = dict(p["kwargs"])
        return d


BuilderFn = Callable[..., nn.Module]


@dataclass(frozen=True)
class _Entry:
    spec: BackboneSpec
    builder: BuilderFn


class Registry:
    """A name -> (spec, builder) table with fnmatch listing. One instance per axis."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def add(self, name: str, entry: Any) -> None:
        if name in self._entries:
            warnings.warn(f"{self.kind} '{name}' registered twice; the last wins", stacklevel=3)
        self._entries[name] = entry

    def get(self, name: str) -> Any:
        if name not in self._entries:
            raise RegistryError(f"unknown {self.kind} '{name}' (known: {', '.join(sorted(self._entries))})")
        return self._entries[name]

    def names(self, pattern: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
        pats = [pattern] if isinstance(pattern, str) else list(pattern)
        excl = [exclude] if isinstance(exclude, str) else list(exclude)
        out = [n for n in self._entries if any(fnmatch.fnmatchcase(n, p) for p in pats)]
        out = [n for n in out if not any(fnmatch.fnmatchcase(n, p) for p in excl)]
        return sorted(out)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


_BACKBONES = Registry("backbone")


def register_backbone(spec: BackboneSpec) -> Callable[[BuilderFn], BuilderFn]:
    """Decorator: ``@register_backbone(SPEC)`` over a builder ``fn(preset, **overrides)``."""

    missing = [p for p in REQUIRED_PRESETS if p not in spec.presets]
    if missing:
        raise RegistryError(f"backbone '{spec.name}' must declare the preset(s) {', '.join(missing)}")
    unknown = sorted({v.preset for v in spec.variants} - set(spec.presets)) + (
        [] if spec.hot_preset in spec.presets else [spec.hot_preset]
    )
    if unknown:
        raise RegistryError(f"backbone '{spec.name}' names unknown preset(s) {', '.join(unknown)}")

    def deco(fn: BuilderFn) -> BuilderFn:
        _BACKBONES.add(spec.name, _Entry(spec=spec, builder=fn))
        return fn

    return deco


def list_backbones(pattern: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
    """Registered backbone names matching an fnmatch ``pattern`` (``'mix*'``), minus ``exclude``."""
    return _BACKBONES.names(pattern, exclude)


def get_backbone_spec(name: str) -> BackboneSpec:
    """The typed metadata of backbone ``name``; RegistryError names the known ones if unknown."""
    entry: _Entry = _BACKBONES.get(name)
    return entry.spec


def resolve_kwargs(spec: BackboneSpec, preset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Preset kwargs updated by ``overrides`` whose value is not None; unknown keys are rejected."""
    base = dict(spec.preset(preset).kwargs)
    clean = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(clean) - set(base))
    if unknown:
        raise RegistryError(
            f"backbone '{spec.name}' does not take {', '.join(unknown)} (options: {', '.join(sorted(base))})"
        )
    for key, value in clean.items():
        _check_override(spec, key, value)
    base.update(clean)
    for heads_key, width_key in _HEADS_DIVIDE:
        heads, width = base.get(heads_key), base.get(width_key)
        if isinstance(heads, int) and isinstance(width, int) and width % heads:
            raise RegistryError(
                f"backbone '{spec.name}': {width_key}={width} is not divisible by {heads_key}={heads} "
                "(each attention head takes width / heads channels)"
            )
    return base


#: (heads, width) constructor keys: every attention layer splits the width evenly across the heads.
_HEADS_DIVIDE = (("num_heads", "embed_dim_ratio"), ("num_heads", "dim_feat"), ("heads", "channel"))
#: an override may scale a preset's integer up to this factor over the largest preset's value; beyond it
#: the model would take minutes to build or exhaust memory (a depth of 10**6 hangs), so it is refused.
MAX_OVERRIDE_SCALE = 8


def _check_override(spec: BackboneSpec, key: str, value: Any) -> None:
    """An override must have its preset value's type and a sane range (refused before any build)."""
    values = [p.kwargs[key] for p in spec.presets.values() if key in p.kwargs]
    ref = values[0]
    where = f"backbone '{spec.name}' option {key}"
    if isinstance(ref, bool):
        if not isinstance(value, bool):
            raise RegistryError(f"{where} must be true or false (got {value!r})")
    elif isinstance(ref, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RegistryError(f"{where} must be an integer (got {value!r})")
        top = MAX_OVERRIDE_SCALE * max(int(v) for v in values)
        if not 1 <= value <= top:
            raise RegistryError(f"{where} must be between 1 and {top} (got {value})")
    elif isinstance(ref, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RegistryError(f"{where} must be a finite number (got {value!r})")
        low_open = "ratio" in key or "eps" in key
        if (
            value < 0
            or (low_open and value == 0)
            or ("drop" in key and value >= 1)
            or value > 64 * (max(values) or 1.0)
        ):
            raise RegistryError(f"{where} is out of range (got {value!r})")
    elif isinstance(ref, (tuple, list)):
        if not isinstance(value, (tuple, list)) or len(value) != len(ref):
            raise RegistryError(f"{where} must be a list of {len(ref)} values (got {value!r})")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
            raise RegistryError(f"{where} must hold positive integers (got {value!r})")


def create_backbone(name: str, preset: str = "paper", **overrides: Any) -> nn.Module:
    """Build backbone ``name`` at ``preset``; ``None`` overrides are dropped, unknown ones rejected."""
    entry: _Entry = _BACKBONES.get(name)
    kwargs = resolve_kwargs(entry.spec, preset, overrides)
    return entry.builder(**kwargs)
