"""MotionBERT's DSTformer: Dual-stream Spatio-temporal Transformer (Zhu et al., ICCV 2023), seq2seq.

Faithful to ``DSTformer`` of the official code (shared/docs/backbones.md §2.4). Each depth i runs two
**parallel** blocks on the same input, each with its own weights:

- ``blocks_st[i]`` (stage_st): spatial attention + MLP (over the J joints of one frame), then temporal
  attention + MLP (over the F frames of one joint);
- ``blocks_ts[i]`` (stage_ts): the temporal pair first, then the spatial pair;

and fuses them per token with adaptive weights ``alpha = softmax(ts_attn[i]([x_st, x_ts]))``,
``x = alpha_0 * x_st + alpha_1 * x_ts``. Every block is pre-norm; LayerNorm eps is 1e-6. The input has
three channels (x, y, 2D confidence); the tail is ``norm`` -> ``pre_logits`` (Linear + Tanh, the
"motion representation" of width ``dim_rep``) -> ``head``.

State-dict keys, order and shapes equal ``motionbert_h36m.tsv`` (preset ``paper``: dim 512, MLP x2) and
``motionbert_lite.tsv`` (preset ``lite``: dim 256, MLP x4, the configuration HoT benchmarks).

Depth unit i of the uniform view is one dual-stream depth (both blocks and the fusion); HoT's Token
Pruning Module goes between depths (k = 1..depth-1; HoT uses k = 1). The temporal attention always
runs over the current frame count F of the token tensor, so it works on pruned tokens.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal, cast

import torch
from torch import Tensor, nn

from backbones._registry import (
    BackboneSpec,
    HourglassVariant,
    PaperResult,
    PresetSpec,
    TrainRecipe,
    register_backbone,
)
from backbones.base import PoseBackbone
from backbones.layers import Attention, DropPath, Mlp, RecordsAttention, drop_path_rates
from backbones.objectives import motionbert_loss

StageMode = Literal["stage_st", "stage_ts"]


def attend_joints(attn: Attention, x: Tensor) -> Tensor:
    """Attention over the J joints of each frame: (B, F, J, C) -> (B, F, J, C)."""
    b, f, j, c = x.shape
    out: Tensor = attn(x.reshape(b * f, j, c))  # (B*F, J, C)
    return out.reshape(b, f, j, c)


def attend_frames(attn: Attention, x: Tensor) -> Tensor:
    """Attention over the F frames of each joint (F = current frame count): (B, F, J, C) -> (B, F, J, C)."""
    b, f, j, c = x.shape
    # contiguous, so qkv runs as one GEMM (addmm) at batch 1 too, where reshape alone would give a strided view
    out: Tensor = attn(x.transpose(1, 2).contiguous().view(b * j, f, c))  # (B*J, F, C)
    return out.reshape(b, j, f, c).transpose(1, 2)


class Block(nn.Module):
    """One stream of a DSTformer depth: a spatial and a temporal pre-norm transformer sub-block.

    ``st_mode='stage_st'`` runs spatial then temporal, ``'stage_ts'`` temporal then spatial. Registration
    order (norm1_s, norm1_t, attn_s, attn_t, norm2_s, norm2_t, mlp_s, mlp_t) is the official one.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_hidden: int,
        st_mode: StageMode,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if st_mode not in ("stage_st", "stage_ts"):
            raise ValueError(f"unknown st_mode '{st_mode}' (expected 'stage_st' or 'stage_ts')")
        self.st_mode = st_mode
        self.norm1_s = nn.LayerNorm(dim, eps=eps)
        self.norm1_t = nn.LayerNorm(dim, eps=eps)
        self.attn_s = Attention(dim, heads, qkv_bias, attn_drop, drop, proj_first=True)
        self.attn_t = Attention(dim, heads, qkv_bias, attn_drop, drop, proj_first=True)
        self.drop_path = DropPath(drop_path)
        self.norm2_s = nn.LayerNorm(dim, eps=eps)
        self.norm2_t = nn.LayerNorm(dim, eps=eps)
        self.mlp_s = Mlp(dim, mlp_hidden, drop=drop)
        self.mlp_t = Mlp(dim, mlp_hidden, drop=drop)

    def spatial(self, x: Tensor) -> Tensor:
        """x + attn_s(norm1_s(x)); x + mlp_s(norm2_s(x)). (B, F, J, C) -> same."""
        x = x + self.drop_path(attend_joints(self.attn_s, self.norm1_s(x)))
        return x + self.drop_path(self.mlp_s(self.norm2_s(x)))

    def temporal(self, x: Tensor) -> Tensor:
        """x + attn_t(norm1_t(x)); x + mlp_t(norm2_t(x)). (B, F, J, C) -> same."""
        x = x + self.drop_path(attend_frames(self.attn_t, self.norm1_t(x)))
        return x + self.drop_path(self.mlp_t(self.norm2_t(x)))

    def forward(self, x: Tensor) -> Tensor:
        if self.st_mode == "stage_st":
            return self.temporal(self.spatial(x))
        return self.spatial(self.temporal(x))


