"""MHFormer: Multi-Hypothesis transFormer (Li et al., CVPR 2022), seq2frame.

Faithful to ``Vegetebird/MHFormer model/mhformer.py::Model`` (shared/docs/backbones.md §2.6):

* **MHG** (Multi-Hypothesis Generation): the input (B, F, J, 2) becomes (B, 2J, F): the 34 joint
  coordinates are the tokens, the F frames the channels. Three residual encoders
  ``x_k = x_{k-1} + Transformer_encoder_k(norm_k(x_{k-1}))`` (4 blocks, 9 heads over F channels,
  so F must be divisible by 9) give the three hypotheses.
* **Embedding**: ``embedding_k`` Conv1d(2J -> C, k=1) per hypothesis; for F <= 27 the official code
  uses ``Sequential(Conv1d, BatchNorm1d, ReLU, Dropout 0.25)`` instead (keys ``embedding_k.0...``).
* **SHR** x (layers - 1) and **CHI** x 1 over the F frames, final LayerNorm(3C).
* **Regression**: BatchNorm1d(3C) + Conv1d(3C -> 3J) -> (B, F, J, 3). Training supervises all F rows;
  evaluation scores the centre frame.

State-dict keys and order equal ``mhformer_351.tsv`` / ``mhformer_81.tsv`` (the BatchNorm buffers of
``regression.0`` included). HoT's copy registers the same keys in another order
(``tpc_mhformer_351_n117_k1.tsv``); loading is by key, so its checkpoints load unchanged.

Uniform view: tokens (B, F, 3, C), axis 2 = the three hypotheses. ``embed`` = MHG + embeddings +
``Transformer_hypothesis.pos_embed_{1,2,3}``; block i < layers - 1 is SHR block i, the last block is
the CHI block; ``finalize`` applies LayerNorm(3C) and returns (B, F, 3, C) again (a view of the
normalised (B, F, 3C), which is all ``regress`` needs). TPC-MHFormer prunes before SHR block 1.
"""

from __future__ import annotations

from typing import cast

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
from backbones.mhformer_blocks import HypothesisTransformer, MHGTransformer, SHRBlock
from backbones.objectives import mhformer_loss

MHG_HEADS = 9  # hard-coded in the official Model


def _embedding(in_dim: int, channel: int, frames: int) -> nn.Module:
    """Conv1d(2J -> C, k=1) for F > 27; Conv1d + BatchNorm1d + ReLU + Dropout(0.25) otherwise (official)."""
    if frames > 27:
        return TokenConv1d(in_dim, channel, kernel_size=1)  # the same Conv1d, run on the token layout
    return nn.Sequential(
        nn.Conv1d(in_dim, channel, kernel_size=1),
        nn.BatchNorm1d(channel, momentum=0.1),
        nn.ReLU(inplace=True),
        nn.Dropout(0.25),
    )


