"""Train the shared baseline of a grid's pruned cells (HoT's protocol: prune a *trained* backbone).

A baseline is described by a plain mapping (see :mod:`bench.grid.expand`): ``model`` (a
:class:`~bench.config.ModelConfig` dict with no hourglass), ``train`` (TrainConfig options, a step
budget), ``data`` (a :class:`~bench.config.DataConfig` dict) and ``seed``. Training it is a pure
function of that description; ``work_dir`` holds ``train_state.pt`` so a killed run resumes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from bench.config import ConfigError, DataConfig, ModelConfig, TrainConfig, validate
from bench.training.loop import cached_data, fit

#: written into ``work_dir`` when a baseline finishes: steps, seconds, the step it resumed from
INFO_FILE = "baseline.json"


def baseline_configs(desc: Mapping[str, Any]) -> tuple[ModelConfig, TrainConfig, DataConfig]:
    """The typed configurations a baseline description names."""
    model = ModelConfig.from_dict(desc["model"])
    if model.pruned:
        raise ConfigError(f"baseline {model.label()} has a pruner; a baseline is the plain backbone")
    train = validate(TrainConfig, {**dict(desc.get("train") or {}), "seed": int(desc.get("seed", 0))}, "baseline")
    if train.mode != "scratch" or not train.steps:
        raise ConfigError("baseline: a baseline trains from scratch for a number of steps (train.steps)")
    return model, train, validate(DataConfig, desc.get("data"), "data")


def train_baseline(desc: Mapping[str, Any], work_dir: str | os.PathLike[str] | None = None) -> dict[str, Tensor]:
    """Train the baseline ``desc`` describes and return its state dict (CPU tensors).

    When ``work_dir`` holds a partial run (``train_state.pt``) training resumes from it."""
    model_cfg, tc, data_cfg = baseline_configs(desc)
    result = fit(model_cfg, tc, cached_data(data_cfg), work_dir, progress=False)
    if work_dir is not None:
        info = {
            "key": desc.get("key"),
            "steps": result.steps,
            "seconds": round(result.seconds, 2),
            "resumed_from": result.resumed_from,
            "final_loss": result.final_loss,
            "notes": result.notes,
        }
        path = Path(work_dir) / INFO_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, path)
    return {k: v.detach().cpu().clone() for k, v in result.model.state_dict().items()}


__all__ = ["INFO_FILE", "baseline_configs", "train_baseline"]