class DSTformer(PoseBackbone):
    """DSTformer: (B, T, 17, 3) -> (B, T, 17, 3). Tokens (B, F, 17, dim_feat).

    Constructor names follow the official class (``dim_in``, ``dim_feat``, ``dim_rep``, ``maxlen``...).
    ``att_fuse=False`` fuses the two streams by their mean and drops the ``ts_attn`` keys, as the official.
    """

    pipeline = "seq2seq"

    def __init__(
        self,
        dim_in: int = 3,
        dim_out: int = 3,
        dim_feat: int = 256,
        dim_rep: int = 512,
        depth: int = 5,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        num_joints: int = 17,
        maxlen: int = 243,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        norm_eps: float = 1e-6,
        att_fuse: bool = True,
        pos_embed_std: float = 0.02,
    ) -> None:
        super().__init__(frames=maxlen, in_channels=dim_in, token_dim=dim_feat, num_joints=num_joints)
        if dim_rep <= 0 or dim_out <= 0:
            raise ValueError("DSTformer here needs dim_rep > 0 and dim_out > 0 (pose regression)")
        c = dim_feat
        hidden = int(c * mlp_ratio)
        # Own parameters come first in state_dict(): temp_embed, then pos_embed (official order).
        self.temp_embed = nn.Parameter(torch.zeros(1, maxlen, 1, c))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_joints, c))
        self.joints_embed = nn.Linear(dim_in, c)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = drop_path_rates(drop_path_rate, depth)

        def make(mode: StageMode, i: int) -> Block:
            return Block(c, num_heads, hidden, mode, qkv_bias, drop_rate, attn_drop_rate, dpr[i], norm_eps)

        self.blocks_st = nn.ModuleList([make("stage_st", i) for i in range(depth)])
        self.blocks_ts = nn.ModuleList([make("stage_ts", i) for i in range(depth)])
        self.norm = nn.LayerNorm(c, eps=norm_eps)
        self.pre_logits = nn.Sequential(OrderedDict([("fc", nn.Linear(c, dim_rep)), ("act", nn.Tanh())]))
        self.head = nn.Linear(dim_rep, dim_out)
        self._init_weights(pos_embed_std)
        self.att_fuse = att_fuse
        # ts_attn is created after the init, as in the official code, and starts at w = 0, b = 0.5.
        fusers = [nn.Linear(2 * c, 2) for _ in range(depth)] if att_fuse else []
        for lin in fusers:
            nn.init.zeros_(lin.weight)
            nn.init.constant_(lin.bias, 0.5)
        self.ts_attn = nn.ModuleList(fusers) if att_fuse else None

    def _init_weights(self, pos_embed_std: float = 0.02) -> None:
        """trunc_normal(std .02) for the embeddings and Linear weights, bias 0; LayerNorm 1 / 0.

        ``pos_embed_std`` is the joint identity's std: 0.02 in the official code; larger at the CPU presets,
        which otherwise sit on a per-joint plateau (see the tiny preset's TrainRecipe)."""
        nn.init.trunc_normal_(self.temp_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=pos_embed_std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks_st)

    def embed(self, x: Tensor) -> Tensor:
        """joints_embed + pos_embed + temp_embed[:, :F]: (B, F, J, 3) -> (B, F, J, C)."""
        f = x.shape[1]
        tokens = self.joints_embed(x) + self.pos_embed  # (B, F, J, C)
        tokens = tokens + self.temp_embed[:, :f]
        out: Tensor = self.pos_drop(tokens)
        return out

    def fuse(self, i: int, x_st: Tensor, x_ts: Tensor) -> Tensor:
        """Adaptive fusion of depth i: softmax(ts_attn[i]([x_st, x_ts])) weights per token."""
        if self.ts_attn is None:
            return (x_st + x_ts) * 0.5
        alpha = self.ts_attn[i](torch.cat([x_st, x_ts], dim=-1)).softmax(dim=-1)  # (B, F, J, 2)
        return x_st * alpha[..., 0:1] + x_ts * alpha[..., 1:2]

    def block(self, i: int, tokens: Tensor) -> Tensor:
        """Depth i: blocks_st[i] and blocks_ts[i] in parallel on (B, F, J, C), fused by ts_attn[i]."""
        return self.fuse(i, self.blocks_st[i](tokens), self.blocks_ts[i](tokens))

    def finalize(self, tokens: Tensor) -> Tensor:
        out: Tensor = self.norm(tokens)
        return out

    def regress(self, tokens: Tensor) -> Tensor:
        """pre_logits (fc + Tanh, the motion representation) -> head: (B, F, J, C) -> (B, F, J, 3)."""
        out: Tensor = self.head(self.pre_logits(tokens))
        return out

    def temporal_attention(self, i: int) -> RecordsAttention:
        """The temporal attention of the TS stream at depth i (over F frames per joint)."""
        return cast(Block, self.blocks_ts[i]).attn_t


