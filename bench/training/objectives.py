"""The objective a configuration trains with: its backbone's paper objective, or plain MPJPE.

The objectives themselves are facts about each backbone (``BackboneSpec.objective``, composed in
:mod:`backbones.objectives`); this module only chooses between them, and refuses a backbone that
declares none instead of falling back silently.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Literal

from backbones import get_backbone_spec
from backbones.objectives import LossFn, mpjpe_objective
from bench.errors import UserError


class ObjectiveError(UserError, ValueError):
    """The requested objective does not exist for this backbone (one-line message)."""


def objective_for(
    backbone: str, loss: Literal["paper", "mpjpe"] = "paper", weights: Mapping[str, float] | None = None
) -> LossFn:
    """``loss='paper'``: the objective the backbone's registry entry declares; ``'mpjpe'``: plain MPJPE.

    ``weights`` overrides some of the paper objective's term weights (a preset's recipe)."""
    if loss == "mpjpe":
        return mpjpe_objective
    if loss != "paper":
        raise ObjectiveError(f"unknown loss '{loss}' (known: paper, mpjpe)")
    objective = get_backbone_spec(backbone).objective
    if objective is None:
        raise ObjectiveError(f"backbone '{backbone}' declares no paper objective; train it with --loss mpjpe")
    if weights:
        if "weights" not in inspect.signature(objective).parameters:
            raise ObjectiveError(f"backbone '{backbone}' objective takes no term weights")
        return functools.partial(objective, weights=dict(weights))
    return objective


__all__ = ["ObjectiveError", "objective_for"]
