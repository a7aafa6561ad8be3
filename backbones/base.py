"""The uniform view every backbone exposes: an hourglass-ready sequence of blocks over frame tokens.

A video pose transformer (VPT) is written here as

    tokens = embed(x)                      # (B, T, J, C_in) -> (B, T, N, C): frame axis is dim 1
    for i in range(num_blocks):            # the depth units a Token Pruning Module can sit between
        tokens = block(i, tokens)          # (B, F, N, C) -> (B, F', N, C)
    tokens = finalize(tokens)              # last norm; HoT's Token Recovering Module sits after it
    pose = regress(tokens)                 # regression head: (B, F, N, C) -> (B, F, 17, 3)

N is the per-frame token axis (17 joints for MixSTE/MotionBERT, 3 hypotheses for MHFormer, 1 for
StridedTransformer). A *token schedule* (``model.hourglass``, set by
``strategies.apply_hourglass``) is called between blocks, before the head and after the head; the
backbone only knows the small :class:`TokenSchedule` protocol, nothing of pruners or recoverers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple, Protocol

import torch
from torch import Tensor, nn

from backbones._registry import Pipeline
from backbones.layers import RecordsAttention


class PoseOutput(NamedTuple):
    """Everything one forward pass produced (training and evaluation both read it)."""

    pose: Tensor  # (B, F_out, 17, 3) predicted rows
    index: Tensor  # type: ignore[assignment]  # (B, F_out) original frame of each row (sorted)
    aux: Tensor | None = None  # (B, F_aux, 17, 3) auxiliary full-sequence output (x_VTE)
    aux_index: Tensor | None = None  # (B, F_aux)
    kept: tuple[Tensor, ...] = ()  # per pruning stage: positions (B, n) kept among incoming tokens


@dataclass
class TokenState:
    """The token tensor and its bookkeeping as it flows through the blocks."""

    tokens: Tensor  # (B, F, N, C)
    frame_index: Tensor  # (B, F) original frame index of every token, ascending
    inputs: Tensor  # (B, T, J, C_in) the 2D input of the clip
    frames: int  # T
    reuse: tuple[Tensor, ...] | None = None  # kept positions to reuse (TPC's flipped pass)
    kept: list[Tensor] = field(default_factory=list)


class TokenSchedule(Protocol):
    """What a backbone calls; implemented by ``strategies.hourglass.Hourglass``.

    ``keep_centre``: True for the TPC forms (seq2frame, or seq2seq without recovery), which keep the
    centre frame at every stage and predict it alone.
    """

    keep_centre: bool

    def before_block(self, model: PoseBackbone, i: int, state: TokenState) -> None: ...

    def before_head(self, model: PoseBackbone, state: TokenState) -> None: ...

    def after_head(
        self, model: PoseBackbone, pose: Tensor, index: Tensor, state: TokenState
    ) -> tuple[Tensor, Tensor]: ...


class PoseBackbone(nn.Module):
    """Base class of every registered backbone (see the module docstring for the view)."""

    pipeline: ClassVar[Pipeline] = "seq2seq"
    aux_block: int | None = None  # block after which ``aux_head`` runs (StridedTransformer's VTE)
    # parameters kept only for checkpoint compatibility, never used in forward (official quirks)
    unused_parameters: ClassVar[tuple[str, ...]] = ()

    def __init__(self, frames: int, in_channels: int, token_dim: int, num_joints: int = 17) -> None:
        super().__init__()
        self.frames = frames  # T the positional embeddings are built for
        self.in_channels = in_channels
        self.token_dim = token_dim  # C of the frame tokens a pruner/recoverer sees
        self.num_joints = num_joints
        self.hourglass: TokenSchedule | None = None

    # ---- the view (override in each backbone) -------------------------------------------------
    @property
    def num_blocks(self) -> int:
        raise NotImplementedError

    @property
    def prune_depths(self) -> range:
        """Valid pruning depths k: blocks 0..k-1 run on all T frames, blocks k.. on n tokens."""
        return range(1, self.num_blocks)

    def embed(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def block(self, i: int, tokens: Tensor) -> Tensor:
        raise NotImplementedError

    def block_frame_index(self, i: int, frame_index: Tensor) -> Tensor:
        """Frame index after block ``i`` (identity unless a block subsamples time)."""
        return frame_index

    def finalize(self, tokens: Tensor) -> Tensor:
        return tokens

    def regress(self, tokens: Tensor) -> Tensor:
        """The regression head: tokens (B, F, N, C) -> poses (B, F, 17, 3)."""
        raise NotImplementedError

    def aux_head(self, tokens: Tensor) -> Tensor:
        raise NotImplementedError

    def output_index(self, frame_index: Tensor) -> Tensor:
        """Original frame of each head row (StridedTransformer: the centre frame)."""
        return frame_index

    def frame_features(self, tokens: Tensor) -> Tensor:
        """Per-frame features for token selection, (B, F, N, C) -> (B, F, D): mean over N (HoT)."""
        return tokens.mean(dim=2)

    def temporal_attention(self, i: int) -> RecordsAttention | None:
        """The temporal (over-frames) attention module of block ``i``, for attention pruners."""
        return None

    @property
    def centre(self) -> int:
        """Index of the centre frame, (T - 1) // 2: the frame a seq2frame pipeline predicts."""
        return (self.frames - 1) // 2

    # ---- the forward pass ----------------------------------------------------------------------
    def forward_all(self, x: Tensor, reuse: tuple[Tensor, ...] | None = None) -> PoseOutput:
        """Run the model and return every output row with its frame index."""
        b, t = x.shape[:2]
        if t != self.frames:
            raise ValueError(f"{type(self).__name__} was built for {self.frames} frames, got {t}")
        frame_index = torch.arange(t, device=x.device).expand(b, t)
        state = TokenState(self.embed(x), frame_index, x, t, reuse)
        schedule = self.hourglass
        aux = aux_index = None
        for i in range(self.num_blocks):
            if schedule is not None:
                schedule.before_block(self, i, state)
            state.tokens = self.block(i, state.tokens)
            state.frame_index = self.block_frame_index(i, state.frame_index)
            if i == self.aux_block:
                aux, aux_index = self.aux_head(state.tokens), state.frame_index
        state.tokens = self.finalize(state.tokens)
        if schedule is not None:
            schedule.before_head(self, state)
        pose = self.regress(state.tokens)
        index = self.output_index(state.frame_index)
        if schedule is not None:
            pose, index = schedule.after_head(self, pose, index, state)
        return PoseOutput(pose, index, aux, aux_index, tuple(state.kept))

    @property
    def predicts_all_frames(self) -> bool:
        """True for a seq2seq model that outputs every frame; False for seq2frame and the TPC forms, whose
        hourglass keeps and predicts the centre frame (the hourglass says which: ``keep_centre``)."""
        centre_only = self.hourglass is not None and self.hourglass.keep_centre
        return self.pipeline == "seq2seq" and not centre_only

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, J, C_in) -> (B, T, 17, 3) for seq2seq, (B, 1, 17, 3) for seq2frame / TPC."""
        out = self.forward_all(x)
        if self.predicts_all_frames and out.pose.shape[1] == self.frames:
            return out.pose
        return select_frame(out.pose, out.index, self.centre)


def select_frame(pose: Tensor, index: Tensor, frame: int) -> Tensor:
    """Rows of ``pose`` (B, F, J, 3) whose ``index`` (B, F) equals ``frame`` -> (B, 1, J, 3)."""
    hit = index == frame  # (B, F)
    if torch.compiler.is_compiling():  # no data-dependent branch in a graph: the check runs inside it
        torch._assert_async(hit.any(dim=1).all(), f"frame {frame} was not kept by every sample")
    elif pose.device.type != "meta" and not bool(hit.any(dim=1).all()):
        raise RuntimeError(f"frame {frame} was not kept by every sample")
    row = hit.to(torch.int64).argmax(dim=1)  # (B,)
    return pose[torch.arange(pose.shape[0], device=pose.device), row].unsqueeze(1)