class MHFormer(PoseBackbone):
    """MHFormer ``Model``: (B, F, 17, 2) -> (B, F, 17, 3) rows; ``forward`` returns the centre (B, 1, 17, 3)."""

    pipeline = "seq2frame"

    def __init__(
        self,
        frames: int = 351,
        layers: int = 3,
        channel: int = 512,
        d_hid: int = 1024,
        n_joints: int = 17,
        out_joints: int = 17,
        in_chans: int = 2,
        heads: int = 8,
        mhg_depth: int = 4,
    ) -> None:
        if frames % MHG_HEADS:
            raise ValueError(f"MHFormer needs frames divisible by {MHG_HEADS} (MHG heads over frames), got {frames}")
        super().__init__(frames=frames, in_channels=in_chans, token_dim=channel, num_joints=out_joints)
        length = in_chans * n_joints  # 34 coordinate tokens
        # MHG
        self.norm_1 = nn.LayerNorm(frames)
        self.norm_2 = nn.LayerNorm(frames)
        self.norm_3 = nn.LayerNorm(frames)
        self.Transformer_encoder_1 = MHGTransformer(mhg_depth, frames, frames * 2, length, MHG_HEADS)
        self.Transformer_encoder_2 = MHGTransformer(mhg_depth, frames, frames * 2, length, MHG_HEADS)
        self.Transformer_encoder_3 = MHGTransformer(mhg_depth, frames, frames * 2, length, MHG_HEADS)
        # Embedding
        self.embedding_1 = _embedding(length, channel, frames)
        self.embedding_2 = _embedding(length, channel, frames)
        self.embedding_3 = _embedding(length, channel, frames)
        # SHR & CHI
        self.Transformer_hypothesis = HypothesisTransformer(layers, channel, d_hid, length=frames, heads=heads)
        # Regression
        self.regression = nn.Sequential(
            nn.BatchNorm1d(channel * 3, momentum=0.1),
            nn.Conv1d(channel * 3, 3 * out_joints, kernel_size=1),
        )

    @property
    def num_blocks(self) -> int:
        return len(self.Transformer_hypothesis.SHR_blocks) + 1

    @property
    def n_shr(self) -> int:
        """Number of SHR blocks (layers - 1); block ``n_shr`` is the CHI block."""
        return len(self.Transformer_hypothesis.SHR_blocks)

    def mhg(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Multi-Hypothesis Generation: (B, F, J, 2) -> three hypotheses, each (B, 2J, F)."""
        b, f, j, c = x.shape
        # contiguous: at B = 1 reshape would return a strided view, and every later op of the MHG would inherit it
        x = x.permute(0, 2, 3, 1).contiguous().view(b, j * c, f)  # 'b f j c -> b (j c) f'
        x_1 = x + self.Transformer_encoder_1(self.norm_1(x))
        x_2 = x_1 + self.Transformer_encoder_2(self.norm_2(x_1))
        x_3 = x_2 + self.Transformer_encoder_3(self.norm_3(x_2))
        return x_1, x_2, x_3

    def embed(self, x: Tensor) -> Tensor:
        """MHG + embeddings + hypothesis position embeddings: (B, F, J, 2) -> tokens (B, F, 3, C)."""
        hypotheses = self.mhg(x)  # 3 x (B, 2J, F)
        embeddings = (self.embedding_1, self.embedding_2, self.embedding_3)
        e_1, e_2, e_3 = (self._embed_hypothesis(emb, h) for emb, h in zip(embeddings, hypotheses))
        return self.Transformer_hypothesis.add_position(e_1, e_2, e_3)

    @staticmethod
    def _embed_hypothesis(embedding: nn.Module, x: Tensor) -> Tensor:
        """``embedding_k`` on one hypothesis (B, 2J, F) -> (B, F, C)."""
        if isinstance(embedding, TokenConv1d):
            out_tokens: Tensor = embedding(x.transpose(1, 2))  # one GEMM, in the token layout
            return out_tokens
        out: Tensor = embedding(x).transpose(1, 2)  # F <= 27: Conv1d + BatchNorm1d + ReLU; (B, F, C) view
        return out

    def block(self, i: int, tokens: Tensor) -> Tensor:
        """SHR block i (i < n_shr) or the CHI block (i == n_shr), on any number of frames."""
        th = self.Transformer_hypothesis
        blk = th.SHR_blocks[i] if i < self.n_shr else th.CHI_blocks[i - self.n_shr]
        out: Tensor = blk(tokens)  # (B, F, 3, C)
        return out

    def finalize(self, tokens: Tensor) -> Tensor:
        """LayerNorm(3C) on the concatenated hypotheses; returned as (B, F, 3, C)."""
        b, f, n, c = tokens.shape
        out: Tensor = self.Transformer_hypothesis.norm(tokens.reshape(b, f, n * c))
        return out.reshape(b, f, n, c)

    def regress(self, tokens: Tensor) -> Tensor:
        """BatchNorm1d(3C) + Conv1d(3C -> 3J) over frames: (B, F, 3, C) -> (B, F, J, 3)."""
        b, f, n, c = tokens.shape
        y = self.regression(tokens.reshape(b, f, n * c).transpose(1, 2))  # (B, 3J, F)
        return y.reshape(b, -1, 3, f).permute(0, 3, 1, 2)  # 'b (j c) f -> b f j c'

    def frame_features(self, tokens: Tensor) -> Tensor:
        """Concatenation of the three hypotheses (B, F, 3C), as HoT's TPC-MHFormer clusters on."""
        b, f, n, c = tokens.shape
        return tokens.reshape(b, f, n * c)

    def temporal_attention(self, i: int) -> RecordsAttention | None:
        """SHR block i's first self-attention (over frames); None for the CHI block."""
        if i >= self.n_shr:
            return None
        return cast(SHRBlock, self.Transformer_hypothesis.SHR_blocks[i]).attn_1


_PAPER = dict(
    frames=351, layers=3, channel=512, d_hid=1024, n_joints=17, out_joints=17, in_chans=2, heads=8, mhg_depth=4
)

MHFORMER_SPEC = BackboneSpec(
    name="mhformer",
    pipeline="seq2frame",
    paper_title="MHFormer: Multi-Hypothesis Transformer for 3D Human Pose Estimation (CVPR 2022)",
    official_code="Vegetebird/MHFormer model/mhformer.py::Model (+ model/module/trans.py, trans_hypothesis.py)",
    checkpoint_key=None,  # plain state dict, no 'module.' prefix
    presets={
        "paper": PresetSpec(
            kwargs=_PAPER,
            frames=351,
            depth=3,
            dim=512,
            heads=8,
            official_layout="mhformer_351",
            paper=PaperResult(
                mpjpe_mm=43.0,
                gflops_paper=14.15,
                gflops_all_matmul=16.44,
                params=31_516_125,
                source="HoT figure [fig]; FLOPs and params [computed] (shared/docs/papers.md §2)",
            ),
        ),
        "paper81": PresetSpec(
            kwargs={**_PAPER, "frames": 81},
            frames=81,
            depth=3,
            dim=512,
            heads=8,
            official_layout="mhformer_81",
            paper=PaperResult(
                gflops_paper=3.12,
                gflops_all_matmul=3.25,
                params=19_837_545,
                source="FLOPs and params [computed] (shared/docs/papers.md §2)",
            ),
        ),
        "small": PresetSpec(
            kwargs={**_PAPER, "frames": 81, "channel": 128, "d_hid": 256},
            frames=81,
            depth=3,
            dim=128,
            heads=8,
        ),
        "tiny": PresetSpec(
            kwargs={**_PAPER, "frames": 27, "channel": 64, "d_hid": 128, "mhg_depth": 2},
            frames=27,
            depth=3,
            dim=64,
            heads=8,
            throughput_batch=32,  # the saturation rule (PresetSpec.throughput_batch)
            recipe=FRAME_TOKEN_RECIPE,
        ),
    },
    objective=mhformer_loss,
    objective_text="MPJPE on every output frame (MHFormer; TPC: the kept frames)",
    variants=(
        HourglassVariant(
            name="TPC-MHFormer(117,1)",
            preset="paper",
            pruner="cluster",
            recoverer="none",
            tokens=117,
            depths=1,
            official_layout="tpc_mhformer_351_n117_k1",
            paper=PaperResult(
                gflops_paper=8.22,
                gflops_all_matmul=9.17,
                flops_official=9_164_885_184,
                params=31_516_125,
                source="papers.md §3; official-class count backbones.md §5.1",
            ),
        ),
    ),
    notes=(
        "Tokens (B, F, 3, C): axis 2 = the three hypotheses; blocks = SHR x (layers-1) + CHI x 1. "
        "MHG attends over the 34 joint coordinates with the F frames as channels (F divisible by 9). "
        "F <= 27 switches embedding_k to Conv1d+BatchNorm1d+ReLU+Dropout (keys embedding_k.0...). "
        "HoT's copy (tpc_mhformer_351_n117_k1.tsv) registers the same key set in another order; "
        "checkpoints load by key."
    ),
    tags=("seq2frame", "multi-hypothesis"),
)


@register_backbone(MHFORMER_SPEC)
def mhformer(**kwargs: object) -> MHFormer:
    """MHFormer (seq2frame, 351 frames at the paper preset)."""
    return MHFormer(**kwargs)  # type: ignore[arg-type]