_PAPER: dict[str, object] = {
    "dim_in": 3,
    "dim_out": 3,
    "dim_feat": 512,
    "dim_rep": 512,
    "depth": 5,
    "num_heads": 8,
    "mlp_ratio": 2.0,
    "num_joints": 17,
    "maxlen": 243,
    "qkv_bias": True,
    "drop_rate": 0.0,
    "attn_drop_rate": 0.0,
    "drop_path_rate": 0.0,
    "norm_eps": 1e-6,
    "att_fuse": True,
    "pos_embed_std": 0.02,  # trunc-normal, as the official code
}

MOTIONBERT_SPEC = BackboneSpec(
    name="motionbert",
    pipeline="seq2seq",
    paper_title="MotionBERT: A Unified Perspective on Learning Human Motion Representations (ICCV 2023)",
    official_code="Walter0807/MotionBERT lib/model/DSTformer.py::DSTformer",
    checkpoint_key="model_pos",
    presets={
        "paper": PresetSpec(
            kwargs=_PAPER,
            frames=243,
            depth=5,
            dim=512,
            heads=8,
            in_channels=3,
            official_layout="motionbert_h36m",
            paper=PaperResult(
                mpjpe_mm=39.2,
                gflops_paper=348.81,
                gflops_all_matmul=370.81,
                params=42_466_317,
                source=(
                    "MotionBERT README, H36M-SH: 39.2 mm from scratch (MB_train_h36m.yaml), 37.2 mm fine-tuned "
                    "(MB_ft_h36m.yaml); FLOPs [computed] (shared/docs/papers.md §2)"
                ),
                keypoints_2d="sh_ft_h36m",
            ),
        ),
        "lite": PresetSpec(
            kwargs={**_PAPER, "dim_feat": 256, "mlp_ratio": 4.0},
            frames=243,
            depth=5,
            dim=256,
            heads=8,
            in_channels=3,
            official_layout="motionbert_lite",
            paper=PaperResult(
                mpjpe_mm=39.8,
                gflops_paper=131.09,
                gflops_all_matmul=142.09,
                params=16_001_549,
                source="HoT figure [fig], training recipe unconfirmed; FLOPs [computed] (shared/docs/papers.md §2)",
            ),
        ),
        "small": PresetSpec(
            kwargs={
                **_PAPER,
                "pos_embed_std": 1.0,
                "maxlen": 81,
                "dim_feat": 128,
                "dim_rep": 256,
                "depth": 3,
                "num_heads": 4,
            },
            frames=81,
            depth=3,
            dim=128,
            heads=4,
            in_channels=3,
        ),
        "tiny": PresetSpec(
            kwargs={
                **_PAPER,
                "pos_embed_std": 1.0,
                "maxlen": 27,
                "dim_feat": 32,
                "dim_rep": 64,
                "depth": 3,
                "num_heads": 2,  # 4 -> 2: same parameters and FLOPs, 1.35x faster steps (recipe notes)
            },
            frames=27,
            depth=3,
            dim=32,
            heads=2,
            throughput_batch=8,  # the saturation rule (PresetSpec.throughput_batch)
            in_channels=3,
            recipe=TrainRecipe(
                lr=2e-3,
                finetune_lr=5e-4,
                finetune_warmup_steps=0,
                warmup_steps=30,
                batch_size=8,
                loss_weights={"velocity": 0.0},
                notes=(
                    "velocity weight 20 -> 0, LR 3e-3 -> 2e-3 with a 30-step linear warm-up, batch 16 -> 8, the joint "
                    "identity pos_embed drawn trunc-normal with std 1 instead of 0.02 (pos_embed_std 1.0), and 2 heads "
                    "instead of 4 (num_heads; same parameters and FLOPs). The paper presets keep the paper's recipe "
                    "and init. At T = 27 from random initialisation the paper's 20 x velocity term is as large as the "
                    "MPJPE term (20 x 23 mm vs 416 mm at step 0) and is minimised fastest by a static output: the net "
                    "settles on the mean pose and MPJPE stays at the trivial figure. MPJPE + 0.5 N-MPJPE keep the "
                    "paper's weights. Like MixSTE-tiny (per-joint tokens too), with the official near-zero identity "
                    "the net sits on a plateau near 110 mm; a unit-scale identity ends it by ~1200 steps (the first "
                    "~300 steps stay at the mean pose, then it falls through). Measured on the quick grid's data "
                    "(every 5th test take, stride 9, no flip; trivial 157.4 mm; Intel Xeon, 1 thread), MPJPE after 300 "
                    "/ 600 / 900 / 1200 steps, seeds 0 / 1 / 2, 4 heads - std 0.02: 121.7 / 120.5 / 111.8 / 106.4, "
                    "124.2 / 121.7 / 112.4 / 109.1, 119.0 / 108.9 / 108.2 / 109.5; std 1: 156.5 / 128.6 / 113.4 / "
                    "63.4, 159.7 / 126.5 / 118.4 / 78.6, 156.8 / 133.8 / 113.8 / 68.6; std 1, 2 heads (this preset): "
                    "156.0 / 127.9 / 105.4 / 56.0, 159.4 / 127.0 / 116.4 / 84.4, 156.8 / 129.6 / 113.4 / 62.7. Seed 0, "
                    "std 1, 4 heads: std 0.3 instead 158 / 116 / 105 / -; LR 3e-3 and no warm-up 159 / 123 / 114 / 64; "
                    "one head 157 / 129 / 116 / 77. Where a step's time goes: it is overhead-bound. 0.108 GFLOPs per "
                    "clip, so a batch-8 fwd + bwd is ~2.6 GFLOPs, yet with 4 heads the step took 0.124 s on one core "
                    "(21 GFLOP/s; a 512 x 512 matmul runs at ~110). Profiled (torch.profiler, 20 steps, 4 heads): CPU "
                    "flash attention 36 % (its cost grows with the number of (sequence, head) pairs: 4 heads of width "
                    "8 over 216 spatial and 136 temporal sequences per block; one call fwd + bwd at (216, 4, 17, 8) "
                    "8.5 ms, at (216, 2, 17, 16) 2.1 ms), element-wise ops, LayerNorm and GELU 23 %, matmuls 16 %, "
                    "copies of the qkv and fusion tensors 16 %, AdamW 1 %. With 2 heads: 0.097 s per step (1.28x), "
                    "attention 25 %. The quick grid trains its baseline for 1200 steps and fine-tunes 60 at "
                    "finetune_lr 5e-4 without warm-up: HoT's attention recoverer (TRA) starts untrained, and the "
                    "fine-tuning is noisy. Cluster + TRA at T/3, depth 1 into the 2-head 56.0 mm baseline: 64.9 / 80.0 "
                    "/ 64.5 mm after 60 / 90 / 120 steps at the recipe's LR 2e-3 with its 30-step warm-up; after 60 "
                    "steps without warm-up 64.6 at 1e-3, 61.9 at 5e-4 (uniform / attention / motion 61.5 / 62.8 / "
                    "61.8), 104.4 at 2.5e-4; 10x LR on the recoverer alone did not help (67.2 at 1e-3, 62.6 at 5e-4). "
                    "Into the 4-head 63.4 mm baseline at 2e-3: 85.4 after 30 steps, 67.4 after 60."
                ),
            ),
        ),
    },
    objective=motionbert_loss,
    objective_text="MPJPE + 0.5 N-MPJPE + 20 velocity (MotionBERT)",
    hot_preset="lite",
    variants=(
        HourglassVariant(
            name="HoT-MotionBERT-lite(81,1)",
            preset="lite",
            pruner="cluster",
            recoverer="attention",
            tokens=81,
            depths=1,
            official_layout="hot_motionbert_lite_n81_k1",
            paper=PaperResult(
                mpjpe_mm=39.8,
                gflops_paper=63.21,
                gflops_all_matmul=66.86,
                flops_official=66_856_720_896,
                params=16_347_661,
                source="papers.md §3; official-class count backbones.md §5.1",
            ),
        ),
    ),
    notes=(
        "HoT benchmarks the Lite configuration (preset 'lite': dim 256, MLP x4, 16.00 M params), not MotionBERT's "
        "own Human3.6M configuration (preset 'paper': dim 512, MLP x2, 42.47 M). Input channels are (x, y, conf); "
        "feed conf = 1 when the 2D source has none. Attention registers proj before qkv (state-dict order)."
    ),
)


@register_backbone(MOTIONBERT_SPEC)
def motionbert(**kwargs: object) -> DSTformer:
    """MotionBERT DSTformer (seq2seq, 243 frames at the paper and lite presets)."""
    return DSTformer(**kwargs)  # type: ignore[arg-type]
