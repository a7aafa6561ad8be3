"""Base classes of the two strategy axes: Token Pruning Modules (pruners) and Token Recovering Modules.

A **pruner** (HoT's TPM / H2OT's TPC, TPA, TPMo, TPS) keeps ``n`` of the ``F`` frame tokens that reach a
pruning depth. It only *selects*: :meth:`Pruner.select` returns sorted, unique positions among the
incoming tokens, shape (B, n), one row per sample; the hourglass gathers the same frames for all N
tokens of a frame (joints, hypotheses). Selection is not differentiable and runs under ``no_grad``.

A **recoverer** (HoT's TRM: TRA; H2OT's TRI) restores the T frames from the n kept ones, either on the
features before the regression head (``stage = "features"``) or on the 3D poses after it
(``stage = "pose"``). ``stage = "none"`` is HoT's TPC form: no recovery, the kept frames are the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

RecoveryStage = Literal["features", "pose", "none"]


@dataclass
class PruneContext:
    """What a pruner may look at when it selects the frames to keep at one pruning depth.

    Only ``tokens`` is mandatory; the hourglass fills the rest as the pruner declares it needs them.
    """

    tokens: Tensor  # (B, F, N, C) the tokens entering the pruning depth
    frame_index: Tensor | None = None  # (B, F) original frame of every token, ascending
    inputs: Tensor | None = None  # (B, T, J, C_in) the 2D input of the clip
    features: Tensor | None = None  # (B, F, D) per-frame features (joint mean; MHFormer: hypotheses concat)
    attention: Tensor | None = None  # (B, N', F, F) head-mean temporal attention of the preceding block
    required: Tensor | None = None  # (B,) positions that must be kept (the centre frame), or None

    @property
    def batch(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def length(self) -> int:
        """F: number of incoming frame tokens."""
        return int(self.tokens.shape[1])

    def frame_features(self) -> Tensor:
        """(B, F, D): ``features`` if given, else the mean of the tokens over N (HoT's joint pooling)."""
        return self.features if self.features is not None else self.tokens.mean(dim=2)

    def positions(self) -> Tensor:
        """(B, F) original frame index of every incoming token (``arange`` if not given)."""
        if self.frame_index is not None:
            return self.frame_index
        dev = self.tokens.device
        return torch.arange(self.length, device=dev).expand(self.batch, self.length)


class Pruner(nn.Module):
    """Token Pruning Module: keep ``n`` of the F incoming frame tokens (no parameters).

    Subclasses implement :meth:`select`; class flags tell the hourglass what to put into the
    :class:`PruneContext` (features need a pooling pass; attention needs the preceding block to
    record its attention map).
    """

    name: ClassVar[str] = "?"
    needs_features: bool = False  # ctx.features: model.frame_features(tokens)
    needs_attention: bool = False  # ctx.attention: the preceding block's temporal attention map
    needs_inputs: bool = False  # ctx.inputs: the 2D input clip

    def select(self, ctx: PruneContext, n: int) -> Tensor:
        """Sorted, unique positions (B, n), int64, of the tokens to keep; ``ctx.required`` included."""
        raise NotImplementedError

    def forward(self, ctx: PruneContext, n: int) -> Tensor:
        if not 1 <= n <= ctx.length:
            raise ValueError(f"pruner '{self.name}' cannot keep {n} of {ctx.length} tokens")
        with torch.no_grad():
            return self.select(ctx, n)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


class Recoverer(nn.Module):
    """Token Recovering Module: restore the T frames from the n kept ones.

    ``stage`` says where it runs: ``"features"`` (after the last block's norm, before the head:
    :meth:`recover_features`), ``"pose"`` (after the head: :meth:`recover_pose`) or ``"none"``.
    """

    name: ClassVar[str] = "?"
    stage: ClassVar[RecoveryStage] = "none"
    parameter_free: ClassVar[bool] = True  # usable training-free on a pretrained backbone

    def __init__(self, frames: int, dim: int) -> None:
        super().__init__()
        if frames < 1 or dim < 1:
            raise ValueError(f"recoverer needs frames >= 1 and dim >= 1, got frames={frames}, dim={dim}")
        self.frames = frames  # T frames to recover
        self.dim = dim  # C of the frame tokens

    def recover_features(self, tokens: Tensor, frame_index: Tensor) -> Tensor:
        """(B, n, N, C) tokens at frames ``frame_index`` (B, n) -> (B, T, N, C)."""
        raise NotImplementedError(f"recoverer '{self.name}' does not work on features")

    def recover_pose(self, pose: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """(B, n, J, 3) poses at frames ``index`` (B, n) -> ((B, T, J, 3), (B, T) frame index)."""
        raise NotImplementedError(f"recoverer '{self.name}' does not work on poses")

    def extra_repr(self) -> str:
        return f"name={self.name!r}, stage={self.stage!r}, frames={self.frames}, dim={self.dim}"


# ---- shared helpers ------------------------------------------------------------------------------------


def topk_keep(score: Tensor, n: int, required: Tensor | None = None) -> Tensor:
    """The ``n`` highest-scoring positions, sorted ascending: (B, F) -> (B, n) int64.

    With ``required`` (B,) it is HoT's centre forcing (``cluster_dpc_knn_center``): the required
    position's score is set to -inf, the top n - 1 are taken, the required one is appended, and
    the row is sorted. Scores may be of any float dtype; ties are resolved by ``torch.topk``.
    """
    if required is None:
        index = score.topk(n, dim=1).indices
    else:
        score = score.clone()
        rows = torch.arange(score.shape[0], device=score.device)
        score[rows, required] = -torch.inf
        index = torch.cat([score.topk(n - 1, dim=1).indices, required[:, None]], dim=1)
    return index.sort(dim=1).values


def force_required(index: Tensor, required: Tensor | None) -> Tensor:
    """Make every row of a sorted selection (B, n) contain ``required`` (B,), keeping n and order.

    For grid pruners (uniform): where the required position is missing, the selected position
    nearest to it is replaced by it (ties: the earlier one), then the row is re-sorted.
    """
    if required is None:
        return index
    req = required[:, None].to(index.dtype)  # (B, 1)
    present = (index == req).any(dim=1, keepdim=True)  # (B, 1)
    nearest = (index - req).abs().argmin(dim=1, keepdim=True)  # (B, 1), first of equals
    replaced = index.scatter(1, nearest, req)
    return torch.where(present, index, replaced).sort(dim=1).values


def required_positions(frame_index: Tensor, frame: int, check: bool = False) -> Tensor:
    """(B,) position of original frame ``frame`` in each row of ``frame_index`` (B, F).

    With ``check`` (a host sync on accelerators) it fails if a row does not hold the frame.
    """
    hit = frame_index == frame  # (B, F)
    if check and frame_index.device.type != "meta" and not bool(hit.any(dim=1).all()):
        raise RuntimeError(f"frame {frame} is no longer among the tokens of every sample")
    return hit.to(torch.int64).argmax(dim=1)


def check_selection(index: Tensor, n: int, length: int) -> None:
    """Raise ValueError unless ``index`` is (B, n) int64, sorted, unique and inside [0, length)."""
    if index.ndim != 2 or index.shape[1] != n:
        raise ValueError(f"selection must be (B, {n}), got {tuple(index.shape)}")
    if index.dtype != torch.int64:
        raise ValueError(f"selection must be int64, got {index.dtype}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= length):
        raise ValueError(f"selection is outside [0, {length})")
    if n > 1 and not bool((index[:, 1:] > index[:, :-1]).all()):
        raise ValueError("selection must be strictly increasing (sorted and unique)")


__all__ = [
    "PruneContext",
    "Pruner",
    "Recoverer",
    "RecoveryStage",
    "check_selection",
    "force_required",
    "required_positions",
    "topk_keep",
]
