"""The one configuration model of HourglassBench: model, data, training and speed, typed and validated.

A grid cell is a pure, cheap-to-describe configuration: a :class:`ModelConfig` (backbone, preset,
the hourglass axes), a :class:`DataConfig`, a :class:`TrainConfig` and a :class:`SpeedConfig`.
Every entry point (the command line, grid files and ``--set`` overrides, the benchmarks, the Python
API) builds these through the same pydantic models, so a value is checked once, by its type and
range, with one message format (:class:`ConfigError`: ``section.key: what is wrong``). A cell's id
is :func:`stable_id` of its description, the one hash function of the suite.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from backbones import PoseBackbone, RegistryError, create_backbone, get_backbone_spec
from bench.errors import UserError
from bench.rows import MAX_SEED

Number = int | float
Mode = Literal["scratch", "finetune", "none"]
CompileMode = Literal["none", "inductor"]  # eager, or torch.compile(backend="inductor", fullgraph=True)
Precision = Literal["fp32", "bf16", "fp16"]  # fp32, or torch.autocast to bf16 / fp16 (bench.measure.precision)


class ConfigError(UserError, ValueError):
    """A configuration value that is wrong in itself (type, range, unknown key): one line."""


def stable_id(obj: Mapping[str, Any]) -> str:
    """Stable short hash of a JSON-able description (the resume key of results rows)."""
    blob = json.dumps(dict(obj), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def cell_id(cell: Mapping[str, Any]) -> str:
    """The id of a grid cell: :func:`stable_id` of everything in it but its id."""
    return stable_id({k: v for k, v in cell.items() if k != "cell_id"})


def precision_error(precision: str, device: str) -> str | None:
    """Why ``precision`` cannot run on ``device`` (one phrase), or None when it can."""
    if precision == "fp16" and not str(device).startswith("cuda"):
        return f"fp16 runs on CUDA only (device is {str(device)!r}); use bf16 or fp32 on the CPU"
    return None


#: bounds of every numeric option (one owner): far above any real run, below what crashes a process or a machine
MAX_STEPS = 10**9
MAX_MINUTES = 10**6
MAX_BATCH = 65_536
MAX_FRAMES = 10**6
MAX_ITERS = 100_000
MAX_THREADS = 1024  # the schema's bound; a run also needs them on its machine (:func:`threads_problem`)


def threads_problem(threads: int | None) -> str | None:
    """Why ``threads`` torch threads cannot run here (more than this machine's CPUs), or None."""
    cpus = os.cpu_count() or 1
    if threads is not None and threads > cpus:
        return f"threads {threads}: this machine has {cpus} CPU(s); give at most {cpus}"
    return None


def _tuple(v: Any) -> tuple[Any, ...]:
    if v is None:
        return ()
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return (v,)


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


M = TypeVar("M", bound=_Config)


def validate(cls: type[M], data: Mapping[str, Any] | None, where: str = "") -> M:
    """Build ``cls`` from a plain mapping; any problem is one :class:`ConfigError` line naming the key."""
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    try:
        return cls.model_validate(dict(data or {}))
    except ValidationError as e:
        raise ConfigError(_first_error(e, where)) from None


def _first_error(e: ValidationError, where: str) -> str:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int))
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    value = err.get("input")
    cross = re.fullmatch(r"([a-z_]+): (.*)", msg) if not loc else None
    if cross:  # a model validator naming the field it refuses ("precision: ..."): that field is the key
        loc, msg = cross.group(1), cross.group(2)
    key = ".".join(p for p in (where, loc) if p)
    if err.get("type") == "extra_forbidden":
        msg = "unknown option"
    text = repr(value)
    text = text if len(text) <= 80 else f"{text[:60]}... ({len(text):,} characters)"
    shown = "" if err.get("type") in ("extra_forbidden", "missing") or cross else f" (got {text})"
    return f"{key}: {msg}{shown}"


