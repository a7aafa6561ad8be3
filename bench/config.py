"""One grid cell's model: a pure, hashable, cheap-to-describe configuration.

``ModelConfig`` names a backbone, its preset, and the hourglass axes (pruner, recoverer, token
schedule, depths). ``build()`` turns it into a model; nothing else is needed to count, time, train or
evaluate it, so a cell can run in any process (or on any Ray worker) from its dict alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from backbones import PoseBackbone, RegistryError, create_backbone, get_backbone_spec

Number = int | float


def _tuple(v: Any) -> tuple[Any, ...]:
    if v is None:
        return ()
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return (v,)


@dataclass(frozen=True)
class ModelConfig:
    """A backbone plus an (optional) hourglass: the model half of a grid cell."""

    backbone: str
    preset: str = "paper"
    pruner: str = "none"
    recoverer: str | None = None  # None: 'attention' (TRA) for seq2seq, 'none' for seq2frame
    tokens: tuple[Number, ...] = ()
    depths: tuple[int, ...] = ()
    overrides: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

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
    ) -> ModelConfig:
        """Normalised constructor (lists become tuples, None means the default)."""
        return cls(
            backbone=backbone,
            preset=preset,
            pruner=pruner or "none",
            recoverer=recoverer,
            tokens=_tuple(tokens),
            depths=tuple(int(d) for d in _tuple(depths)),
            overrides=tuple(sorted((overrides or {}).items())),
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        known = {"backbone", "preset", "pruner", "recoverer", "tokens", "depths", "overrides"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise RegistryError(f"unknown model option(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        if "backbone" not in d:
            raise RegistryError("a model configuration needs a 'backbone'")
        ov = d.get("overrides") or {}
        return cls.create(
            backbone=str(d["backbone"]),
            preset=str(d.get("preset", "paper")),
            pruner=d.get("pruner"),
            recoverer=d.get("recoverer"),
            tokens=d.get("tokens"),
            depths=d.get("depths"),
            overrides=dict(ov),
        )

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
        if not self.pruned or self.pipeline == "seq2frame":
            return "none"
        return "attention"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tokens"] = list(self.tokens)
        d["depths"] = list(self.depths)
        d["overrides"] = dict(self.overrides)
        d["recoverer"] = self.effective_recoverer
        return d

    def cell_id(self) -> str:
        """Stable short hash of the configuration (the resume key of a results row)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def label(self) -> str:
        """Human label, e.g. ``mixste/paper cluster(81@3)+attention``."""
        base = f"{self.backbone}/{self.preset}"
        if not self.pruned:
            return base
        sched = ",".join(f"{t}@{d}" for t, d in zip(self.tokens, self.depths, strict=False))
        return f"{base} {self.pruner}({sched})+{self.effective_recoverer}"

    def build(self, device: str | torch.device | None = None) -> PoseBackbone:
        """Build the model (on ``device``; ``'meta'`` costs no memory or arithmetic)."""
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = create_backbone(self.backbone, self.preset, **dict(self.overrides))
            if not isinstance(model, PoseBackbone):
                raise RegistryError(f"backbone '{self.backbone}' does not implement the PoseBackbone view")
            if self.pruned:
                from strategies import apply_hourglass

                apply_hourglass(
                    model,
                    pruner=self.pruner,
                    recoverer=self.effective_recoverer,
                    tokens=list(self.tokens),
                    depths=list(self.depths),
                )
        return model
