"""Training objectives as each backbone's paper trains it (shared/docs/papers.md §8).

An objective is a fact about a backbone, like its presets: each backbone file names its own in its
:class:`~backbones.BackboneSpec` (``objective=``), composed from the terms below.

Every loss takes the model's :class:`backbones.PoseOutput` rows and the clip targets gathered at
the same frame indices, so the pruned (TPC) forms are supervised on their kept frames exactly as
HoT does. Poses are metres; losses are in metres too (MPJPE-like).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from backbones.base import PoseOutput

# MixSTE / HoT per-joint weights of the weighted MPJPE (Human3.6M 17-joint order).
MIXSTE_JOINT_WEIGHTS = (1.0, 1.0, 2.5, 2.5, 1.0, 2.5, 2.5, 1.0, 1.0, 1.0, 1.5, 1.5, 4.0, 4.0, 1.5, 4.0, 4.0)


def gather_frames(x: Tensor, index: Tensor) -> Tensor:
    """Rows of ``x`` (B, T, J, C) at frame ``index`` (B, F) -> (B, F, J, C)."""
    b = index.shape[0]
    return x[torch.arange(b, device=x.device)[:, None], index]


def mpjpe_loss(pred: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """(Weighted) mean per-joint position error, (B, F, J, 3) -> scalar."""
    err = torch.linalg.vector_norm(pred - target, dim=-1)  # (B, F, J)
    if weights is not None:
        err = err * weights
    return err.mean()


def velocity_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean per-joint velocity error (first differences along frames)."""
    if pred.shape[1] < 2:
        return pred.new_zeros(())
    return torch.linalg.vector_norm(pred.diff(dim=1) - target.diff(dim=1), dim=-1).mean()


def temporal_consistency_loss(pred: Tensor, weights: Tensor) -> Tensor:
    """MixSTE's TCLoss: joint-weighted squared frame-to-frame change of the prediction."""
    if pred.shape[1] < 2:
        return pred.new_zeros(())
    return (pred.diff(dim=1).square().sum(dim=-1) * weights).mean()


def n_mpjpe_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Scale-normalised MPJPE (MotionBERT's ``loss_3d_scale``)."""
    norm_pred = pred.square().sum(dim=-1).mean(dim=-1, keepdim=True)  # (B, F, 1)
    norm_tgt = (target * pred).sum(dim=-1).mean(dim=-1, keepdim=True)
    scale = (norm_tgt / norm_pred.clamp_min(1e-12)).unsqueeze(-1)
    return mpjpe_loss(scale * pred, target)


LossFn = Callable[[PoseOutput, Tensor], Tensor]
#: Term weights an objective accepts as overrides (``weights={"velocity": 1.0}``); unnamed terms keep
#: the paper's weight. A preset's :class:`~backbones.TrainRecipe` may name some (``loss_weights``).
Weights = Mapping[str, float]


def _weights(paper: dict[str, float], override: Weights | None) -> dict[str, float]:
    unknown = sorted(set(override or {}) - set(paper))
    if unknown:
        raise ValueError(f"unknown loss term(s) {', '.join(unknown)} (terms: {', '.join(paper)})")
    return {**paper, **dict(override or {})}


MIXSTE_WEIGHTS = {"mpjpe": 1.0, "temporal": 0.5, "velocity": 2.0}
MOTIONBERT_WEIGHTS = {"mpjpe": 1.0, "n_mpjpe": 0.5, "velocity": 20.0}


def mixste_loss(out: PoseOutput, target: Tensor, weights: Weights | None = None) -> Tensor:
    """Weighted MPJPE + 0.5 x temporal consistency + 2.0 x velocity (MixSTE, HoT w. MixSTE)."""
    k = _weights(MIXSTE_WEIGHTS, weights)
    w = torch.tensor(MIXSTE_JOINT_WEIGHTS, device=target.device, dtype=target.dtype)
    y = gather_frames(target, out.index)
    return (
        k["mpjpe"] * mpjpe_loss(out.pose, y, w)
        + k["temporal"] * temporal_consistency_loss(out.pose, w)
        + k["velocity"] * velocity_loss(out.pose, y)
    )


def motionbert_loss(out: PoseOutput, target: Tensor, weights: Weights | None = None) -> Tensor:
    """MPJPE + 0.5 x scale-normalised MPJPE + 20 x velocity (MotionBERT's recipe)."""
    k = _weights(MOTIONBERT_WEIGHTS, weights)
    y = gather_frames(target, out.index)
    return (
        k["mpjpe"] * mpjpe_loss(out.pose, y)
        + k["n_mpjpe"] * n_mpjpe_loss(out.pose, y)
        + k["velocity"] * velocity_loss(out.pose, y)
    )


def mpjpe_objective(out: PoseOutput, target: Tensor) -> Tensor:
    """Plain MPJPE on every output row (``--loss mpjpe``; the kept frames for TPC forms)."""
    return mpjpe_loss(out.pose, gather_frames(target, out.index))


def mhformer_loss(out: PoseOutput, target: Tensor) -> Tensor:
    """MPJPE on every output frame (MHFormer; TPC: the kept frames)."""
    return mpjpe_objective(out, target)


def strided_loss(out: PoseOutput, target: Tensor) -> Tensor:
    """MPJPE of the centre frame + MPJPE of the full-sequence VTE output (StridedTransformer)."""
    loss = mpjpe_loss(out.pose, gather_frames(target, out.index))
    if out.aux is not None and out.aux_index is not None:
        loss = loss + mpjpe_loss(out.aux, gather_frames(target, out.aux_index))
    return loss


__all__ = [
    "MIXSTE_JOINT_WEIGHTS",
    "MIXSTE_WEIGHTS",
    "MOTIONBERT_WEIGHTS",
    "LossFn",
    "Weights",
    "gather_frames",
    "mhformer_loss",
    "mixste_loss",
    "motionbert_loss",
    "mpjpe_loss",
    "mpjpe_objective",
    "n_mpjpe_loss",
    "strided_loss",
    "temporal_consistency_loss",
    "velocity_loss",
]
