"""Train the shared baseline of a grid's pruned cells (HoT's protocol: prune a *trained* backbone).

A baseline is the plain backbone (no hourglass) trained from scratch for a number of steps on its data;
training it is a pure function of its configurations, and ``work_dir`` holds ``train_state.pt`` so a
killed run resumes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from torch import Tensor

from bench.config import ConfigError, DataConfig, ModelConfig, TrainConfig
from bench.training.loop import cached_data, fit

#: written into ``work_dir`` when a baseline finishes: steps, seconds, the step it resumed from
INFO_FILE = "baseline.json"


def train_baseline(
    model: ModelConfig,
    train: TrainConfig,
    data: DataConfig,
    work_dir: str | os.PathLike[str] | None = None,
    key: str | None = None,
) -> dict[str, Tensor]:
    """Train the baseline ``model`` (``train``: from scratch, a step budget) and return its state dict (CPU
    tensors). When ``work_dir`` holds a partial run (``train_state.pt``) training resumes from it."""
    if model.pruned:
        raise ConfigError(f"baseline {model.label()} has a pruner; a baseline is the plain backbone")
    if train.mode != "scratch" or not train.steps:
        raise ConfigError("baseline: a baseline trains from scratch for a number of steps (train.steps)")
    result = fit(model, train, cached_data(data), work_dir, progress=False)
    if work_dir is not None:
        info = {
            "key": key,
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


__all__ = ["INFO_FILE", "train_baseline"]
