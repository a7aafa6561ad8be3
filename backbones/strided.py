"""StridedTransformer-Pose3D (Li et al., IEEE TMM 2022), seq2frame.

"Exploiting Temporal Contexts with Strided Transformer for 3D Human Pose Estimation". Faithful to
``model/strided_transformer.py::Model`` of the official code and its blocks
(shared/docs/backbones.md §2.8):

* ``encoder``: Conv1d(2J -> C, k=1) / BatchNorm1d / ReLU / Dropout 0.25 over the T frames.
* VTE (Vanilla Transformer Encoder, ``Transformer``): ``pos_embedding`` (1, T, C), then ``layers``
  pre-norm layers, each ``x + drop(MHA(LN(x)))`` and ``x + drop(FFN(LN(x)))``; FFN = Linear, ReLU
  (the official attribute is called ``gelu``), dropout, Linear.
* STE (Strided Transformer Encoder, ``Transformer_reduce``): layer i first adds
  ``pos_embedding_{i+1}[:, :L]`` (sliced to the current length L), then the same attention, and an
  FFN of Conv1d(k=1) -> ReLU -> Conv1d(k=3, stride s_i, pad 1) whose residual is MaxPool1d(kernel 1,
  stride s_i). The frame axis shrinks L -> floor((L - 1) / s_i) + 1 (351 -> 117 -> 13 -> 1). Both
  convolutions are ``TokenConv1d``: the same Conv1d layers, computed on the (B, F, C) tokens as GEMMs.
* ``fcn_1`` on the VTE output gives x_VTE (B, T, 17, 3), the full-sequence supervision; ``fcn`` on
  the STE output gives the centre-frame pose (B, 1, 17, 3).

Quirks kept for weight compatibility: the custom LayerNorm ``a_2 * (x - mean) / (std + 1e-6) + b_2``
(unbiased std, eps outside the root; keys ``a_2`` / ``b_2``); the two ``Encoder.norm`` LayerNorms
that are in the state dict but never applied; attention projections ``linears.0..3`` (q, k, v, out)
with dropout 0.1 on the attention probabilities. State-dict keys and order equal ``strided_351.tsv``.

The post-hoc ``Refine`` module (``model/block/refine.py``) is a separate ``nn.Module`` with its own
checkpoint (keys ``post_refine.*``, ``strided_351_refine.tsv``); it is not part of the backbone.

Uniform view: tokens (B, F, 1, C); blocks 0..L-1 are the VTE layers, blocks L.. the STE layers (each
subsamples the frame axis by its stride). Pruning goes inside or right after the VTE (k = 1..L).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod
from typing import cast

import torch
from torch import Tensor, nn

from backbones._registry import (
    FRAME_TOKEN_RECIPE,
    BackboneSpec,
    HourglassVariant,
    PaperResult,
    PresetSpec,
    register_backbone,
)
from backbones.base import PoseBackbone
from backbones.layers import RecordsAttention, TokenConv1d
from backbones.objectives import strided_loss


class LayerNorm(nn.Module):
    """The official custom LayerNorm: ``a_2 * (x - mean) / (std + eps) + b_2`` with the *unbiased* std."""

    def __init__(self, features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.a_2 = nn.Parameter(torch.ones(features))
        self.b_2 = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # Two passes (mean, then the norm of the centred rows) instead of Tensor.std / std_mean, whose Welford
        # reduction is ~8x slower on CPU; same value up to float rounding, and 0 (not nan) for constant rows.
        xc = x - x.mean(dim=-1, keepdim=True)  # (..., C)
        std = torch.linalg.vector_norm(xc, dim=-1, keepdim=True) * (x.shape[-1] - 1) ** -0.5  # unbiased std
        return torch.addcmul(self.b_2, xc / (std + self.eps), self.a_2)


class MultiHeadedAttention(RecordsAttention):
    """Self-attention with separate q/k/v/out projections ``linears.0..3`` and dropout on the probabilities."""

    def __init__(self, heads: int, dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.linears = nn.ModuleList([nn.Linear(dim, dim) for _ in range(4)])
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape  # (B, F, C)
        h = self.heads
        q, k, v = (lin(x).view(b, n, h, c // h).transpose(1, 2) for lin in self.linears[:3])  # (B, H, F, d)
        out = self.attend(q, k, v, self.dropout).transpose(1, 2).reshape(b, n, c)  # (B, F, C)
        out_proj: Tensor = self.linears[3](out)
        return out_proj


class PositionwiseFeedForward(nn.Module):
    """VTE FFN: w_1 Linear -> ReLU (named ``gelu`` in the official code) -> dropout -> w_2 Linear."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.w_1 = nn.Linear(dim, hidden)
        self.w_2 = nn.Linear(hidden, dim)
        self.gelu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.w_2(self.dropout(self.gelu(self.w_1(x))))  # (B, F, C)
        return out


