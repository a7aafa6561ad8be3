"""The objective a configuration trains with: its backbone's paper objective, or plain MPJPE.

The objectives themselves are facts about each backbone (``BackboneSpec.objective``, composed in
:mod:`backbones.objectives`); this module only chooses between them, and refuses a backbone that
declares none instead of falling back silently.
"""

from __future__ import annotations

from typing import Literal

from backbones import get_backbone_spec
from backbones.objectives import LossFn, mpjpe_objective


class ObjectiveError(ValueError):
    """The requested objective does not exist for this backbone (one-line message)."""


def objective_for(backbone: str, loss: Literal["paper", "mpjpe"] = "paper") -> LossFn:
    """``loss='paper'``: the objective the backbone's registry entry declares; ``'mpjpe'``: plain MPJPE."""
    if loss == "mpjpe":
        return mpjpe_objective
    if loss != "paper":
        raise ObjectiveError(f"unknown loss '{loss}' (known: paper, mpjpe)")
    objective = get_backbone_spec(backbone).objective
    if objective is None:
        raise ObjectiveError(f"backbone '{backbone}' declares no paper objective; train it with --loss mpjpe")
    return objective


__all__ = ["ObjectiveError", "objective_for"]