class ModelConfig(_Config):
    """A backbone plus an (optional) hourglass: the model half of a grid cell.

    ``recoverer=None`` means HoT's default: 'attention' (TRA) for seq2seq, 'none' for seq2frame.
    ``tokens`` / ``depths`` are one value per pruning stage (HoT: one stage; H2OT: several).
    """

    backbone: str
    preset: str = "paper"
    pruner: str = "none"
    recoverer: str | None = None
    tokens: tuple[Number, ...] = ()
    depths: tuple[int, ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()  # backbone constructor options (frames, depth, ...)
    pruner_options: tuple[tuple[str, Any], ...] = ()  # the pruner's constructor options (cluster: k)
    recoverer_options: tuple[tuple[str, Any], ...] = ()  # the recoverer's (interpolation: mode)

    @model_validator(mode="after")
    def _no_contradiction(self) -> ModelConfig:
        """Tokens, depths or a recoverer without a pruner would be ignored: refused, never silently dropped."""
        if self.pruner == "none":
            if self.tokens or self.depths:
                raise ValueError("tokens/depths need a pruner (pruner 'none' prunes nothing)")
            if self.recoverer not in (None, "none"):
                raise ValueError(f"recoverer '{self.recoverer}' needs a pruner (pruner 'none' prunes nothing)")
        return self

    @classmethod
    def create(
        cls,
        backbone: str,
        preset: str = "paper",
        pruner: str | None = None,
        recoverer: str | None = None,
        tokens: Number | Sequence[Number] | None = None,
        depths: int | Sequence[int] | None = None,
        overrides: Mapping[str, Any] | None = None,
        pruner_options: Mapping[str, Any] | None = None,
        recoverer_options: Mapping[str, Any] | None = None,
    ) -> ModelConfig:
        """Normalised constructor (lists become tuples, None means the default)."""
        return validate(
            cls,
            {
                "backbone": backbone,
                "preset": preset,
                "pruner": pruner or "none",
                "recoverer": recoverer,
                "tokens": _tuple(tokens),
                "depths": _tuple(depths),
                "overrides": tuple(sorted((overrides or {}).items())),
                "pruner_options": tuple(sorted((pruner_options or {}).items())),
                "recoverer_options": tuple(sorted((recoverer_options or {}).items())),
            },
            "model",
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        known = set(cls.model_fields)
        unknown = sorted(set(d) - known)
        if unknown:
            raise RegistryError(f"unknown model option(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        if "backbone" not in d:
            raise RegistryError("a model configuration needs a 'backbone'")
        ov, po, ro = (dict(d.get(k) or {}) for k in ("overrides", "pruner_options", "recoverer_options"))
        return cls.create(
            backbone=str(d["backbone"]),
            preset=str(d.get("preset", "paper")),
            pruner=d.get("pruner"),
            recoverer=d.get("recoverer"),
            tokens=d.get("tokens"),
            depths=d.get("depths"),
            overrides=ov,
            pruner_options=po,
            recoverer_options=ro,
        )

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes``, validated again (``cfg.replace(pruner='none', tokens=())``: its baseline)."""
        return validate(ModelConfig, {**dict(self), **changes}, "model")

    def baseline(self) -> ModelConfig:
        """The same backbone and preset with no hourglass (valid by construction: nothing to check again)."""
        plain = {"pruner": "none", "recoverer": None, "tokens": (), "depths": (), "pruner_options": ()}
        return self.model_copy(update={**plain, "recoverer_options": ()})

    @property
    def pruned(self) -> bool:
        return self.pruner != "none"

    @property
    def pipeline(self) -> str:
        return get_backbone_spec(self.backbone).pipeline

    @property
    def effective_recoverer(self) -> str:
        """The recoverer actually used: HoT's defaults when none was named."""
        if self.recoverer is not None:
            return self.recoverer
        from strategies import default_recoverer

        return default_recoverer(self.pipeline, self.pruned)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "preset": self.preset,
            "pruner": self.pruner,
            "recoverer": self.effective_recoverer,
            "tokens": list(self.tokens),
            "depths": list(self.depths),
            "overrides": dict(self.overrides),
            # only when set, so that the ids of configurations without options do not change
            **{
                k: dict(v)
                for k, v in (("pruner_options", self.pruner_options), ("recoverer_options", self.recoverer_options))
                if v
            },
        }

    def model_id(self) -> str:
        """Stable short hash of the model configuration (:func:`stable_id`; a grid cell's id hashes more)."""
        return stable_id(self.to_dict())

    def label(self) -> str:
        """Human label, e.g. ``mixste/paper cluster(81@3)+attention``."""
        opts = ",".join(f"{k}={v}" for k, v in self.overrides)
        base = f"{self.backbone}/{self.preset}" + (f"[{opts}]" if opts else "")
        if not self.pruned:
            return base
        sched = ",".join(f"{t}@{d}" for t, d in zip(self.tokens, self.depths, strict=False))
        po = "".join(f",{k}={v}" for k, v in self.pruner_options)
        ro = "".join(f"[{k}={v}]" for k, v in self.recoverer_options)
        return f"{base} {self.pruner}({sched}{po})+{self.effective_recoverer}{ro}"

    def build(self, device: str | torch.device | None = None) -> PoseBackbone:
        """Build the model (on ``device``; ``'meta'`` costs no memory or arithmetic)."""
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = create_backbone(self.backbone, self.preset, **dict(self.overrides))
            if not isinstance(model, PoseBackbone):
                raise RegistryError(f"backbone '{self.backbone}' does not implement the PoseBackbone view")
            self.insert_hourglass(model)
        return model

    def insert_hourglass(self, model: PoseBackbone) -> PoseBackbone:
        """Insert this configuration's hourglass into a built backbone (nothing for the baseline)."""
        if self.pruned:
            from strategies import apply_hourglass

            apply_hourglass(
                model,
                pruner=self.pruner,
                recoverer=self.effective_recoverer,
                tokens=list(self.tokens),
                depths=list(self.depths),
                pruner_kwargs=dict(self.pruner_options),
                recoverer_kwargs=dict(self.recoverer_options),
            )
        return model


class DataConfig(_Config):
    """Where the 2D/3D poses come from (:mod:`bench.data.sources`): the embedded synthetic generator, real
    Human3.6M or MPI-INF-3DHP files, or the generator's motion written as 3DHP files."""

    source: Literal["synthetic", "h36m", "3dhp", "synthetic_3dhp"] = "synthetic"
    data_root: str | None = None
    keypoints: str = "gt"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    noise: Literal["none", "detector"] = "detector"
    cache_dir: str | None = None
    frames_per_sequence: int = Field(600, ge=1, le=1_000_000)  # synthetic only: length of every take


def _finite(v: float | None) -> float | None:
    if v is not None and not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


class TrainConfig(_Config):
    """Optimisation budget and recipe. Budget: ``steps`` and/or ``minutes`` (whichever ends first)."""

    mode: Mode = "scratch"
    steps: int | None = Field(None, ge=1, le=MAX_STEPS)
    minutes: float | None = Field(None, gt=0, le=MAX_MINUTES)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    batch_size: int | None = Field(None, ge=1, le=MAX_BATCH)  # clips per step (x T, seq2seq); None: recipe, else 16
    lr: float | None = Field(None, gt=0)  # None: the preset's recipe (TrainRecipe.lr), else DEFAULT_LR
    warmup_steps: int | None = Field(None, ge=0, le=MAX_STEPS)  # linear LR warm-up; None: the preset's recipe, else 0
    weight_decay: float = Field(0.01, ge=0)
    lr_decay: float = Field(0.99, gt=0, le=1)  # per epoch, as every paper here
    train_stride: int | None = Field(None, ge=1, le=MAX_FRAMES)  # clip stride; default T (seq2seq), T // 3 (seq2frame)
    flip_augment: bool = True
    test_flip: bool = True
    eval_stride: int = Field(1, ge=1, le=MAX_FRAMES)
    eval_batch: int = Field(64, ge=1, le=MAX_BATCH)
    eval_every: int = Field(1, ge=1, le=MAX_FRAMES)  # score every k-th test sequence (1 = all); trivial too
    checkpoint_every: int = Field(200, ge=1, le=MAX_STEPS)  # steps
    threads: int | None = Field(None, ge=1, le=MAX_THREADS)  # torch CPU threads while training (None: torch's default)
    eval_precision: Precision = "fp32"  # autocast of the evaluation (the deployed model); training is fp32
    loss: Literal["paper", "mpjpe"] = "paper"  # the backbone paper's objective, or plain MPJPE

    _check_finite = field_validator("minutes", "lr", "weight_decay", "lr_decay")(_finite)

    @field_validator("eval_precision")
    @classmethod
    def _eval_precision(cls, v: str) -> str:
        why = precision_error(v, "cpu")  # training and evaluation run on the CPU
        if why is not None:
            raise ValueError(why)
        return v

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes``, validated again."""
        return validate(TrainConfig, {**dict(self), **changes}, "train")

    def budget_text(self) -> str:
        parts = [f"{self.steps} steps"] if self.steps else []
        if self.minutes:
            parts.append(f"{self.minutes:g} min")
        return " / ".join(parts) or "no budget"


class SpeedConfig(_Config):
    """The timing protocol: warm-up and timed iterations, batches, threads, device, precision.

    Every configuration is timed at two batches in the same rounds: ``batch`` (latency; 1 by default)
    and ``throughput_batch`` (output frames per second where the per-call overhead no longer dominates).

    ``precision`` is the deployed numeric type: ``fp32``, or ``torch.autocast`` to ``bf16`` (CPU
    and CUDA) or ``fp16`` (CUDA only; refused on the CPU).

    ``compile`` is the compiled-model axis: ``[none]`` times the eager model; ``[none, inductor]``
    (or ``inductor``) also times each configuration compiled with inductor (whole graph, static
    shapes, freezing), in the same rounds as its eager self and its baseline (bench.measure.speed:
    compile time apart, output checked).
    The eager model is always timed: it is what the compiled figures are compared with.
    """

    batch: int = Field(1, ge=1, le=MAX_BATCH)  # the latency batch (clips per call)
    # the throughput batch; None: the preset's fixed default (backbones' PresetSpec.throughput_batch)
    throughput_batch: int | None = Field(None, ge=1, le=MAX_BATCH)
    warmup: int = Field(5, ge=0, le=MAX_ITERS)
    iters: int = Field(20, ge=1, le=MAX_ITERS)
    threads: int | None = Field(None, ge=1, le=MAX_THREADS)
    device: str = "cpu"
    precision: Precision = "fp32"
    compile: tuple[CompileMode, ...] = ("none",)

    @field_validator("compile", mode="before")
    @classmethod
    def _compile(cls, v: Any) -> Any:
        if isinstance(v, str):
            return ("none",) if v == "none" else ("none", v)
        if isinstance(v, list | tuple) and (not v or v[0] != "none" or len(set(v)) != len(v)):
            raise ValueError("must be [none] or [none, inductor] (the eager model is always timed, first)")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v != "cpu" and not re.fullmatch(r"cuda(:[0-9]+)?", v):
            raise ValueError("must be cpu or cuda[:N]")
        return v

    @model_validator(mode="after")
    def _precision_on_device(self) -> SpeedConfig:
        why = precision_error(self.precision, self.device)
        if why is not None:
            raise ValueError(f"precision: {why}")
        if self.throughput_batch is not None and self.throughput_batch < self.batch:
            raise ValueError(
                f"throughput_batch: {self.throughput_batch} is below the latency batch {self.batch} "
                "(throughput is timed at the larger batch)"
            )
        return self

    def replace(self, **changes: Any) -> SpeedConfig:
        """A copy with ``changes``, validated again."""
        return validate(SpeedConfig, {**self.model_dump(), **changes}, "speed")


__all__ = [
    "CompileMode",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "Precision",
    "SpeedConfig",
    "TrainConfig",
    "cell_id",
    "precision_error",
    "stable_id",
    "validate",
]