class StridedFeedForward(nn.Module):
    """STE FFN: w_1 Conv1d(k=1) -> ReLU -> dropout -> w_2 Conv1d(k=3, stride s, pad 1): F -> floor((F-1)/s)+1."""

    def __init__(self, dim: int, hidden: int, stride: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.w_1 = TokenConv1d(dim, hidden, kernel_size=1)  # the official Conv1d layers, on the token layout
        self.w_2 = TokenConv1d(hidden, dim, kernel_size=3, stride=stride, padding=1)
        self.gelu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.dropout(self.gelu(self.w_1(x)))  # (B, F, hidden)
        out: Tensor = self.w_2(y)  # (B, F', C)
        return out


class SublayerConnection(nn.Module):
    """Pre-norm residual ``res(x) + drop(sublayer(LN(x)))``; ``res`` = MaxPool1d(1, stride) when stride > 1."""

    def __init__(self, dim: int, dropout: float, stride: int = 1) -> None:
        super().__init__()
        self.norm = LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.stride = stride

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        # MaxPool1d(kernel 1, stride s) over frames is exactly the slice x[:, ::s] (a max over one element);
        # the slice keeps the (B, F', C) layout, so the sum below stays contiguous.
        res = x if self.stride == 1 else x[:, :: self.stride]  # (B, F', C)
        return res + self.dropout(sublayer(self.norm(x)))


class EncoderLayer(nn.Module):
    """One VTE (``stride`` None) or STE layer: attention sublayer, then FFN sublayer."""

    def __init__(self, dim: int, hidden: int, heads: int, dropout: float, stride: int | None = None) -> None:
        super().__init__()
        self.self_attn = MultiHeadedAttention(heads, dim, dropout)
        self.feed_forward: nn.Module
        if stride is None:
            self.feed_forward = PositionwiseFeedForward(dim, hidden, dropout)
        else:
            self.feed_forward = StridedFeedForward(dim, hidden, stride, dropout)
        # The official STE builds both sublayers with the pooling; only the FFN one applies it.
        self.sublayer = nn.ModuleList(
            [SublayerConnection(dim, dropout), SublayerConnection(dim, dropout, 1 if stride is None else stride)]
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.sublayer[0](x, self.self_attn)  # (B, F, C)
        out: Tensor = self.sublayer[1](x, self.feed_forward)  # (B, F', C)
        return out


class Encoder(nn.Module):
    """``layers`` plus a final ``norm`` that is in the official state dict but never applied."""

    def __init__(self, layers: Sequence[EncoderLayer], dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = LayerNorm(dim)  # unused (official quirk)


class StridedEncoder(Encoder):
    """STE encoder: one ``pos_embedding_{i+1}`` (1, T, C) per layer, sliced to the current length.

    The official code always creates exactly three (and adds none after layer 3); for the official
    three-stride configurations both agree.
    """

    def __init__(self, layers: Sequence[EncoderLayer], dim: int, length: int) -> None:
        super().__init__(layers, dim)
        for i in range(len(layers)):
            self.register_parameter(f"pos_embedding_{i + 1}", nn.Parameter(torch.randn(1, length, dim)))

    def step(self, i: int, x: Tensor) -> Tensor:
        """STE layer i on x (B, L, C): add ``pos_embedding_{i+1}[:, :L]``, then the strided layer."""
        pos: Tensor = getattr(self, f"pos_embedding_{i + 1}")
        out: Tensor = self.layers[i](x + pos[:, : x.shape[1]])
        return out


class VanillaTransformer(nn.Module):
    """VTE (official ``vanilla_transformer_encoder.Transformer``): ``pos_embedding`` and ``model``."""

    def __init__(self, n_layers: int, dim: int, hidden: int, heads: int, dropout: float, length: int) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.randn(1, length, dim))
        self.model = Encoder([EncoderLayer(dim, hidden, heads, dropout) for _ in range(n_layers)], dim)


class StridedTransformerReduce(nn.Module):
    """STE (official ``strided_transformer_encoder.Transformer``): only ``model``."""

    def __init__(self, strides: Sequence[int], dim: int, hidden: int, heads: int, dropout: float, length: int) -> None:
        super().__init__()
        layers = [EncoderLayer(dim, hidden, heads, dropout, stride=s) for s in strides]
        self.model = StridedEncoder(layers, dim, length)


def _head(dim: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm1d(dim, momentum=0.1), nn.Conv1d(dim, out, kernel_size=1))


class StridedTransformer(PoseBackbone):
    """StridedTransformer ``Model``: (B, T, 17, 2) -> (B, 1, 17, 3) (+ x_VTE (B, T, 17, 3)). Tokens (B, F, 1, C)."""

    pipeline = "seq2frame"
    unused_parameters = (
        "Transformer.model.norm.a_2",
        "Transformer.model.norm.b_2",
        "Transformer_reduce.model.norm.a_2",
        "Transformer_reduce.model.norm.b_2",
    )

    def __init__(
        self,
        frames: int = 351,
        layers: int = 3,
        channel: int = 256,
        d_hid: int = 512,
        stride_num: Sequence[int] = (3, 9, 13),
        heads: int = 8,
        num_joints: int = 17,
        in_channels: int = 2,
        dropout: float = 0.1,
    ) -> None:
        strides = tuple(int(s) for s in stride_num)
        if not strides or min(strides) < 1 or prod(strides) != frames:
            raise ValueError(f"stride_num {list(strides)} must be positive with product equal to frames={frames}")
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        super().__init__(frames=frames, in_channels=in_channels, token_dim=channel, num_joints=num_joints)
        self.stride_num = strides
        self.vte_layers = layers
        self.aux_block = layers - 1  # x_VTE = fcn_1 on the VTE output
        self.encoder = nn.Sequential(
            nn.Conv1d(in_channels * num_joints, channel, kernel_size=1),
            nn.BatchNorm1d(channel, momentum=0.1),
            nn.ReLU(inplace=True),
            nn.Dropout(0.25),
        )
        self.Transformer = VanillaTransformer(layers, channel, d_hid, heads, dropout, frames)
        self.Transformer_reduce = StridedTransformerReduce(strides, channel, d_hid, heads, dropout, frames)
        self.fcn = _head(channel, 3 * num_joints)
        self.fcn_1 = _head(channel, 3 * num_joints)

    # ---- the view ------------------------------------------------------------------------------
    @property
    def num_blocks(self) -> int:
        return self.vte_layers + len(self.stride_num)

    @property
    def prune_depths(self) -> range:
        """Pruning only inside or right after the VTE (before the STE): k = 1..layers."""
        return range(1, self.vte_layers + 1)

    def embed(self, x: Tensor) -> Tensor:
        b, t, j, c = x.shape  # (B, T, J, 2)
        y = self.encoder(x.reshape(b, t, j * c).transpose(1, 2))  # (B, C, T)
        # pos first: the sum takes its (B, T, C) layout, so every later block sees contiguous tokens
        # (the transposed layout would make each LayerNorm reduce over strided memory and each Linear fall back
        # to mm + add)
        y = self.Transformer.pos_embedding + y.transpose(1, 2)  # (B, T, C)
        return y.unsqueeze(2)  # (B, T, 1, C)

    def block(self, i: int, tokens: Tensor) -> Tensor:
        x = tokens.squeeze(2)  # (B, F, C)
        if i < self.vte_layers:
            x = self.Transformer.model.layers[i](x)
        else:
            reduce: StridedEncoder = self.Transformer_reduce.model
            x = reduce.step(i - self.vte_layers, x)  # (B, floor((F-1)/s)+1, C)
        return x.unsqueeze(2)

    def block_frame_index(self, i: int, frame_index: Tensor) -> Tensor:
        if i < self.vte_layers:
            return frame_index
        return frame_index[:, :: self.stride_num[i - self.vte_layers]]

    def _regress_with(self, head: nn.Module, tokens: Tensor) -> Tensor:
        b, f, _, c = tokens.shape
        y = head(tokens.reshape(b, f, c).transpose(1, 2))  # (B, 3J, F)
        return y.reshape(b, self.num_joints, 3, f).permute(0, 3, 1, 2)  # (B, F, J, 3)

    def regress(self, tokens: Tensor) -> Tensor:
        return self._regress_with(self.fcn, tokens)

    def aux_head(self, tokens: Tensor) -> Tensor:
        """x_VTE: ``fcn_1`` on the VTE output, (B, F, 1, C) -> (B, F, J, 3)."""
        return self._regress_with(self.fcn_1, tokens)

    def output_index(self, frame_index: Tensor) -> Tensor:
        """The STE's single output row is the prediction of the centre frame (T - 1) // 2."""
        if frame_index.shape[1] == 1:
            return torch.full_like(frame_index, self.centre)
        return frame_index

    def temporal_attention(self, i: int) -> RecordsAttention:
        if i < self.vte_layers:
            layer = self.Transformer.model.layers[i]
        else:
            layer = self.Transformer_reduce.model.layers[i - self.vte_layers]
        return cast(EncoderLayer, layer).self_attn


class Refine(nn.Module):
    """The official post-hoc refine module (``model/block/refine.py::refine``), a separate checkpoint.

    ``forward(x, x_1)``: x (B, 1, J, 3) the predicted pose, x_1 (B, 1, J, 3) the 2D input of the
    centre frame lifted with x's depth (uvd -> xyz). A per-joint score s in (0, 1)^2 blends the x, y
    part: ``out[..., :2] = s * x[..., :2] + (1 - s) * x_1[..., :2]``; z is x's. The official code
    creates the ``ones`` on CUDA; here everything stays on the input's device. Its in-place dropout
    is not in-place here (same values; the in-place one breaks ReLU's backward in current torch).
    """

    def __init__(
        self, num_joints: int = 17, in_channels: int = 2, out_channels: int = 3, hidden: int = 1024, out_seqlen: int = 1
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.post_refine = nn.Sequential(
            nn.Linear(out_channels * 2 * out_seqlen * num_joints, hidden),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(hidden, in_channels * num_joints),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor, x_1: Tensor) -> Tensor:
        n, t, v, _ = x.shape  # (B, 1, J, 3)
        c = self.in_channels
        score = self.post_refine(torch.cat((x, x_1), dim=-1).reshape(n, -1)).view(n, t, v, c)  # (B, 1, J, 2)
        blended = score * x[..., :c] + (torch.ones_like(score) - score) * x_1[..., :c]
        return torch.cat((blended, x[..., c:]), dim=-1)  # (B, 1, J, 3)


_PAPER = dict(
    frames=351,
    layers=3,
    channel=256,
    d_hid=512,
    stride_num=(3, 9, 13),
    heads=8,
    num_joints=17,
    in_channels=2,
    dropout=0.1,
)

STRIDED_SPEC = BackboneSpec(
    name="strided",
    pipeline="seq2frame",
    paper_title="Exploiting Temporal Contexts with Strided Transformer for 3D Human Pose Estimation (IEEE TMM 2022)",
    official_code="Vegetebird/StridedTransformer-Pose3D model/strided_transformer.py::Model",
    checkpoint_key=None,
    presets={
        "paper": PresetSpec(
            kwargs=_PAPER,
            frames=351,
            depth=6,
            dim=256,
            heads=8,
            official_layout="strided_351",
            paper=PaperResult(
                mpjpe_mm=43.7,
                gflops_paper=1.60,
                gflops_all_matmul=2.12,
                params=4_346_214,
                source="HoT figure [fig]; FLOPs [computed] (shared/docs/papers.md §2)",
            ),
        ),
        "small": PresetSpec(
            kwargs={**_PAPER, "frames": 81, "channel": 128, "d_hid": 256, "stride_num": (3, 3, 9)},
            frames=81,
            depth=6,
            dim=128,
            heads=8,
        ),
        "tiny": PresetSpec(
            kwargs={**_PAPER, "frames": 27, "channel": 32, "d_hid": 64, "stride_num": (3, 3, 3), "heads": 4},
            frames=27,
            depth=6,
            dim=32,
            heads=4,
            throughput_batch=256,  # the saturation rule (PresetSpec.throughput_batch)
            recipe=FRAME_TOKEN_RECIPE,
        ),
    },
    objective=strided_loss,
    objective_text="centre-frame MPJPE + full-sequence MPJPE of the VTE output (StridedTransformer)",
    variants=(
        HourglassVariant(
            name="TPC-Strided(117,1)",
            preset="paper",
            pruner="cluster",
            recoverer="none",
            tokens=117,
            depths=1,
            paper=None,  # not published: HoT's TPC applied as in TPC w. MHFormer (T/3 at the first block)
        ),
    ),
    notes=(
        "Custom LayerNorm (unbiased std, eps outside the root); Transformer.model.norm and "
        "Transformer_reduce.model.norm are in the state dict but unused; the refine module "
        "(backbones.strided.Refine, keys post_refine.*) is separate, with its own checkpoint "
        "(strided_351_refine)."
    ),
)


@register_backbone(STRIDED_SPEC)
def strided(**kwargs: object) -> StridedTransformer:
    """StridedTransformer (seq2frame, 351 frames at the paper preset)."""
    return StridedTransformer(**kwargs)  # type: ignore[arg-type]
